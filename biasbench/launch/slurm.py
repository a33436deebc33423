"""The SLURM launcher: one submitit job array per sweep.

- One array task per run, at most `max_parallel` running at once
  (`slurm_array_parallelism`); each asks for `cpus_per_run` CPUs (also its
  torch threads) and `gpus_per_run` GPUs.
- Preemption and time-outs requeue the task (slurm_task.RunTask is
  Checkpointable) and the run resumes from its last checkpoint.
- The results dir must be on a file system the compute nodes share (the
  SLURM norm): tasks write checkpoints and records there; submitit keeps its
  pickles and logs in RESULTS/slurm/.
- By default the driver waits and shows progress; with wait=False it returns
  after submission and a later `sweep` (or `leaderboard`) picks up the records.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

from biasbench.errors import UserError
from biasbench.launch.extras import require
from biasbench.launch.grid import PlannedRun

MAX_TIMEOUTS = 30  # requeues after hitting the time limit (preemptions do not count)


class SlurmLauncher:
    name = "slurm"

    def __init__(self, folder: Path, cpus_per_run: int = 1, gpus_per_run: int = 0, max_parallel: int | None = None,
                 device: str = "auto", partition: str | None = None, time_min: int = 240, wait: bool = True,
                 cluster: str = "slurm", poll_s: float = 10.0):
        require("slurm")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise UserError("--launcher slurm: sbatch is not on PATH (no SLURM here); use --launcher local or ray")
        self.folder, self.cpus, self.gpus, self.max_parallel = Path(folder), cpus_per_run, gpus_per_run, max_parallel
        self.device, self.partition, self.time_min, self.wait = device, partition, time_min, wait
        self.cluster, self.poll_s = cluster, poll_s
        self.jobs: list = []  # submitit Job objects of the last submission

    @property
    def job_ids(self) -> list[str]:
        return [job.job_id for job in self.jobs]

    def describe(self, n_runs: int) -> str:
        cap = f", at most {self.max_parallel} at once" if self.max_parallel else ""
        part = f" on partition {self.partition}" if self.partition else ""
        return (f"slurm: one job array of {n_runs} task(s){part}{cap}; each {self.cpus} CPU(s), {self.gpus} GPU(s), "
                f"{self.time_min} min, requeued on preemption; logs in {self.folder}")

    def _executor(self):
        submitit = require("slurm")
        # A run longer than --time-min goes on in chunks: each time-out requeues it and it resumes from its
        # checkpoint; submitit's default of 3 time-outs would end a long paper-profile run on a short partition.
        executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster,
                                         slurm_max_num_timeout=MAX_TIMEOUTS)
        params = dict(name="biasbench", timeout_min=self.time_min, cpus_per_task=self.cpus, gpus_per_node=self.gpus)
        if self.max_parallel:
            params["slurm_array_parallelism"] = self.max_parallel
        if self.partition:
            params["slurm_partition"] = self.partition
        executor.update_parameters(**params)
        return executor

    def run(self, runs: list[PlannedRun]) -> Iterator[tuple[PlannedRun, dict | BaseException]]:
        from biasbench.launch.slurm_task import RunTask

        n = len(runs)
        jobs = self._executor().map_array(RunTask(), runs, [self.device] * n, [self.cpus] * n)
        self.jobs = jobs
        if not self.wait:
            return
        pending = dict(zip(jobs, runs))
        while pending:
            for job in [j for j in pending if j.done()]:
                run = pending.pop(job)
                try:
                    yield run, job.result()
                except Exception as exc:  # failed job: its stderr is in the exception text
                    yield run, exc
            if pending:
                time.sleep(self.poll_s)
