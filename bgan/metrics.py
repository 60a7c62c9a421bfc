"""Image quality metrics: PSNR, and SSIM with the standard parameters (Wang et al. 2004).

Both take float images in [0, data_range], or uint8 / uint16 images, which are scaled to [0, 1]
(:func:`blurgen.color.as_unit_float`), (H, W) or (H, W, C); SSIM is computed per channel
with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, over the pixels where the
window fits, and averaged.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import fftconvolve

from blurgen.color import as_unit_float

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def psnr(output: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    a, b = _pair(output, target, data_range)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """(size, size) float64 Gaussian weights summing to 1."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    window = np.outer(g, g)
    return window / window.sum()


def ssim(output: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity over channels; 1 for identical images."""
    a, b = _pair(output, target, data_range)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW} px, got {a.shape[:2]}")
    window = gaussian_window()[..., None]
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2

    def local(x: np.ndarray) -> np.ndarray:
        return fftconvolve(x, window, mode="valid", axes=(0, 1))

    mu_a, mu_b = local(a), local(b)
    var_a = local(a * a) - mu_a**2
    var_b = local(b * b) - mu_b**2
    cov = local(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(numerator / denominator))


def _pair(
    output: np.ndarray, target: np.ndarray, data_range: float
) -> tuple[np.ndarray, np.ndarray]:
    images = [np.asarray(output), np.asarray(target)]
    if data_range != 1 and any(x.dtype.kind != "f" for x in images):
        # psnr(uint8, uint8, data_range=255) would mean 0-255 values, but integers are scaled.
        raise ValueError(
            f"integer images are scaled to [0, 1]; data_range={data_range:g} applies to float "
            "images only, leave it at 1"
        )
    a, b = (np.asarray(as_unit_float(x), np.float64) for x in images)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    return a, b
