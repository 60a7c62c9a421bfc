"""blur(): true convolution against scipy.signal.convolve2d, orientation, boundaries, batches."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy.signal import convolve2d

from blurgen import forward
from blurgen.forward import CHANNEL_MIN_PIXELS, blur, boundary_strip, output_size, valid_offset
from blurgen.kernels import kernel_centroid, motion_kernels


def asymmetric_kernel(size: int, seed: int = 0) -> np.ndarray:
    k = np.random.default_rng(seed).random((size, size)).astype(np.float32) ** 4
    return k / k.sum()


def reference_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Per-channel float64 scipy.signal.convolve2d in valid mode."""
    return np.stack(
        [
            convolve2d(image[..., c].astype(np.float64), kernel, mode="valid")
            for c in range(image.shape[-1])
        ],
        axis=-1,
    )


@pytest.mark.parametrize("method", ["fft", "direct"])
@pytest.mark.parametrize("size", [3, 8, 15, 31])
def test_valid_matches_convolve2d(method, size):
    rng = np.random.default_rng(size)
    image = rng.random((47, 53, 3)).astype(np.float32)
    kernel = asymmetric_kernel(size, seed=size)
    got = blur(image, kernel, method=method)
    assert got.shape == (47 - size + 1, 53 - size + 1, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_valid(image, kernel), atol=2e-6)


def test_convolution_not_correlation():
    image = np.zeros((9, 9, 1), np.float32)
    image[4, 4] = 1
    kernel = np.zeros((3, 3), np.float32)
    kernel[1, 2] = 1  # mass right of the anchor
    for method in ("fft", "direct"):
        out = blur(image, kernel, boundary="wrap", method=method)
        assert out[4, 5, 0] == pytest.approx(1) and out[4, 3, 0] == pytest.approx(0)


@pytest.mark.parametrize("size", [5, 6])
def test_centred_kernels_keep_alignment(size):
    # A kernel with its centroid on the anchor leaves the image's centre of mass in place.
    image = np.zeros((40, 40, 1), np.float32)
    image[20, 17] = 1
    kernel = motion_kernels(1, size, seed=3)[0]
    assert np.abs(kernel_centroid(kernel[None]) - size // 2).max() < 1e-3
    for boundary in ("reflect", "wrap"):
        out = blur(image, kernel, boundary=boundary)[..., 0]
        rows, cols = np.indices(out.shape)
        assert (out * rows).sum() == pytest.approx(20, abs=1e-3)
        assert (out * cols).sum() == pytest.approx(17, abs=1e-3)
    o = valid_offset(size)
    valid = blur(image, kernel)[..., 0]
    rows, cols = np.indices(valid.shape)
    assert (valid * rows).sum() + o == pytest.approx(20, abs=1e-3)
    assert (valid * cols).sum() + o == pytest.approx(17, abs=1e-3)


@pytest.mark.parametrize("boundary, mode", [("reflect", "reflect"), ("wrap", "wrap")])
def test_same_size_boundaries(boundary, mode):
    rng = np.random.default_rng(1)
    image = rng.random((30, 34, 3)).astype(np.float32)
    kernel = asymmetric_kernel(7, seed=2)
    o = valid_offset(7)
    padded = np.pad(image, ((o, 3), (o, 3), (0, 0)), mode=mode)
    for method in ("fft", "direct"):
        got = blur(image, kernel, boundary=boundary, method=method)
        assert got.shape == image.shape
        np.testing.assert_allclose(got, reference_valid(padded, kernel), atol=2e-6)


@pytest.mark.parametrize("boundary", ["valid", "reflect", "wrap"])
def test_strips_give_the_rows_of_the_whole_blur(boundary):
    rng = np.random.default_rng(6)
    image = (rng.random((23, 19, 3)) * 255).astype(np.uint8)[..., ::-1]  # a view, as Photo.rgb
    kernel = asymmetric_kernel(7, seed=3)
    whole = blur(image, kernel, boundary=boundary, method="direct")
    assert output_size(23, 19, 7, boundary) == whole.shape[:2]
    for start, stop in [(0, 5), (5, 12), (12, whole.shape[0]), (0, whole.shape[0])]:
        strip = boundary_strip(image, 7, boundary, start, stop)
        assert strip.dtype == np.uint8 and strip.shape[0] == stop - start + 6
        np.testing.assert_array_equal(blur(strip, kernel, method="direct"), whole[start:stop])


def test_batches_with_one_kernel_each_and_shared():
    rng = np.random.default_rng(4)
    images = rng.random((3, 20, 22, 2)).astype(np.float32)
    kernels = np.stack([asymmetric_kernel(5, seed=s) for s in range(3)])
    got = blur(images, kernels)
    for i in range(3):
        np.testing.assert_allclose(got[i], reference_valid(images[i], kernels[i]), atol=2e-6)
    shared = blur(images, kernels[1])
    for i in range(3):
        np.testing.assert_allclose(shared[i], reference_valid(images[i], kernels[1]), atol=2e-6)


def test_mean_preserved_and_channels_kept():
    rng = np.random.default_rng(5)
    image = np.zeros((64, 64, 3), np.float32)
    image[..., 0] = 0.2 + 0.6 * rng.random((64, 64))  # red only
    out = blur(image, motion_kernels(1, 15, seed=1)[0], boundary="wrap")
    assert out[..., 1:].max() == 0 and out[..., 2].max() == 0
    assert out[..., 0].mean() == pytest.approx(image[..., 0].mean(), rel=1e-5)


def test_more_than_four_channels_direct():
    image = np.random.default_rng(6).random((16, 16, 6)).astype(np.float32)
    kernel = asymmetric_kernel(3)
    np.testing.assert_allclose(
        blur(image, kernel, method="direct"), reference_valid(image, kernel), atol=2e-6
    )


@pytest.mark.parametrize(
    "image, kernel, kwargs, message",
    [
        (np.zeros((8, 8)), np.ones((3, 3)), {}, "image"),
        (np.zeros((8, 8, 1)), np.ones((3, 4)), {}, "square"),
        (np.zeros((2, 8, 8, 1)), np.ones((3, 3, 3)), {}, "3 kernels for 2 images"),
        (np.zeros((4, 8, 1)), np.ones((5, 5)), {}, "smaller than its 5x5 kernel"),
        (np.zeros((8, 8, 1)), np.ones((3, 3)), {"boundary": "same"}, "boundary"),
        (np.zeros((8, 8, 1)), np.ones((3, 3)), {"method": "magic"}, "method"),
        (np.zeros((8, 8, 1)), np.ones((3, 3)), {"threads": 0}, "threads"),
    ],
)
def test_bad_input(image, kernel, kwargs, message):
    with pytest.raises(ValueError, match=message):
        blur(image, kernel, **kwargs)


def test_uint8_images_are_scaled():
    codes = np.random.default_rng(0).integers(0, 256, (20, 20, 3)).astype(np.uint8)
    kernel = np.full((3, 3), 1 / 9, np.float32)
    np.testing.assert_allclose(
        blur(codes, kernel), blur(codes / np.float32(255), kernel), rtol=1e-6
    )


class TestThreads:
    """Large images are blurred a channel at a time, on several threads from the main thread."""

    @staticmethod
    def large(n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        side = int(np.sqrt(CHANNEL_MIN_PIXELS)) + 1
        images = np.random.default_rng(0).random((n, side, side + 9, 3), dtype=np.float32)
        return images, motion_kernels(n, 15, seed=1)

    def test_same_bits_whatever_the_threads(self):
        images, kernels = self.large(2)
        whole = forward._valid_fft(images, kernels)  # every channel of every image at once
        for threads in (None, 1, 2, 5):
            np.testing.assert_array_equal(blur(images, kernels, threads=threads), whole)
        np.testing.assert_array_equal(blur(images[0], kernels[0], threads=3), whole[0])

    def test_grey_and_many_cores_share_the_transforms_out(self, monkeypatch):
        images, kernels = self.large()
        grey = np.ascontiguousarray(images[..., :1])
        whole, whole_grey = forward._valid_fft(images, kernels), forward._valid_fft(grey, kernels)
        for threads in (2, 16):
            np.testing.assert_array_equal(blur(images, kernels, threads=threads), whole)
            np.testing.assert_array_equal(blur(grey, kernels, threads=threads), whole_grey)
        # Every core from the main thread: a thread a channel, the rest inside each channel.
        monkeypatch.setattr(forward, "fft_threads", lambda: 16)
        pools, calls = [], []
        valid_fft = forward._valid_fft
        monkeypatch.setattr(forward, "ThreadPoolExecutor",
                            lambda n: pools.append(n) or ThreadPoolExecutor(n))  # fmt: skip

        def spy(images, kernels, workers=1):
            calls.append(workers)
            return valid_fft(images, kernels)

        monkeypatch.setattr(forward, "_valid_fft", spy)
        blur(images[0], kernels[0])
        assert pools == [3] and calls == [5, 5, 5]
        pools.clear(), calls.clear()
        blur(grey[0], kernels[0])
        assert pools == [] and calls == [16]

    def test_main_thread_uses_every_core(self, monkeypatch):
        monkeypatch.setattr(forward.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
        monkeypatch.setattr(forward.os, "cpu_count", lambda: 3)
        assert forward.fft_threads() == 3

    def test_worker_processes_keep_one(self, monkeypatch):
        monkeypatch.setattr(forward.multiprocessing, "parent_process", lambda: object())
        assert forward.fft_threads() == 1

    def test_worker_threads_keep_one(self, monkeypatch):
        # make-dataset's worker threads (and worker processes) blur on their own thread only.
        started = []
        monkeypatch.setattr(forward, "ThreadPoolExecutor", lambda *a, **k: started.append(a))
        images, kernels = self.large()
        found = {}

        def work() -> None:
            found["threads"] = forward.fft_threads()
            found["blurred"] = blur(images[0], kernels[0])

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert found["threads"] == 1 and not started
        np.testing.assert_array_equal(found["blurred"], forward._valid_fft(images, kernels)[0])
