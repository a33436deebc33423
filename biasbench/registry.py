"""One registry mechanism for everything chosen by name on the command line: methods, datasets, launchers.

An entry is a name, where its object lives (`"package.module:ATTR"`, imported only when the entry is
used, so that `biasbench --help` stays fast; or the object itself) and what the rest of the code may
know about it without importing it (`info`: a method's display, a dataset's family). The name is the
public API (`--method rest`, `--dataset cmnist`, `--launcher ray`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from biasbench.errors import UserError


@dataclass(frozen=True)
class Entry:
    name: str
    target: Any  # "module:ATTR" (imported on first use) or the object itself
    info: Any = None


class Registry:
    """Names -> entries, in registration order (the order tables and figures list them)."""

    def __init__(self, kind: str, spell: Callable[[str], str] = str.lower):
        self.kind, self._spell = kind, spell
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: Any, info: Any = None) -> None:
        """Register `target` as `name` (a second entry under one name is a mistake in the code, not the input)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if name != self._spell(name):
            raise ValueError(f"{self.kind} {name!r} is not in its canonical spelling {self._spell(name)!r}")
        self._entries[name] = Entry(name, target, info)

    def register(self, name: str, info: Any = None) -> Callable[[Any], Any]:
        """`@REGISTRY.register("name", info)` above a class or function: `add` as a decorator."""
        def decorate(obj: Any) -> Any:
            self.add(name, obj, info)
            return obj
        return decorate

    def remove(self, name: str) -> None:
        """Take an entry out again (tests that register a temporary one)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def ordered(self) -> list[str]:
        return list(self._entries)

    def canonical(self, name: str) -> str:
        """The registered spelling of `name`, or one line that lists the choices."""
        key = self._spell(str(name).strip())
        if key not in self._entries:
            raise UserError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return key

    def __contains__(self, name: str) -> bool:
        return self._spell(str(name).strip()) in self._entries

    def entry(self, name: str) -> Entry:
        return self._entries[self.canonical(name)]

    def info(self, name: str) -> Any:
        """What the entry declares about itself, without importing its module."""
        return self.entry(name).info

    def get(self, name: str) -> Any:
        """The registered object (its module imported on first use; read from it on every call)."""
        target = self.entry(name).target
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
        return target
