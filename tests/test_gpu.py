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


def test_make_dataset_cuda_close_to_cpu(tmp_path):
    import cv2
    import h5py

    from blurgen.pipeline import DatasetConfig, make_dataset

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"p{i}.png")
        pixels = (np.random.default_rng(i).random((60, 60, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(paths[-1]), pixels)
    config = DatasetConfig(patch=32, per_image=3, kernel_size=9)
    make_dataset(paths, tmp_path / "cpu.h5", config, seed=1)
    make_dataset(paths, tmp_path / "gpu.h5", config, seed=1, device="cuda")
    with h5py.File(tmp_path / "cpu.h5") as a, h5py.File(tmp_path / "gpu.h5") as b:
        np.testing.assert_array_equal(a["sharp"][...], b["sharp"][...])
        assert np.abs(a["kernel"][...] - b["kernel"][...]).max() <= 1e-6
        diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...].astype(int))
        assert diff.max() <= 1


def test_make_dataset_cuda_with_threads_makes_the_file_of_one(tmp_path):
    # Threads share the GPU (processes are for the CPU, so the executor is not used); jobs are
    # cut as for one worker, so each is the same batch on the device.
    import h5py

    from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

    config = DatasetConfig(patch=48, per_image=100, kernel_size=15)
    paths = bundled_images()[:3]
    make_dataset(paths, tmp_path / "one.h5", config, seed=3, device="cuda")
    make_dataset(paths, tmp_path / "three.h5", config, seed=3, device="cuda", workers=3,
                 executor="processes")  # fmt: skip
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "three.h5") as b:
        for name in ("sharp", "method", "origin", "flips", "noise_seed"):
            np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
        assert len(a["sharp"]) == 300
        # Kernels are splatted with atomic adds on the GPU, whose order may vary.
        assert np.abs(a["kernel"][...] - b["kernel"][...]).max() <= 1e-6
        diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...].astype(int))
        assert diff.max() <= 1


def test_make_dataset_runs_the_bgan_on_cuda_close_to_cpu(tmp_path):
    import h5py

    from blurgen.bgan.infer import BganBlur
    from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

    config = DatasetConfig(patch=48, per_image=6, kernel_size=9, blur="bgan")
    paths = bundled_images()[:2]
    make_dataset(paths, tmp_path / "cpu.h5", config, learned=BganBlur(config.bgan))
    make_dataset(paths, tmp_path / "gpu.h5", config, device="cuda",
                 learned=BganBlur(config.bgan, "cuda"))  # fmt: skip
    with h5py.File(tmp_path / "cpu.h5") as a, h5py.File(tmp_path / "gpu.h5") as b:
        np.testing.assert_array_equal(a["sharp"][...], b["sharp"][...])
        # cuDNN's convolutions (TF32 where allowed) round differently from the CPU's.
        diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...].astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.05


def test_make_dataset_camera_shake_with_device_cuda_equals_the_cpu(tmp_path):
    # Camera shake is warped on the host whatever --device: the same bytes.
    import h5py

    from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

    config = DatasetConfig(patch=48, per_image=4, kernel_size=15, blur="camera")
    paths = bundled_images()[:2]
    make_dataset(paths, tmp_path / "cpu.h5", config, seed=1)
    make_dataset(paths, tmp_path / "gpu.h5", config, seed=1, device="cuda")
    with h5py.File(tmp_path / "cpu.h5") as a, h5py.File(tmp_path / "gpu.h5") as b:
        for name in ("sharp", "blurred", "kernel", "kernel_field", "camera_trajectory"):
            np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
