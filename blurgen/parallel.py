"""Ordered, bounded work in worker processes, for jobs whose output must not depend on them."""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from typing import Any


def ordered_map(function: Callable[..., Any], jobs: Iterable[tuple], workers: int) -> Iterator:
    """``function(*job)`` for each job, yielded in job order.

    With ``workers > 1`` the jobs run in that many spawned processes, at most two per worker
    ahead of the consumer so memory stays bounded; otherwise in this process. ``function`` must
    be importable (module level). Workers ignore Ctrl-C: the caller handles it, and the pool
    stops after the jobs in progress.
    """
    if workers <= 1:
        for job in jobs:
            yield function(*job)
        return
    # spawn, not fork: callers hold open HDF5 files and library threads.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=signal.signal,
        initargs=(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        queue = iter(jobs)
        pending = deque(pool.submit(function, *job) for job in islice(queue, 2 * workers))
        while pending:
            result = pending.popleft().result()
            for job in islice(queue, 1):
                pending.append(pool.submit(function, *job))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
