"""The callable a SLURM array job runs (imports submitit, so only loaded by the slurm launcher).

It is `Checkpointable`: on preemption or time-out SLURM signals the job,
submitit calls `checkpoint`, and the inherited one resubmits the same call.
Nothing needs saving at that moment: the trainer checkpoints after every
evaluation, so the requeued job resumes from the last one.
"""

from __future__ import annotations

from submitit.helpers import Checkpointable

from biasbench.launch.grid import PlannedRun
from biasbench.launch.task import WorkerLog, execute


class RunTask(Checkpointable):
    def __call__(self, run: PlannedRun, device: str, threads: int) -> dict:
        return execute(run, device, threads, WorkerLog())
