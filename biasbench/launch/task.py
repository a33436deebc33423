"""What every launcher runs for one planned run, wherever it lands.

The task is `runner.execute` of the planned run (its config resolved by the
plan): it generates the dataset if this machine lacks it (generation is
deterministic and locked per folder), refuses a dataset whose content is not
the planned one, resumes from the run's checkpoint if one is there, skips the
run if its record exists, and writes the record. It also returns the record,
so a driver without a shared file system can store it (see sweep.py).
"""

from __future__ import annotations

import sys

import torch

from biasbench.launch.grid import PlannedRun
from biasbench.progress import SILENT, Bar, Reporter


class WorkerLog:
    """Notes ('resuming ... from step N') into a cluster worker's log (its stderr); no bars."""

    def info(self, message: str) -> None:
        print(f"biasbench: {message}", file=sys.stderr, flush=True)

    def bar(self, total: int, desc: str, unit: str) -> Bar:
        return SILENT.bar(total, desc, unit)


def pick_device(name: str) -> torch.device:
    """'auto' is decided on the machine that trains, not on the driver."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def execute(run: PlannedRun, device: str = "auto", threads: int | None = None, reporter: Reporter = SILENT) -> dict:
    """Train (or resume, or skip) one run and return its record."""
    from biasbench.runner import execute as execute_run

    if threads:
        torch.set_num_threads(threads)
    return execute_run(run, pick_device(device), reporter)
