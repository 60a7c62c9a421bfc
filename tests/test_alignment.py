"""Pairs are aligned: the kernel a sharp/blurred pair implies is centred, whatever made it.

The estimator is checked against pairs made by direct convolution with known, off-centre
kernels (their centroids in closed form); the pairs make-dataset writes are then checked with
it, from the HDF5 file alone, for the learned blur and for kernel blur.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.signal import convolve2d

import blurgen
from blurgen.alignment import estimate_kernel, kernel_centroid, pair_offset
from blurgen.bgan.nets import blend_blur
from blurgen.cli.main import cli
from blurgen.io import read_image
from blurgen.kernels import motion_kernels
from blurgen.pipeline import bundled_images


def photo_crops(count, side, seed=0):
    """``count`` (side, side, 3) float64 crops of the bundled photos, the first of each
    photo, then the second..."""
    rng = np.random.default_rng(seed)
    photos = [read_image(path).astype(np.float64) for path in bundled_images()]
    crops = []
    for k in range(count):
        photo = photos[k % len(photos)]
        y = rng.integers(0, photo.shape[0] - side + 1)
        x = rng.integers(0, photo.shape[1] - side + 1)
        crops.append(photo[y : y + side, x : x + side])
    return crops


def convolved_pair(crop, kernel):
    """(sharp, blurred) of a crop by direct convolution (scipy, float64, every channel): the
    valid part, and the sharp pixels it is aligned with."""
    size = kernel.shape[0]
    blurred = np.stack([convolve2d(crop[..., c], kernel, mode="valid") for c in range(3)], -1)
    half = size // 2
    return crop[half : crop.shape[0] - half, half : crop.shape[1] - half], blurred


def centroid_loop(kernel):
    """(dy, dx) first moment over the sum, px from the centre, by a float64 loop."""
    half = kernel.shape[0] // 2
    total = moment_y = moment_x = 0.0
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            total += kernel[i, j]
            moment_y += kernel[i, j] * (i - half)
            moment_x += kernel[i, j] * (j - half)
    return moment_y / total, moment_x / total


def off_centre(kernel, size, dy, dx):
    """A (size, size) kernel holding ``kernel`` with its centre moved to (dy, dx)."""
    out = np.zeros((size, size))
    k, top = kernel.shape[0], (size - kernel.shape[0]) // 2
    out[top + dy : top + dy + k, top + dx : top + dx + k] = kernel
    return out


def to_uint8(image):
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


class TestEstimator:
    def test_a_shift_is_a_delta_and_its_offset(self):
        crop = photo_crops(1, 200)[0]
        # blurred(p) = sharp(p - (3, -5)): the content moves down 3 and left 5.
        sharp, blurred = crop[20:180, 20:180], crop[17:177, 25:185]
        kernel = estimate_kernel(sharp, blurred, 21)
        expected = np.zeros((21, 21))
        expected[10 + 3, 10 - 5] = 1
        np.testing.assert_allclose(kernel, expected, atol=0.02)
        assert pair_offset(sharp, blurred, 21) == pytest.approx((3, -5), abs=0.01)

    def test_the_centroid_of_known_off_centre_kernels_by_direct_convolution(self):
        crops = photo_crops(5, 192 + 30, seed=1)
        kernels = motion_kernels(5, 21, seed=2).astype(np.float64)
        shifts = [(3, -2), (0, 0), (-4, 5), (5, 1), (-2, -5)]
        for crop, kernel, (dy, dx) in zip(crops, kernels, shifts, strict=True):
            kernel = off_centre(kernel, 31, dy, dx)
            expected = centroid_loop(kernel)
            sharp, blurred = convolved_pair(crop, kernel)
            assert pair_offset(sharp, blurred, 31) == pytest.approx(expected, abs=0.05)
            assert np.abs(estimate_kernel(sharp, blurred, 31) - kernel).sum() < 0.3  # of 1
            # As a file stores them: 8 bits.
            got = pair_offset(to_uint8(sharp), to_uint8(blurred), 31)
            assert got == pytest.approx(expected, abs=0.1)
        assert kernel_centroid(kernel) == pytest.approx(centroid_loop(kernel), abs=1e-12)

    def test_the_sign_is_blurgens_and_the_generators(self):
        # Mass down and right of the centre moves content down and right, in blurgen.blur and
        # in the kernel generator's blend_blur alike.
        kernel = np.zeros((15, 15), np.float32)
        kernel[7 + 2, 7 + 4], kernel[7, 7] = 0.5, 0.5
        crop = photo_crops(1, 160, seed=3)[0].astype(np.float32)
        for blurred in (blurgen.blur(crop, kernel, boundary="reflect"),
                        blend_blur(torch.tensor(crop).permute(2, 0, 1)[None],
                                   torch.tensor(kernel).expand(1, 3, 3, 15, 15), 64)[0]
                        .permute(1, 2, 0).numpy()):  # fmt: skip
            assert pair_offset(crop, blurred, 15) == pytest.approx((1, 2), abs=0.05)

    def test_bad_inputs(self):
        image = np.zeros((40, 40, 3))
        with pytest.raises(ValueError, match="size must be odd"):
            estimate_kernel(image, image, 8)
        with pytest.raises(ValueError, match="differ in shape"):
            estimate_kernel(image, image[:30], 9)
        with pytest.raises(ValueError, match="images must be over 40 px a side"):
            estimate_kernel(image, image, 39)


def pair_offsets(tmp_path, size, *options):
    """(N, 2) (dy, dx) offsets of the pairs ``make-dataset`` writes with these options, each
    estimated from the pair's sharp and blurred patches as the file holds them."""
    path = tmp_path / "pairs.h5"
    result = CliRunner().invoke(cli, ["make-dataset", "-o", str(path), "--patch", "256",
                                      "--per-image", "2", "--kernel-size", "31", "-q",
                                      *options])  # fmt: skip
    assert result.exit_code == 0, result.output
    with h5py.File(path) as f:
        sharp, blurred = f["sharp"][...], f["blurred"][...]
    assert len(sharp) == 2 * len(bundled_images())
    return np.array([pair_offset(s, b, size) for s, b in zip(sharp, blurred, strict=True)])


# Texture-poor patches (a sky) give loose estimates, so the middle of the pairs is judged.
TOLERANCE = 0.5


def test_learned_blur_pairs_are_aligned(tmp_path):
    # 63 px: the shipped generator's kernels (its blur reaches that far whatever --kernel-size).
    offsets = pair_offsets(tmp_path, 63, "--blur", "bgan")
    assert np.abs(np.median(offsets, axis=0)).max() < TOLERANCE, offsets


def test_kernel_blur_pairs_are_aligned(tmp_path):
    offsets = pair_offsets(tmp_path, 31, "--blur", "motion")
    assert np.abs(np.median(offsets, axis=0)).max() < TOLERANCE, offsets
