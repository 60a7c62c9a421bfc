"""Sensor noise and output quantisation: deterministic cores, with randomness passed in.

Noise is drawn on the host from the sample's NumPy generator (CuPy's generators are not
reproducible across versions) and moved to the image's device.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from blurgen.backend import get_xp, to_numpy


def poisson_gaussian(linear: Any, shot: float, read: float, rng: np.random.Generator) -> Any:
    """Add shot (Poisson) and read (Gaussian) noise to a linear-light image.

    The signal is treated as ``x / shot`` photo-electrons: the result is
    ``shot * Poisson(x / shot) + Normal(0, read**2)``, whose variance is ``shot * x + read**2``.

    Args:
        linear: float array in linear light (NumPy or CuPy), non-negative.
        shot: gain in image units per electron (>= 0); 0 means no shot noise.
        read: standard deviation of the read noise in image units (>= 0).
        rng: the sample's generator.

    Returns:
        float32 array like ``linear``, unclipped.
    """
    xp = get_xp(linear)
    x = to_numpy(linear).astype(np.float64)
    if shot > 0:
        x = shot * rng.poisson(np.maximum(x, 0) / shot)
    if read > 0:
        x = x + rng.normal(0.0, read, size=x.shape)
    return xp.asarray(x.astype(np.float32))


def quantise(encoded: Any, levels: int = 255) -> Any:
    """Round values in [0, 1] to ``levels + 1`` steps, as an 8-bit file would (clipped first)."""
    xp = get_xp(encoded)
    return (xp.rint(xp.clip(encoded, 0, 1) * levels) / levels).astype(xp.float32)


def jpeg(encoded: Any, quality: int) -> Any:
    """Compress and decompress an RGB image in [0, 1] as JPEG at ``quality`` (1-100) with cv2.

    Args:
        encoded: (H, W, 3) RGB float array, sRGB-encoded.
        quality: JPEG quality.

    Returns:
        float32 (H, W, 3) RGB in [0, 1] on the input's device.
    """
    xp = get_xp(encoded)
    image = np.rint(np.clip(to_numpy(encoded), 0, 1) * 255).astype(np.uint8)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return xp.asarray(decoded.astype(np.float32) / 255)
