"""NumPy and CuPy backends give the same kernels for the same seed (needs a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

from blurgen.backend import to_numpy
from blurgen.kernels import linear_kernels, motion_kernels

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("size", [17, 64])
def test_motion_kernels_cpu_cuda_parity(size):
    cpu = motion_kernels(257, size, seed=21)
    gpu = motion_kernels(257, size, seed=21, device="cuda")
    assert type(gpu).__module__.startswith("cupy")
    assert np.abs(to_numpy(gpu) - cpu).max() <= 1e-6


def test_motion_kernels_cuda_with_big_shakes():
    params = {"expl": (0.5,), "iters": 400}
    cpu = motion_kernels(64, 32, seed=2, **params)
    gpu = to_numpy(motion_kernels(64, 32, seed=2, device="cuda", **params))
    assert np.abs(gpu - cpu).max() <= 1e-6


def test_linear_kernels_cpu_cuda_parity():
    cpu = linear_kernels(100, 31, seed=5)
    gpu = to_numpy(linear_kernels(100, 31, seed=5, device="cuda"))
    assert np.abs(gpu - cpu).max() <= 1e-6
