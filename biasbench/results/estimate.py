"""How long the runs of a plan will take, from the finished runs that resemble them.

A full-budget sweep on a CPU takes hours; the plan line says roughly how many before any run starts, so
a user can size `--max-parallel`, a SLURM time limit or a session. A finished run's time is its record's
train + evaluation seconds (both carried across resumes, unlike the process's wall time). A run to do is
costed at the median of the finished runs in the same results folder with the same method, dataset,
profile, step count and device type; a run with no such peer is counted, not guessed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from biasbench.runconfig import RunConfig


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the costed runs' summed run time (one process each)
    costed: int
    uncosted: dict[str, int] = field(default_factory=dict)  # method -> runs to do with no finished peer
    medians: dict[str, float] = field(default_factory=dict)  # "method" (or "method dataset/profile") -> seconds

    def describe(self, parallel: int) -> str | None:
        """One line for the plan, or None when nothing could be costed and nothing is to do."""
        if not self.costed and not self.uncosted:
            return None
        parts = []
        if self.costed:
            each = ", ".join(f"{m} {_duration(s)}" for m, s in self.medians.items())
            at = min(parallel, self.costed)
            wall = f", about {_duration(self.seconds / at)} at {at} at a time" if at > 1 else ""
            parts.append(f"{_runs(self.costed)} x the median finished run like them ({each}) = "
                         f"{_duration(self.seconds)} of run time{wall}")
        if self.uncosted:
            n = sum(self.uncosted.values())
            parts.append(f"{_runs(n)} ({', '.join(self.uncosted)}) have no finished run like them to go by")
        return "estimate: " + "; ".join(parts)


def _key(config: dict, device_type: str) -> tuple:
    return (config.get("method"), config.get("dataset"), config.get("profile"), config.get("steps"), device_type)


def run_seconds(record: dict) -> float | None:
    """A finished run's own time: train + evaluation seconds; None for a record that lacks them."""
    train, evals = record.get("train_seconds"), record.get("eval_seconds")
    if not all(isinstance(v, (int, float)) and v >= 0 for v in (train, evals)):
        return None
    return float(train) + float(evals)


def estimate(todo: Iterable[RunConfig], records: Iterable[dict], device_type: str) -> Estimate:
    """Cost each run config in `todo` on `device_type` ("cpu" or "cuda") from the finished `records`."""
    times: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        seconds, config = run_seconds(record), record.get("config")
        backend = record.get("backend") if isinstance(record.get("backend"), dict) else {}
        if seconds is not None and isinstance(config, dict):
            times[_key(config, backend.get("device_type", "cpu"))].append(seconds)
    total, costed, uncosted, used = 0.0, 0, defaultdict(int), {}
    for cfg in todo:
        key = _key({"method": cfg.method, "dataset": cfg.dataset, "profile": cfg.profile, "steps": cfg.steps},
                   device_type)
        if not times.get(key):
            uncosted[cfg.method] += 1
            continue
        used[key] = statistics.median(times[key])
        total += used[key]
        costed += 1
    mixed = len({k[1:4] for k in used}) > 1  # several datasets, profiles or budgets: say which median is which
    medians = {(f"{k[0]} {k[1]}/{k[2]}/{k[3]} steps" if mixed else k[0]): s for k, s in used.items()}
    return Estimate(total, costed, dict(uncosted), medians)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"
