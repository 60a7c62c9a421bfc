"""The CuPy stand-in keeps CuPy's rules: device and host arrays do not mix implicitly, and a raw
kernel's launch must match its C signature."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def test_device_arrays_do_not_become_host_arrays_implicitly(cupy_standin):
    cp = cupy_standin
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    device = cp.asarray(host)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(device)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.empty((2, 3), np.float32)[...] = device
    copy = device.get()
    assert type(copy) is np.ndarray and np.array_equal(copy, host)
    copy[0, 0] = 7
    assert float(device[0, 0]) == 0  # .get() copies


def test_device_functions_refuse_host_arrays(cupy_standin):
    cp = cupy_standin
    host = np.ones((2, 3), np.float32)
    device = cp.asarray(host)
    for call in (
        lambda: device + host,
        lambda: host * device,
        lambda: cp.where(device > 0, host, device),
        lambda: cp.maximum(device, host),
        lambda: device.__setitem__(0, host[0]),
        lambda: device.clip(host, 2),
    ):
        with pytest.raises(TypeError, match="Unsupported type"):
            call()
    assert float((device * 2 + np.float32(1)).sum()) == 18  # scalars are fine
    assert type(device[np.array([0, 1])]) is cp.ndarray  # and host index arrays


def test_device_arrays_behave_like_cupys(cupy_standin):
    cp = cupy_standin
    host = np.arange(6, dtype=np.float32)
    device = cp.asarray(host)
    host[0] = 9
    assert float(device[0]) == 0  # asarray copied the host array
    total = device.sum()
    assert type(total) is cp.ndarray and total.shape == ()  # no scalars on a device
    view = device[2:4]
    view *= 10  # in place, through a view
    assert np.array_equal(device.get(), [0, 1, 20, 30, 4, 5])


def _kernel(cupy_standin):
    from blurgen.kernels._cuda import _SOURCE

    return cupy_standin.RawKernel(_SOURCE, "integrate_trajectories")


def test_raw_kernels_read_their_signature(cupy_standin):
    kernel = _kernel(cupy_standin)
    assert [p[2] for p in kernel.parameters] == [
        "noise", "velocity0", "gain", "pull", "points", "shake_ptr", "shake_step",
        "shake_factor", "step", "steps", "n", "positions"]  # fmt: skip
    assert kernel.parameters[0] == ("float2", True, "noise")
    assert kernel.parameters[4] == ("long long", True, "points")
    assert kernel.parameters[9] == ("int", False, "steps")


def _arguments(cp, n: int = 3, steps: int = 4) -> list:
    return [
        cp.zeros((steps, n), np.complex64), cp.ones(n, np.complex128), cp.ones(n), cp.zeros(n),
        cp.full(n, steps + 1, dtype=np.int64), cp.zeros(n + 1, np.int64), cp.zeros(0, np.int64),
        cp.zeros(0, np.complex128), np.float64(1), np.int32(steps), np.int32(n),
        cp.empty((steps + 1, n), np.complex128),
    ]  # fmt: skip


def test_raw_kernel_launches_are_checked_against_the_signature(cupy_standin):
    cp = cupy_standin
    kernel = _kernel(cp)
    args = _arguments(cp)
    kernel((1,), (128,), tuple(args))  # as it should be: runs
    assert np.allclose(args[-1].get()[:, 0], np.arange(5))  # unit steps along the start velocity
    wrong = {
        0: cp.zeros((4, 3), np.complex128),  # double2 where the kernel reads float2
        4: cp.full(3, 5, dtype=np.int32),  # int where it reads long long
        1: cp.ones((3, 2), np.complex128)[:, 0],  # not contiguous
        6: np.zeros(0, np.int64),  # a host array
        9: 4,  # a Python int for an int parameter
        8: np.float32(1),  # float for double
    }
    for index, value in wrong.items():
        with pytest.raises(TypeError, match=kernel.parameters[index][2]):
            kernel((1,), (128,), tuple(args[:index] + [value] + args[index + 1 :]))
    with pytest.raises(TypeError, match="takes 12 arguments"):
        kernel((1,), (128,), tuple(args[:-1]))
    with pytest.raises(ValueError, match="threads"):
        kernel((1,), (2,), tuple(args))


def test_processes_a_test_starts_have_the_standin_too(cupy_standin):
    # make-dataset's worker processes on CUDA are spawned: they import CuPy afresh.
    code = "import cupy; print(cupy.__version__, cupy.cuda.runtime.getDeviceCount())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["stand-in", "1"]
