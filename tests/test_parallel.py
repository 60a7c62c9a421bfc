"""Ordered work in threads and processes, and arrays handed over in shared memory."""

from __future__ import annotations

import os
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import pytest
from test_pipeline import photos

import blurgen.parallel
from blurgen.parallel import (
    SHARED_MIN_BYTES,
    free_shared,
    ordered_map,
    share_arrays,
    shared_arrays,
)
from blurgen.pipeline import DatasetConfig, make_dataset, plan_jobs, synthesise, synthesise_shared

CONFIG = DatasetConfig(patch=32, per_image=5, kernel_size=9)


def gone(name):
    with pytest.raises(FileNotFoundError):
        SharedMemory(name)
    return True


def test_large_arrays_cross_in_a_block_and_come_back_equal():
    big = np.arange(SHARED_MIN_BYTES, dtype=np.uint8).reshape(-1, 4)
    odd = np.linspace(0, 1, 1001, dtype=np.float64)  # not a multiple of the alignment
    small = np.arange(3, dtype=np.int32)
    tables = [{"big": big.copy(), "small": small}, {"odd": odd.copy(), "none": None}]
    name = share_arrays(tables)
    assert not isinstance(tables[0]["big"], np.ndarray) and not isinstance(
        tables[1]["odd"], np.ndarray
    )
    assert tables[0]["small"] is small  # small arrays travel as they are
    with shared_arrays(tables, name):
        np.testing.assert_array_equal(tables[0]["big"], big)
        np.testing.assert_array_equal(tables[1]["odd"], odd)
        assert tables[1]["odd"].dtype == np.float64 and tables[0]["big"].shape == big.shape
    assert tables[0]["big"] is None and tables[1]["odd"] is None and gone(name)
    assert share_arrays([{"small": small}]) is None
    with shared_arrays([{"small": small}], None):
        pass


def test_a_block_is_freed_when_writing_it_fails():
    tables = [{"big": np.ones(SHARED_MIN_BYTES, np.uint8)}]
    name = share_arrays(tables)
    with pytest.raises(OSError), shared_arrays(tables, name):
        raise OSError("disk full")
    assert gone(name)


def test_worker_processes_hand_over_the_pairs_in_shared_memory(tmp_path):
    sources = [str(p) for p in photos(tmp_path, count=3)]
    jobs = [(job, CONFIG, 7) for job in plan_jobs(sources, CONFIG.per_image, 4)]
    here = [synthesise(*job) for job in jobs]
    outputs = list(ordered_map(synthesise_shared, jobs, 2))
    assert len(outputs) == len(jobs)
    for expected, (results, name) in zip(here, outputs, strict=True):
        for mine, theirs in zip(expected, results, strict=True):
            for key, value in mine.arrays.items():  # the large ones were not pickled
                large = value.nbytes >= SHARED_MIN_BYTES
                assert isinstance(theirs.arrays[key], np.ndarray) != large, key
        with shared_arrays([r.arrays for r in results], name):
            for mine, theirs in zip(expected, results, strict=True):
                assert mine.arrays.keys() == theirs.arrays.keys()
                for key, value in mine.arrays.items():
                    np.testing.assert_array_equal(theirs.arrays[key], value, err_msg=key)
        assert name is None or gone(name)
    assert any(name for _, name in outputs)


def test_results_left_behind_by_a_consumer_that_stops_are_discarded(tmp_path):
    sources = [str(p) for p in photos(tmp_path, count=3)]
    jobs = [(job, CONFIG, 7) for job in plan_jobs(sources, CONFIG.per_image, 5)]
    discarded = []

    def discard(output):
        discarded.append(output[1])
        free_shared(output[1])

    outputs = ordered_map(synthesise_shared, jobs, 2, discard=discard)
    first, name = next(outputs)
    outputs.close()  # as a consumer stopped by an error or Ctrl-C
    assert discarded and name not in discarded and None not in discarded
    assert all(gone(block) for block in discarded)
    with shared_arrays([r.arrays for r in first], name):
        assert first[0].arrays["sharp"].shape == (5, 32, 32, 3)
    assert gone(name)


def test_an_error_in_the_jobs_themselves_is_the_one_raised():
    def jobs():
        yield (1,)
        raise ValueError("a bad job list")

    with pytest.raises(ValueError, match="a bad job list"):
        list(ordered_map(abs, jobs(), 2, threads=True, discard=lambda result: None))


def test_without_room_in_shared_memory_the_arrays_travel_pickled(monkeypatch, tmp_path):
    # A Docker container's /dev/shm holds 64 MB by default: a worker writing past its end dies.
    monkeypatch.setattr(blurgen.parallel, "SHM_FOLDER", str(tmp_path))
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    big = np.zeros(SHARED_MIN_BYTES, np.uint8)
    tables = [{"big": big}]
    real = os.statvfs

    def full(path):
        stats = real(path)
        return os.statvfs_result((*stats[:4], SHARED_MIN_BYTES // stats.f_frsize, *stats[5:]))

    monkeypatch.setattr(os, "statvfs", full)
    assert free > 2 * big.nbytes and share_arrays(tables) is None and tables[0]["big"] is big
    monkeypatch.setattr(os, "statvfs", real)
    name = share_arrays(tables)
    assert name is not None
    free_shared(name)
    assert gone(name)


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs Linux's /dev/shm")
def test_a_run_stopped_by_a_bad_source_leaves_no_block_behind(tmp_path):
    paths = photos(tmp_path / "in", count=8)
    paths[5].write_bytes(b"not an image")
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(ValueError, match="p5.png.*--strict"):
        make_dataset(paths, tmp_path / "pairs.h5", CONFIG, workers=2, executor="processes",
                     strict=True)  # fmt: skip
    assert set(os.listdir("/dev/shm")) <= before
