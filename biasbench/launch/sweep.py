"""Running a plan with a launcher; the driver stores whatever comes back.

The driver saves every returned record that its results dir lacks, so the
results are complete even when workers do not share its file system. A
failed run does not stop the others; it is reported at the end and stays
"to do" for the next sweep (resuming from its checkpoint where one exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from biasbench.launch.grid import Plan, PlannedRun
from biasbench.progress import SILENT, Reporter
from biasbench.results.store import RunStore


class Launcher(Protocol):
    name: str

    def describe(self, n_runs: int) -> str: ...

    def run(self, runs: list[PlannedRun]) -> Iterator[tuple[PlannedRun, dict | BaseException]]: ...


@dataclass
class SweepOutcome:
    finished: list[dict] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)  # beside `failed`, for a caller that re-raises


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def execute(plan: Plan, launcher: Launcher, results: Path, reporter: Reporter = SILENT) -> SweepOutcome:
    todo = plan.todo
    outcome = SweepOutcome()
    if not todo:
        return outcome
    store = RunStore(results)
    store.ensure_writable()
    bar = reporter.bar(total=len(todo), desc="sweep", unit="run")
    try:
        for run, result in launcher.run(todo):
            if isinstance(result, BaseException):
                outcome.failed.append((run, _message(result)))
                outcome.errors.append(result)
            else:
                if store.load(run.run_id) is None:
                    store.save(result)  # the worker's file system may not be ours
                outcome.finished.append(result)
            bar.update(1)
    finally:
        bar.close()
    return outcome
