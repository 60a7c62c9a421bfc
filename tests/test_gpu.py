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


@pytest.mark.parametrize("boundary", ["valid", "reflect", "wrap"])
def test_blur_cpu_cuda_parity(boundary):
    import cupy

    from blurgen.forward import blur

    rng = np.random.default_rng(0)
    images = rng.random((2, 40, 44, 3)).astype(np.float32)
    kernels = motion_kernels(2, 9, seed=1)
    cpu = blur(images, kernels, boundary=boundary)
    gpu = blur(cupy.asarray(images), cupy.asarray(kernels), boundary=boundary)
    assert type(gpu).__module__.startswith("cupy")
    assert np.abs(to_numpy(gpu) - cpu).max() <= 1e-5


def test_srgb_cpu_cuda_parity():
    import cupy

    from blurgen.color import linear_to_srgb, srgb_to_linear

    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(to_numpy(srgb_to_linear(cupy.asarray(x))) - srgb_to_linear(x)).max() <= 1e-6
    assert np.abs(to_numpy(linear_to_srgb(cupy.asarray(x))) - linear_to_srgb(x)).max() <= 1e-6
