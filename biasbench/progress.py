"""How long-running library code reports progress without printing.

Only the CLI prints. Library functions take a `Reporter`; the CLI passes one
that draws tqdm bars on stderr, tests and library users get `SILENT`.
"""

from __future__ import annotations

from typing import Protocol


class Bar(Protocol):
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


class Reporter(Protocol):
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def bar(self, total: int, desc: str, unit: str) -> Bar: ...


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class Silent:
    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def bar(self, total: int, desc: str, unit: str) -> Bar:
        return _NullBar()


SILENT = Silent()


def warn(reporter: Reporter, message: str) -> None:
    """A one-line warning through `reporter` (an older reporter without `warn` gets it as a note)."""
    (getattr(reporter, "warn", None) or reporter.info)(message)
