"""Ordered, bounded work in worker processes, for jobs whose output must not depend on them,
and large arrays handed from a worker process to its parent in shared memory."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

# Jobs started ahead of the consumer, per worker.
AHEAD = 2
# Arrays of at least this many bytes leave a worker process in shared memory, not pickled
# through its pipe (for 256 px pairs that took the parent 1.3-1.7 ms a pair, against 0.6
# for all of its work with the pairs shared; smaller arrays are not worth a mapping).
SHARED_MIN_BYTES = 4096
# Offsets of arrays in a shared block are multiples of this (a cache line).
_ALIGN = 64
# Where Linux keeps POSIX shared memory.
SHM_FOLDER = "/dev/shm"


def leave_if_importing_main() -> None:
    """Exit quietly if this process is a spawned worker still importing the parent's script.

    A script that starts workers at its top level, not under ``if __name__ == "__main__":``,
    runs again in each worker as it starts; there the work must not start (nor its files be
    opened). The worker's exit makes the parent's :func:`ordered_map` say what is wrong, once.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(1)


def ordered_map(
    function: Callable[..., Any],
    jobs: Iterable[tuple],
    workers: int,
    *,
    threads: bool = False,
    discard: Callable[[Any], None] | None = None,
    ahead: int = AHEAD,
) -> Iterator:
    """``function(*job)`` for each job, yielded in job order.

    With ``workers > 1`` the jobs run in that many spawned processes, or with ``threads`` in
    that many threads of this process, at most ``ahead`` (:data:`AHEAD`) per worker ahead of
    the consumer so memory stays bounded; otherwise in this process. ``discard`` is called with each
    result that was made but not yielded, when the consumer stops early (an error, Ctrl-C),
    to free what it holds. For processes ``function`` must be importable
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
    pending: deque = deque()
    try:
        queue = iter(jobs)
        pending.extend(pool.submit(function, *job) for job in islice(queue, ahead * workers))
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
        for future in pending if discard is not None else ():
            if not future.cancelled() and future.exception() is None:
                discard(future.result())


@dataclass(frozen=True)
class _Placeholder:
    """Where an array lies in a shared block."""

    offset: int
    shape: tuple[int, ...]
    dtype: str


def share_arrays(tables: Sequence[dict[str, Any]]) -> str | None:
    """In a worker process: move the large arrays of these dicts into one new shared-memory
    block, each replaced by a placeholder, for :func:`shared_arrays` in the parent to put
    back, without pickling them through the pipe.

    Args:
        tables: dicts of arrays; arrays of :data:`SHARED_MIN_BYTES` or more are moved.

    Returns:
        The block's name, or None when nothing was moved: no large arrays; Windows, whose
        shared memory ends with the last process that has it open; or too little room in
        ``/dev/shm`` (64 MB in a Docker container by default), where writing past its end
        would kill the worker.
    """
    if os.name == "nt":
        return None
    large = [(table, key) for table in tables for key, value in table.items()
             if isinstance(value, np.ndarray) and value.nbytes >= SHARED_MIN_BYTES]  # fmt: skip
    offsets, size = [], 0
    for table, key in large:
        offsets.append(size)
        size += -(-table[key].nbytes // _ALIGN) * _ALIGN
    if not large or not _room_for(size):
        return None
    # Registered with the resource tracker that spawned workers share with their parent: a
    # block nobody frees is unlinked when the parent exits.
    block = SharedMemory(create=True, size=size)
    try:
        for (table, key), offset in zip(large, offsets, strict=True):
            array = table[key]
            np.ndarray(array.shape, array.dtype, block.buf, offset)[...] = array
            table[key] = _Placeholder(offset, array.shape, array.dtype.str)
    except BaseException:
        block.close()
        block.unlink()
        raise
    block.close()
    return block.name


def _room_for(size: int) -> bool:
    """Whether ``/dev/shm`` has room for a block of ``size`` bytes, and as much again for the
    blocks other workers make meanwhile (true where there is no ``/dev/shm`` to ask)."""
    try:
        stats = os.statvfs(SHM_FOLDER)
    except OSError:
        return True
    return stats.f_bavail * stats.f_frsize >= 2 * size


@contextlib.contextmanager
def shared_arrays(tables: Sequence[dict[str, Any]], name: str | None) -> Iterator[None]:
    """In the parent: the arrays :func:`share_arrays` moved into block ``name``, put back in
    ``tables`` as views of the block while the context lasts; then removed from the tables
    and the block freed. Nothing to do for ``name`` None."""
    if name is None:
        yield
        return
    block = SharedMemory(name)
    placed = [(table, key) for table in tables for key, value in table.items()
              if isinstance(value, _Placeholder)]  # fmt: skip
    try:
        for table, key in placed:
            where = table[key]
            table[key] = np.ndarray(where.shape, np.dtype(where.dtype), block.buf, where.offset)
        yield
    finally:
        for table, key in placed:
            table[key] = None
        with contextlib.suppress(BufferError):  # a view still held elsewhere: freed with it
            block.close()
        block.unlink()


def free_shared(name: str | None) -> None:
    """Free a block made by :func:`share_arrays` that will not be taken."""
    if name is not None:
        with contextlib.suppress(FileNotFoundError):
            block = SharedMemory(name)
            block.close()
            block.unlink()
