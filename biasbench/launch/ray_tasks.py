"""The Ray launcher: each run is a Ray task on an existing cluster (or a local one).

- Resources: every task declares `num_cpus` (also its torch threads) and
  `num_gpus`; Ray places it and sets CUDA_VISIBLE_DEVICES.
- Failures: a task whose worker process or node dies is retried by Ray
  (`max_retries`); the retry resumes from the run's last checkpoint when it
  lands where that checkpoint is (same node, or any node on a shared file
  system) and starts over otherwise. A Python exception is not retried: it is
  a bug or a user error, and retrying would repeat it.
- No shared file system: the task returns its record and the driver writes
  it into its own results dir, so the driver's results are complete either
  way. Workers write checkpoints (and their own copy of the record) to the
  same path on their node; a worker without the dataset generates it
  (deterministic; the planned run id is checked against the worker's).
- biasbench and its dependencies must be installed on every node, as with
  any Ray job; the record keeps each worker's commit and versions.
"""

from __future__ import annotations

import logging
from typing import Iterator

from biasbench.errors import UserError
from biasbench.launch.extras import require
from biasbench.launch.grid import PlannedRun
from biasbench.launch.task import WorkerLog, execute


def _task(run: PlannedRun, device: str, threads: int) -> dict:
    return execute(run, device, threads, WorkerLog())


def _unwrap(exc: BaseException) -> BaseException:
    """RayTaskError wraps the task's own exception; report that one."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class RayLauncher:
    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0,
                 max_parallel: int | None = None, device: str = "auto", max_retries: int = 3):
        self.address, self.cpus, self.gpus = address, cpus_per_run, gpus_per_run
        self.max_parallel, self.device, self.max_retries = max_parallel, device, max_retries
        require("ray")  # fail before planning work if the extra is missing

    def describe(self, n_runs: int) -> str:
        where = self.address or "a local Ray instance (or the one already started)"
        cap = f", at most {self.max_parallel} at once" if self.max_parallel else ""
        return f"ray: {where}; each run {self.cpus} CPU(s), {self.gpus:g} GPU(s){cap}; retried {self.max_retries}x on worker loss"

    def run(self, runs: list[PlannedRun]) -> Iterator[tuple[PlannedRun, dict | BaseException]]:
        ray = require("ray")
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise UserError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}") from None
        remote = ray.remote(_task).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries, retry_exceptions=False,
            name="biasbench-run",
        )
        limit = self.max_parallel or len(runs)
        queue, pending = list(runs), {}
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    run = queue.pop(0)
                    pending[remote.remote(run, self.device, self.cpus)] = run
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    run = pending.pop(ref)
                    try:
                        yield run, ray.get(ref)
                    except Exception as exc:  # task error, or worker lost more often than max_retries
                        yield run, _unwrap(exc)
        finally:
            for ref in pending:
                ray.cancel(ref)
            if started:
                ray.shutdown()
