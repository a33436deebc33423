"""Sweeps: a grid of runs expanded into the same run configs as `biasbench run`,
executed by a launcher (a local process pool, Ray tasks, or SLURM job arrays).

    plan = grid.expand(spec)            # run ids, which are done (driver side)
    for run, outcome in sweep.execute(plan, launcher): ...

The plan carries each run's resolved config and expected dataset fingerprint
(`grid.PlannedRun`); every launcher runs `task.execute(run)`, which is
`runner.execute(run)`: a sweep adds scheduling, never another way to train,
to resolve a config or to name runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from biasbench.registry import Registry


@dataclass(frozen=True)
class LaunchOptions:
    """What a launcher may be given (each takes what it understands)."""

    results: Path
    device: str = "auto"
    max_parallel: int | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0
    address: str | None = None  # ray
    partition: str | None = None  # slurm
    time_min: int = 240  # slurm
    wait: bool = True  # slurm
    reporter: object = None  # local, one worker: per-run progress in this process (a progress.Reporter)


def _local(o: LaunchOptions):
    from biasbench.launch.local import LocalLauncher

    from biasbench.progress import SILENT

    return LocalLauncher(o.max_parallel, o.device, o.reporter or SILENT)


def _ray(o: LaunchOptions):
    from biasbench.launch.ray_tasks import RayLauncher

    return RayLauncher(o.address, o.cpus_per_run, o.gpus_per_run, o.max_parallel, o.device)


def _slurm(o: LaunchOptions):
    from biasbench.launch.slurm import SlurmLauncher

    return SlurmLauncher(o.results / "slurm", o.cpus_per_run, int(o.gpus_per_run), o.max_parallel, o.device,
                         o.partition, o.time_min, wait=o.wait)


# name -> factory (LaunchOptions -> launcher); a new launcher is one module plus one line here (its module is
# imported when chosen).
LAUNCHERS = Registry("launcher")
LAUNCHERS.add("local", _local)
LAUNCHERS.add("ray", _ray)
LAUNCHERS.add("slurm", _slurm)


def make(name: str, options: LaunchOptions):
    factory: Callable[[LaunchOptions], object] = LAUNCHERS.get(name)
    return factory(options)
