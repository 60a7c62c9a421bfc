"""PSNR and SSIM: closed forms on hand-computed cases and the properties they must have."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from blurgen.bgan.nets import DeblurGenerator
from blurgen.metrics import gaussian_window, psnr, ssim, y_channel


def test_psnr_closed_form():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)  # mse 0.01 -> 10 log10(1 / 0.01)
    assert psnr(a, a) == math.inf
    assert psnr(a * 255, b * 255, data_range=255) == pytest.approx(20.0)


def test_integer_images_are_scaled_not_misread():
    rng = np.random.default_rng(2)
    a = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    b = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    as_float = a / np.float32(255), b / np.float32(255)
    assert psnr(a, b) == pytest.approx(psnr(*as_float))
    assert ssim(a, b) == pytest.approx(ssim(*as_float))
    assert psnr(a.astype(np.uint16) * 257, as_float[1]) == pytest.approx(psnr(*as_float))
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, b, data_range=255)
    with pytest.raises(TypeError, match="uint8 or uint16"):
        ssim(a.astype(np.int32), b.astype(np.int32))


def test_window():
    w = gaussian_window()
    assert w.shape == (11, 11) and w.sum() == pytest.approx(1)
    assert w[5, 5] == w.max() and w[0, 0] == pytest.approx(w[10, 10])


def test_ssim_constant_images_closed_form():
    # Flat images: no variance, so only the luminance term remains.
    x, y = 0.2, 0.6
    c1 = (0.01) ** 2
    expected = (2 * x * y + c1) / (x**2 + y**2 + c1)
    assert ssim(np.full((16, 16), x), np.full((16, 16), y)) == pytest.approx(expected, rel=1e-9)


def test_ssim_properties():
    rng = np.random.default_rng(0)
    image = rng.random((48, 40, 3))
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = [np.clip(image + rng.normal(0, s, image.shape), 0, 1) for s in (0.02, 0.1, 0.3)]
    scores = [ssim(n, image) for n in noisy]
    assert scores[0] > scores[1] > scores[2]
    assert ssim(noisy[1], image) == pytest.approx(ssim(image, noisy[1]))
    with pytest.raises(ValueError, match="shape"):
        ssim(image, image[:-1])
    with pytest.raises(ValueError, match="11x11"):
        ssim(image[:8, :8], image[:8, :8])


def test_deblur_generator_structure_and_global_skip():
    g = DeblurGenerator(channels=8, blocks=16)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 + 16 * 5
    torch.nn.init.zeros_(g.tail[-1].weight)
    torch.nn.init.zeros_(g.tail[-1].bias)
    x = torch.rand(2, 3, 12, 12)
    torch.testing.assert_close(g(x), x)  # a zero residual gives back the input


def scalar_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one channel, window by window, with plain loops (Wang et al. 2004)."""
    w = gaussian_window()
    c1, c2 = 0.01**2, 0.03**2
    scores = []
    for y in range(a.shape[0] - 10):
        for x in range(a.shape[1] - 10):
            pa, pb = a[y : y + 11, x : x + 11], b[y : y + 11, x : x + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            scores.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(scores))


def test_ssim_matches_the_windowed_definition():
    rng = np.random.default_rng(3)
    a = rng.random((15, 14))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(scalar_ssim(a, b), abs=1e-10)


def test_y_channel_closed_form():
    # BT.601 on the 0-255 scale: 16 + 65.481 R + 128.553 G + 24.966 B, RGB in [0, 1].
    colours = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]]])
    expected = np.array([[16, 235, 81.481, 144.553, 40.966, 125.5]]) / 255
    np.testing.assert_allclose(y_channel(colours), expected, rtol=0, atol=1e-12)
    as_uint8 = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(y_channel(as_uint8), expected[:, :3], rtol=0, atol=1e-7)
    assert y_channel(colours).dtype == np.float64 and y_channel(colours).shape == (1, 6)
    with pytest.raises(ValueError, match="RGB"):
        y_channel(np.zeros((4, 4)))


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1), as its source computes it:
    SciPy's Gaussian filter truncated at 3.5 sigma, then 5 px cropped from each side."""
    scores = []
    for x, y in zip(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0), strict=True):
        f = lambda v: gaussian_filter(v, sigma=1.5, truncate=3.5)  # noqa: E731
        ux, uy = f(x), f(y)
        vx, vy, vxy = f(x * x) - ux * ux, f(y * y) - uy * uy, f(x * y) - ux * uy
        c1, c2 = 0.01**2, 0.03**2
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        scores.append(s[5:-5, 5:-5].mean())
    return float(np.mean(scores))


def basicsr_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """BasicSR's calculate_ssim(crop_border=0) on one 0-255 channel, as its source computes it:
    OpenCV's Gaussian kernel and filter2D, cropped to the valid windows."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    f = lambda v: cv2.filter2D(v, -1, window)[5:-5, 5:-5]  # noqa: E731
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a**2) - mu1**2, f(b**2) - mu2**2, f(a * b) - mu1 * mu2
    return float(np.mean(((2 * mu1 * mu2 + c1) * (2 * s12 + c2))
                         / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))))  # fmt: skip


def test_metrics_match_published_conventions():
    rng = np.random.default_rng(4)
    a = (rng.random((30, 27, 3)) * 255).astype(np.uint8)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    unit = a / 255.0, b / 255.0
    # RGB: scikit-image's Wang et al. settings, and BasicSR's channel mean without a crop.
    assert ssim(*unit) == pytest.approx(skimage_ssim(*unit), abs=1e-12)
    rgb = [basicsr_ssim(*(x[..., c].astype(np.float64) for x in (a, b))) for c in range(3)]
    assert ssim(*unit) == pytest.approx(np.mean(rgb), abs=1e-12)
    # BasicSR's test_y_channel: Y on the 0-255 scale, unrounded, from float32 RGB.
    ya, yb = (np.float32(16) + x.astype(np.float32) / 255 @ np.float32([65.481, 128.553, 24.966])
              for x in (a, b))  # fmt: skip
    ya, yb = ya.astype(np.float64), yb.astype(np.float64)
    assert ssim(y_channel(a), y_channel(b)) == pytest.approx(basicsr_ssim(ya, yb), abs=1e-8)
    basicsr_psnr = 10 * math.log10(255**2 / np.mean((ya - yb) ** 2))
    assert psnr(y_channel(a), y_channel(b)) == pytest.approx(basicsr_psnr, abs=1e-6)
    assert psnr(y_channel(a), y_channel(b)) != pytest.approx(psnr(a, b), abs=0.1)
