"""NumPy and CuPy backends give the same results for the same seed: each test runs on a CUDA
device (skipped without one) and with the strict NumPy stand-in for CuPy (tests/cupy_standin.py),
which runs the CUDA paths everywhere (see the ``cuda`` fixture)."""

from __future__ import annotations

import numpy as np
import pytest

from blurgen.backend import to_numpy
from blurgen.kernels import linear_kernels, motion_kernels


@pytest.mark.parametrize("size", [17, 64])
def test_motion_kernels_cpu_cuda_parity(size, cuda):
    cpu = motion_kernels(257, size, seed=21)
    gpu = motion_kernels(257, size, seed=21, device="cuda")
    assert type(gpu).__module__.startswith("cupy")
    assert np.abs(to_numpy(gpu) - cpu).max() <= 1e-6


def test_motion_kernels_cuda_with_big_shakes(cuda):
    params = {"expl": (0.5,), "iters": 400}
    cpu = motion_kernels(64, 32, seed=2, **params)
    gpu = to_numpy(motion_kernels(64, 32, seed=2, device="cuda", **params))
    assert np.abs(gpu - cpu).max() <= 1e-6


def test_linear_kernels_cpu_cuda_parity(cuda):
    cpu = linear_kernels(100, 31, seed=5)
    gpu = to_numpy(linear_kernels(100, 31, seed=5, device="cuda"))
    assert np.abs(gpu - cpu).max() <= 1e-6


@pytest.mark.parametrize("boundary", ["valid", "reflect", "wrap"])
def test_blur_cpu_cuda_parity(boundary, cuda):
    import cupy

    from blurgen.forward import blur

    rng = np.random.default_rng(0)
    images = rng.random((2, 40, 44, 3)).astype(np.float32)
    kernels = motion_kernels(2, 9, seed=1)
    cpu = blur(images, kernels, boundary=boundary)
    gpu = blur(cupy.asarray(images), cupy.asarray(kernels), boundary=boundary)
    assert type(gpu).__module__.startswith("cupy")
    assert np.abs(to_numpy(gpu) - cpu).max() <= 1e-5


def test_srgb_cpu_cuda_parity(cuda):
    import cupy

    from blurgen.color import linear_to_srgb, srgb_to_linear

    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(to_numpy(srgb_to_linear(cupy.asarray(x))) - srgb_to_linear(x)).max() <= 1e-6
    assert np.abs(to_numpy(linear_to_srgb(cupy.asarray(x))) - linear_to_srgb(x)).max() <= 1e-6


def test_tone_curve_cpu_cuda_parity(cuda):
    import cupy

    from blurgen.color import curve_to_linear, linear_to_curve

    curve = (0.0, 0.3, 0.55, 0.8, 1.0)
    x = np.linspace(-0.1, 1.1, 1001, dtype=np.float32)
    for function in (linear_to_curve, curve_to_linear):
        on_device = function(cupy.asarray(x), curve)
        assert type(on_device).__module__.startswith("cupy")
        assert np.abs(to_numpy(on_device) - function(x, curve)).max() <= 1e-6


def test_make_dataset_cuda_close_to_cpu(tmp_path, cuda):
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


def test_make_dataset_cuda_with_everything_on_close_to_cpu(tmp_path, cuda):
    # Every way a sample goes through the device: 8-bit sources in batches and a 16-bit one a
    # sample at a time, the three kernel methods, highlight boost, noise and JPEG.
    import cv2
    import h5py

    from blurgen.degradation import Degradation
    from blurgen.pipeline import DatasetConfig, make_dataset, regenerate

    rng = np.random.default_rng(4)
    paths = [tmp_path / f"p{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        pixels = rng.random((64, 64, 3)) * 0.9
        pixels[20:40, 10 + 10 * i : 30 + 10 * i] = 1  # highlights to boost
        depth = 65535 if i == 2 else 255
        cv2.imwrite(str(path), (pixels * depth).astype(np.uint16 if i == 2 else np.uint8))
    degradation = Degradation(highlight_boost=(2, 4), shot=(0.001, 0.004), read=(0.002, 0.01),
                              jpeg_quality=(80, 95))  # fmt: skip
    config = DatasetConfig(patch=32, per_image=6, kernel_size=9, degradation=degradation,
                           mix=(("motion", 1), ("linear", 1), ("camera", 1)))  # fmt: skip
    make_dataset(paths, tmp_path / "cpu.h5", config, seed=2)
    make_dataset(paths, tmp_path / "gpu.h5", config, seed=2, device="cuda")
    with h5py.File(tmp_path / "cpu.h5") as a, h5py.File(tmp_path / "gpu.h5") as b:
        # So the rows regenerated below are: camera, linear, motion from 8-bit sources, then
        # motion and linear from the 16-bit one.
        np.testing.assert_array_equal(a["method"][[0, 4, 8, 13, 15]], [3, 1, 0, 0, 1])
        np.testing.assert_array_equal(a["source"][[0, 4, 8, 13, 15]], [0, 0, 1, 2, 2])
        for name in ("sharp", "method", "source", "origin", "flips", "noise_seed", "kernel_field"):
            np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
        assert np.abs(a["kernel"][...] - b["kernel"][...]).max() <= 1e-6
        if cuda == "standin":  # NumPy's arithmetic throughout: the CPU's bytes
            np.testing.assert_array_equal(a["blurred"][...], b["blurred"][...])
        else:
            # The GPU's FFTs round differently, and noise drawn from light a rounding apart,
            # then JPEG, may move a few values by more than one level: none is far off.
            diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...].astype(int))
            assert diff.mean() < 0.1
        stored = {name: b[name][...] for name in ("sharp", "blurred")}
    for index in (0, 4, 8, 13, 15):
        sharp, blurred = regenerate(tmp_path / "gpu.h5", index, device="cuda")
        np.testing.assert_array_equal(sharp, stored["sharp"][index])
        diff = np.abs(blurred.astype(int) - stored["blurred"][index].astype(int))
        assert diff.max() == 0 if cuda == "standin" else diff.mean() < 0.1


def test_the_isp_on_cuda_gives_the_cpu_pairs(tmp_path, cuda):
    # The ISP develops on the host whatever the device (its noise is drawn there, and OpenCV
    # demosaics); the blur before it is the device path's, a rounding away from the CPU's even
    # with NumPy's arithmetic, and sharpening then JPEG may carry a rounding to a few values.
    # The device's own pairs replay exactly.
    import cv2
    import h5py

    from blurgen import presets
    from blurgen.pipeline import make_dataset, regenerate

    paths = [tmp_path / f"p{i}.png" for i in range(2)]
    for i, path in enumerate(paths):
        pixels = (np.random.default_rng(10 + i).random((64, 64, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(path), pixels)
    config = presets.load("phone", patch=32, per_image=4, kernel_size=9, blur="motion")
    assert config.degradation.isp is not None and config.degradation.isp.sharpen
    make_dataset(paths, tmp_path / "cpu.h5", config, seed=3)
    make_dataset(paths, tmp_path / "gpu.h5", config, seed=3, device="cuda")
    with h5py.File(tmp_path / "cpu.h5") as a, h5py.File(tmp_path / "gpu.h5") as b:
        for name in ("sharp", "isp_gains", "isp_bayer", "sharpen", "noise_seed"):
            np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
        diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...].astype(int))
        assert diff.mean() < 0.1
        stored = b["blurred"][...]
    for index in (0, 3, 5):
        _, blurred = regenerate(tmp_path / "gpu.h5", index, device="cuda")
        diff = np.abs(blurred.astype(int) - stored[index].astype(int))
        assert diff.max() == 0 if cuda == "standin" else diff.mean() < 0.1


def test_a_jobs_batch_crosses_to_the_device_and_back_once(tmp_path, cupy_standin):
    # Counted by the stand-in: one job of 60 samples from three photos. Its crops go over in
    # one copy (besides the kernels' randomness and a few small arrays of parameters), and
    # the blurred bytes and the kernels come back in one copy each, not one for each photo.
    import cupy_standin as standin

    from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset, samples_per_job

    config = DatasetConfig(patch=32, per_image=20, kernel_size=9)
    assert samples_per_job(config, 60, 1) == 60
    standin.TRANSFERS.clear()
    make_dataset(bundled_images()[:3], tmp_path / "pairs.h5", config, device="cuda")
    over = [size for way, size in standin.TRANSFERS if way == "to device"]
    back = [size for way, size in standin.TRANSFERS if way == "to host"]
    assert over.count(60 * config.crop**2 * 3) == 1
    assert sorted(back) == sorted([60 * config.patch**2 * 3, 60 * config.kernel_size**2 * 4])


def test_commands_on_cuda_give_the_cpu_results(tmp_path, cuda):
    import cv2
    import h5py
    from click.testing import CliRunner

    from blurgen.cli.main import cli
    from blurgen.kernels.bank import read_bank

    def run(*args: str) -> None:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output

    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8))
    for device in ("cpu", "cuda"):
        run("kernels", "-n", "6", "--size", "15", "--seed", "4", "--device", device, "-o",
            str(tmp_path / f"{device}.h5"))  # fmt: skip
        run("blur", str(image), "--size", "9", "--seed", "3", "--read", "0.01,0.02", "--device",
            device, "-o", str(tmp_path / device))  # fmt: skip
        # The plain defaults: the shipped preset's JPEG would turn the GPU's roundings into
        # larger differences (the test with every option on bounds those).
        pairs = str(tmp_path / f"{device}-pairs.h5")
        run("make-dataset", str(image), "--preset", "none", "--patch", "16", "--per-image", "12",
            "--kernel-size", "9", "--device", device, "--workers", "2", "-o", pairs)  # fmt: skip
    cpu, gpu = (read_bank(tmp_path / f"{device}.h5")[0] for device in ("cpu", "cuda"))
    assert np.abs(cpu - gpu).max() <= 1e-6
    with h5py.File(tmp_path / "cpu-pairs.h5") as a, h5py.File(tmp_path / "cuda-pairs.h5") as b:
        assert len(b["sharp"]) == 12
        np.testing.assert_array_equal(a["sharp"][...], b["sharp"][...])
        diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...])
        assert diff.max() <= 1
    cpu, gpu = (cv2.imread(str(tmp_path / d / "photo_blurred.png")) for d in ("cpu", "cuda"))
    assert cpu.shape == gpu.shape == (40 - 8, 48 - 8, 3)
    assert np.abs(cpu.astype(int) - gpu).max() <= 1


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_make_dataset_cuda_with_workers_makes_the_file_of_one(tmp_path, cuda, executor):
    # Threads share the GPU, processes each have their own context on it; either way jobs are
    # cut as for one worker, so each is the same batch on the device.
    import h5py

    from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

    config = DatasetConfig(patch=48, per_image=100, kernel_size=15)
    paths = bundled_images()[:3]
    make_dataset(paths, tmp_path / "one.h5", config, seed=3, device="cuda")
    make_dataset(paths, tmp_path / "three.h5", config, seed=3, device="cuda", workers=3,
                 executor=executor)  # fmt: skip
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "three.h5") as b:
        for name in ("sharp", "method", "origin", "flips", "noise_seed"):
            np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
        assert len(a["sharp"]) == 300
        # Kernels are splatted with atomic adds on the GPU, whose order may vary.
        assert np.abs(a["kernel"][...] - b["kernel"][...]).max() <= 1e-6
        diff = np.abs(a["blurred"][...].astype(int) - b["blurred"][...].astype(int))
        assert diff.max() <= 1
        if cuda == "standin":  # the stand-in computes as the CPU does, whoever runs it
            np.testing.assert_array_equal(a["blurred"][...], b["blurred"][...])
            np.testing.assert_array_equal(a["kernel"][...], b["kernel"][...])


@pytest.mark.gpu  # PyTorch's CUDA: no stand-in
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


def test_make_dataset_camera_shake_with_device_cuda_equals_the_cpu(tmp_path, cuda):
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
