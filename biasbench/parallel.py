"""Order-preserving map over chunks on a process pool.

Results come back in input order whatever the number of workers, which is
what makes generated files independent of `--workers`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _context() -> mp.context.BaseContext:
    # fork starts in milliseconds and shares the parent's read-only arrays;
    # fall back to spawn where fork does not exist.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
) -> Iterator[R]:
    """Yield fn(item) for each item, in order, using up to `workers` processes.

    `initializer(*initargs)` runs once in each worker before its first item (in
    this process when it does the work itself). Use it for what every item
    needs and should not carry: under fork the initargs are inherited, not
    pickled (large read-only arrays cost nothing), under spawn they are pickled
    once per worker; imports done there are paid once per worker, not per item.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        if items and initializer is not None:
            initializer(*initargs)
        for item in items:
            yield fn(item)
        return
    with _context().Pool(processes=min(workers, len(items)), initializer=initializer, initargs=initargs) as pool:
        yield from pool.imap(fn, items, chunksize=1)
