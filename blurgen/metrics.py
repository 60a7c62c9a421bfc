"""Image quality metrics: PSNR, and SSIM with the standard parameters (Wang et al. 2004).

Both take float images in [0, data_range], or uint8 / uint16 images, which are scaled to [0, 1]
(:func:`blurgen.color.as_unit_float`), (H, W) or (H, W, C); SSIM is computed per channel
with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, over the pixels where the
window fits, and averaged. :func:`y_channel` gives the BT.601 luma that published tables
often score instead of RGB.

Other tools' conventions differ, and so do their numbers on the same images:

- PSNR is 10 log10(data_range^2 / MSE) over all pixels and channels, as torchmetrics'
  ``peak_signal_noise_ratio`` computes it with ``data_range=1.0`` (without it torchmetrics
  takes the range from the data).
- SSIM is scikit-image's ``structural_similarity(a, b, channel_axis=-1, data_range=1.0,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``: RGB, and only windows
  that lie inside the image ("valid"). scikit-image's defaults (a 7 px uniform window, sample
  covariance) give other numbers.
- torchmetrics' SSIM reflect-pads the image by 5 px and, from version 1.4.2 on, averages over
  every pixel, so windows that see mirrored pixels count too (earlier versions dropped them,
  as here, and agree up to float32 rounding).
- BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (which follow Wang et al.'s MATLAB code)
  first crop ``crop_border`` px from each side, and with ``test_y_channel=True`` score the
  luma of :func:`y_channel`; their SSIM window is valid, as here. ``crop_border=0`` and RGB
  input give blurgen's numbers; with ``test_y_channel=True``, those of ``ssim(y_channel(a),
  y_channel(b))``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import fftconvolve

from blurgen.color import as_unit_float

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
# ITU-R BT.601 luma on the 0-255 scale from RGB in [0, 1], as MATLAB's rgb2ycbcr and BasicSR's
# rgb2ycbcr(y_only=True) compute it (studio swing: black is 16, white 235).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


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


def y_channel(image: np.ndarray) -> np.ndarray:
    """The ITU-R BT.601 luma (Y of YCbCr) of an RGB image, unrounded, as BasicSR scores it.

    Args:
        image: (H, W, 3) RGB, float in [0, 1] or uint8 / uint16 (scaled to [0, 1]).

    Returns:
        (H, W) float64 Y / 255: in [16/255, 235/255] for RGB in [0, 1], the range that
        :func:`psnr` and :func:`ssim` take with ``data_range=1``, as BasicSR's 0-255 Y
        takes 255.
    """
    rgb = np.asarray(as_unit_float(image), np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"the Y channel needs an (H, W, 3) RGB image, got shape {rgb.shape}")
    return (Y_OFFSET + rgb @ np.array(Y_WEIGHTS)) / 255


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
