"""The local launcher: a process pool on this machine.

K worker processes (default: one per core, at most one per run) each train
one run at a time with cores // K torch threads, so the pool never asks for
more threads than there are cores. Workers are spawned, not forked: a
forked child inherits the parent's OpenMP state, which can deadlock torch.
With one worker the runs train in this process (no start-up cost), with
the caller's reporter: `biasbench run` shows each run's progress this way.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Iterator

import torch

from biasbench.launch.grid import PlannedRun
from biasbench.launch.task import execute
from biasbench.parallel import default_workers
from biasbench.progress import SILENT, Reporter


def pool_shape(n_runs: int, max_parallel: int | None, device: str, cores: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads per run)."""
    cores = cores or default_workers()
    if max_parallel is None:
        # GPU runs share one device: one at a time unless the user packs them.
        gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        max_parallel = 1 if gpu else cores
    workers = max(1, min(max_parallel, n_runs))
    return workers, max(1, cores // workers)


class LocalLauncher:
    name = "local"

    def __init__(self, max_parallel: int | None = None, device: str = "auto", reporter: Reporter = SILENT):
        self.max_parallel, self.device, self.reporter = max_parallel, device, reporter

    def describe(self, n_runs: int) -> str:
        workers, threads = pool_shape(n_runs, self.max_parallel, self.device)
        if workers == 1:  # trains in this process, under its own thread count (see run)
            return f"local: this process x {torch.get_num_threads()} torch thread(s)"
        return f"local: {workers} process(es) x {threads} torch thread(s)"

    def run(self, runs: list[PlannedRun]) -> Iterator[tuple[PlannedRun, dict | BaseException]]:
        workers, threads = pool_shape(len(runs), self.max_parallel, self.device)
        if workers == 1:
            for run in runs:
                try:
                    # this process's own thread count stands (OMP_NUM_THREADS, a caller's setting)
                    yield run, execute(run, self.device, None, self.reporter)
                except Exception as exc:  # one failed run does not stop the sweep
                    yield run, exc
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            pending: dict[Future, PlannedRun] = {pool.submit(execute, run, self.device, threads): run for run in runs}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        run = pending.pop(future)
                        exc = future.exception()
                        yield run, exc if exc is not None else future.result()
            finally:
                for future in pending:  # interrupted: queued runs never start
                    future.cancel()
