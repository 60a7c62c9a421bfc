"""Kernel banks: schema read back with plain h5py, atomic and resumable writes, previews."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest

import blurgen
from blurgen.kernels import linear_kernels, motion_kernels
from blurgen.kernels.bank import BankConfig, kernel_grid, read_bank, save_preview, write_bank


def test_schema_read_back_with_plain_h5py(tmp_path):
    path = write_bank(tmp_path / "bank.h5", BankConfig("motion", 10, 24), seed=5, chunk=4)
    with h5py.File(path, "r") as f:
        assert f.attrs["schema"] == "blurgen-kernels/1"
        assert f.attrs["seed"] == 5
        assert f.attrs["blurgen_version"] == blurgen.__version__
        assert "n_done" not in f.attrs
        config = json.loads(f.attrs["config"])
        kernels = f["kernels"][...]
    assert config["family"] == "motion" and config["n"] == 10 and config["size"] == 24
    assert config["params"]["max_len"] == pytest.approx(22.5)
    assert kernels.dtype == np.float32 and kernels.shape == (10, 24, 24)
    np.testing.assert_array_equal(kernels, motion_kernels(10, 24, seed=5))
    assert not (tmp_path / "bank.h5.partial").exists()


def test_linear_bank(tmp_path):
    config = BankConfig("linear", 6, 15, {"length": (2.0, 9.0), "angle": 30.0})
    kernels, info = read_bank(write_bank(tmp_path / "lines.h5", config, seed=1))
    np.testing.assert_array_equal(
        kernels, linear_kernels(6, 15, seed=1, length=(2.0, 9.0), angle=30.0)
    )
    assert info["config"]["params"] == {"length": [2.0, 9.0], "angle": 30.0}


def test_existing_output_needs_overwrite(tmp_path):
    path = write_bank(tmp_path / "bank.h5", BankConfig("motion", 3, 16), seed=0)
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_bank(path, BankConfig("motion", 3, 16), seed=1)
    write_bank(path, BankConfig("motion", 3, 16), seed=1, overwrite=True)
    assert read_bank(path)[1]["seed"] == 1


def test_missing_output_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_bank(tmp_path / "nope" / "bank.h5", BankConfig("motion", 3, 16))


def test_interrupted_write_leaves_no_complete_file_and_resumes_identically(tmp_path):
    path = tmp_path / "bank.h5"
    config = BankConfig("motion", 40, 16)
    calls = []

    def stop_after_two_chunks(count):
        calls.append(count)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_bank(path, config, seed=3, chunk=16, progress=stop_after_two_chunks)
    assert not path.exists()
    with h5py.File(tmp_path / "bank.h5.partial", "r") as f:
        assert f.attrs["n_done"] == 32

    resumed = []
    write_bank(path, config, seed=3, chunk=16, progress=resumed.append)
    assert resumed == [32, 8]  # the kernels already there, then the rest
    np.testing.assert_array_equal(read_bank(path)[0], motion_kernels(40, 16, seed=3))


def test_resume_after_kill_9(tmp_path):
    path = tmp_path / "bank.h5"
    # The child kills itself (SIGKILL: no clean-up at all) after its third chunk.
    child = f"""
import os, signal
from blurgen.kernels.bank import BankConfig, write_bank
done = []
def progress(count):
    done.append(count)
    if len(done) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
write_bank({str(path)!r}, BankConfig("motion", 80, 16), seed=9, chunk=16, progress=progress)
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True)
    assert result.returncode == -9, result.stderr.decode()
    assert not path.exists()
    resumed = []
    write_bank(path, BankConfig("motion", 80, 16), seed=9, chunk=16, progress=resumed.append)
    assert resumed[0] == 48
    np.testing.assert_array_equal(read_bank(path)[0], motion_kernels(80, 16, seed=9))


def test_partial_of_another_config_or_unreadable_starts_afresh(tmp_path):
    path = tmp_path / "bank.h5"
    (tmp_path / "bank.h5.partial").write_bytes(b"not an HDF5 file")
    write_bank(path, BankConfig("motion", 5, 16), seed=2)
    np.testing.assert_array_equal(read_bank(path)[0], motion_kernels(5, 16, seed=2))

    def interrupt(count):
        raise KeyboardInterrupt

    other = tmp_path / "b.h5"
    with pytest.raises(KeyboardInterrupt):
        write_bank(other, BankConfig("motion", 32, 16), seed=2, chunk=16, progress=interrupt)
    progress = []
    write_bank(other, BankConfig("motion", 32, 16), seed=7, chunk=16, progress=progress.append)
    assert progress == [16, 16]
    np.testing.assert_array_equal(read_bank(other)[0], motion_kernels(32, 16, seed=7))


def test_read_bank_rejects_other_files(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not a blurgen kernel bank"):
        read_bank(tmp_path / "other.h5")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"family": "wiggle", "n": 1, "size": 16}, "family"),
        ({"family": "motion", "n": 0, "size": 16}, "at least one"),
        ({"family": "motion", "n": 1, "size": 2}, "size"),
        ({"family": "motion", "n": 1, "size": 16, "params": {"iters": 0}}, "iters"),
    ],
)
def test_invalid_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BankConfig(**kwargs)


class TestPreview:
    def test_grid_layout(self):
        grid = kernel_grid(motion_kernels(10, 16), columns=4, cell=32, gap=2)
        assert grid.dtype == np.uint8
        assert grid.shape == (3 * 34 + 2, 4 * 34 + 2, 3)

    def test_png_is_rgb_in_file_order(self, tmp_path):
        delta = np.zeros((1, 5, 5), np.float32)
        delta[0, 2, 2] = 1
        path = save_preview(tmp_path / "k.png", delta)
        bgr = cv2.imread(str(path))
        # The peak of the inferno map is pale yellow: red well above blue once decoded as BGR.
        blue, green, red = bgr[bgr.shape[0] // 2, bgr.shape[1] // 2].astype(int)
        assert red > blue + 50
        # The background of a kernel is the map's near-black start.
        assert bgr[4, 4].max() < 30


def test_worker_processes_give_the_same_bank(tmp_path):
    config = BankConfig("motion", 50, 16)
    one = write_bank(tmp_path / "one.h5", config, seed=6, chunk=10, workers=1)
    two = write_bank(tmp_path / "two.h5", config, seed=6, chunk=10, workers=2)
    np.testing.assert_array_equal(read_bank(one)[0], read_bank(two)[0])
    assert one.read_bytes() == two.read_bytes()
    np.testing.assert_array_equal(read_bank(two)[0], motion_kernels(50, 16, seed=6))


def test_ctrl_c_stops_at_the_next_chunk_with_a_resume_hint(tmp_path):
    import os
    import signal

    path = tmp_path / "bank.h5"
    handler = signal.getsignal(
        signal.SIGINT
    )  # SIG_IGN where the shell started us in the background

    def press_ctrl_c(count):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="16 of 40 kernels are in .*run the same command"):
        write_bank(path, BankConfig("motion", 40, 16), seed=1, chunk=16, progress=press_ctrl_c)
    assert not path.exists()
    write_bank(path, BankConfig("motion", 40, 16), seed=1, chunk=16)
    np.testing.assert_array_equal(read_bank(path)[0], motion_kernels(40, 16, seed=1))
    assert signal.getsignal(signal.SIGINT) is handler
