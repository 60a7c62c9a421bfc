"""Ordered, bounded work in worker processes, for jobs whose output must not depend on them."""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import Any


def leave_if_importing_main() -> None:
    """Exit quietly if this process is a spawned worker still importing the parent's script.

    A script that starts workers at its top level, not under ``if __name__ == "__main__":``,
    runs again in each worker as it starts; there the work must not start (nor its files be
    opened). The worker's exit makes the parent's :func:`ordered_map` say what is wrong, once.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(1)


def ordered_map(
    function: Callable[..., Any], jobs: Iterable[tuple], workers: int, *, threads: bool = False
) -> Iterator:
    """``function(*job)`` for each job, yielded in job order.

    With ``workers > 1`` the jobs run in that many spawned processes, or with ``threads`` in
    that many threads of this process, at most two per worker ahead of the consumer so memory
    stays bounded; otherwise in this process. For processes ``function`` must be importable
    (module level), and workers ignore Ctrl-C: the caller handles it, and the pool stops after
    the jobs in progress. Threads start at once and hand results over without a copy, but run
    Python one at a time: they pay where ``function`` spends its time in code that releases
    the GIL (NumPy, SciPy's FFTs, OpenCV).

    Raises:
        RuntimeError: the workers died before starting, as they do when a script starts them
            at its top level instead of under ``if __name__ == "__main__":``.
    """
    if workers <= 1:
        for job in jobs:
            yield function(*job)
        return
    if threads:
        pool: Executor = ThreadPoolExecutor(workers, thread_name_prefix="blurgen")
    else:
        leave_if_importing_main()
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
            try:
                result = pending.popleft().result()
            except BrokenProcessPool:
                raise RuntimeError(
                    "worker processes stopped before they could start work; a script that "
                    "uses workers > 1 must do so under 'if __name__ == \"__main__\":' (each "
                    "worker imports the script again)"
                ) from None
            for job in islice(queue, 1):
                pending.append(pool.submit(function, *job))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
