"""Transfer functions between encoded values (what image files hold) and linear light.

Light adds up linearly, so blur is physically a weighted sum in linear light; image files store
sRGB-encoded values. All functions work on NumPy or CuPy arrays of any shape, elementwise, and
keep the dtype of float inputs.
"""

from __future__ import annotations

from typing import Any

from blurgen.backend import get_xp

# IEC 61966-2-1: the encoded and linear values where the linear segment meets the power curve.
SRGB_ENCODED_KNEE = 0.04045
SRGB_LINEAR_KNEE = 0.0031308


def srgb_to_linear(encoded: Any) -> Any:
    """Decode sRGB values to linear light (IEC 61966-2-1).

    Args:
        encoded: float array, nominally in [0, 1]; values below the knee (negatives included)
            follow the linear segment.

    Returns:
        Linear-light values, same shape, dtype and device.
    """
    xp = get_xp(encoded)
    x = xp.asarray(encoded)
    curve = ((xp.maximum(x, SRGB_ENCODED_KNEE) + 0.055) / 1.055) ** 2.4
    return xp.where(x <= SRGB_ENCODED_KNEE, x / 12.92, curve).astype(x.dtype, copy=False)


def linear_to_srgb(linear: Any) -> Any:
    """Encode linear light as sRGB values (IEC 61966-2-1), the inverse of :func:`srgb_to_linear`.

    Args:
        linear: float array, nominally in [0, 1]; values below the knee (negatives included)
            follow the linear segment.

    Returns:
        sRGB-encoded values, same shape, dtype and device.
    """
    xp = get_xp(linear)
    y = xp.asarray(linear)
    curve = 1.055 * xp.maximum(y, SRGB_LINEAR_KNEE) ** (1 / 2.4) - 0.055
    return xp.where(y <= SRGB_LINEAR_KNEE, 12.92 * y, curve).astype(y.dtype, copy=False)


def gamma_to_linear(encoded: Any, gamma: float = 2.2) -> Any:
    """Decode a plain power-law encoding: ``max(x, 0) ** gamma``."""
    xp = get_xp(encoded)
    x = xp.asarray(encoded)
    return (xp.maximum(x, 0) ** gamma).astype(x.dtype, copy=False)


def linear_to_gamma(linear: Any, gamma: float = 2.2) -> Any:
    """Encode linear light with a plain power law: ``max(y, 0) ** (1 / gamma)``."""
    xp = get_xp(linear)
    y = xp.asarray(linear)
    return (xp.maximum(y, 0) ** (1 / gamma)).astype(y.dtype, copy=False)
