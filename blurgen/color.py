"""Transfer functions between encoded values (what image files hold) and linear light.

Light adds up linearly, so blur is physically a weighted sum in linear light; image files store
sRGB-encoded values. All functions work on NumPy or CuPy arrays of any shape, elementwise, and
keep the dtype of float inputs; 8- and 16-bit integer inputs are first scaled to [0, 1] as
float32 (:func:`as_unit_float`).
"""

from __future__ import annotations

from typing import Any

from blurgen.backend import get_xp

# IEC 61966-2-1: the encoded and linear values where the linear segment meets the power curve.
SRGB_ENCODED_KNEE = 0.04045
SRGB_LINEAR_KNEE = 0.0031308


_INTEGER_SCALES = {"uint8": 255, "uint16": 65535}


def as_unit_float(image: Any) -> Any:
    """Image values on the [0, 1] scale the whole library computes on.

    Float arrays are returned as they are; uint8 and uint16 arrays (as image files hold them)
    are divided by 255 and 65535, as float32. Computing on 0-255 values as if they were
    0-1 would give plausible-looking, wrong results, so other integer and bool types are refused.

    Args:
        image: NumPy or CuPy array (or anything NumPy accepts).

    Raises:
        TypeError: an integer or bool dtype other than uint8 and uint16.
    """
    xp = get_xp(image)
    x = xp.asarray(image)
    if x.dtype.kind == "f":
        return x
    scale = _INTEGER_SCALES.get(x.dtype.name)
    if scale is None:
        raise TypeError(
            f"images must be float in [0, 1], uint8 or uint16; got {x.dtype} (convert it first, "
            "e.g. image.astype(np.float32) / 255)"
        )
    return x.astype(xp.float32) / xp.float32(scale)


def srgb_to_linear(encoded: Any) -> Any:
    """Decode sRGB values to linear light (IEC 61966-2-1).

    Args:
        encoded: float array, nominally in [0, 1] (values below the knee, negatives included,
            follow the linear segment), or uint8 / uint16 (scaled to [0, 1]).

    Returns:
        Linear-light values, same shape and device; the dtype of float input, else float32.
    """
    xp = get_xp(encoded)
    x = as_unit_float(encoded)
    curve = ((xp.maximum(x, SRGB_ENCODED_KNEE) + 0.055) / 1.055) ** 2.4
    return xp.where(x <= SRGB_ENCODED_KNEE, x / 12.92, curve).astype(x.dtype, copy=False)


def linear_to_srgb(linear: Any) -> Any:
    """Encode linear light as sRGB values (IEC 61966-2-1), the inverse of :func:`srgb_to_linear`.

    Args:
        linear: float array, nominally in [0, 1] (values below the knee, negatives included,
            follow the linear segment), or uint8 / uint16 (scaled to [0, 1]).

    Returns:
        sRGB-encoded values, same shape and device; the dtype of float input, else float32.
    """
    xp = get_xp(linear)
    y = as_unit_float(linear)
    curve = 1.055 * xp.maximum(y, SRGB_LINEAR_KNEE) ** (1 / 2.4) - 0.055
    return xp.where(y <= SRGB_LINEAR_KNEE, 12.92 * y, curve).astype(y.dtype, copy=False)


def gamma_to_linear(encoded: Any, gamma: float = 2.2) -> Any:
    """Decode a plain power-law encoding: ``max(x, 0) ** gamma``."""
    xp = get_xp(encoded)
    x = as_unit_float(encoded)
    return (xp.maximum(x, 0) ** gamma).astype(x.dtype, copy=False)


def linear_to_gamma(linear: Any, gamma: float = 2.2) -> Any:
    """Encode linear light with a plain power law: ``max(y, 0) ** (1 / gamma)``."""
    xp = get_xp(linear)
    y = as_unit_float(linear)
    return (xp.maximum(y, 0) ** (1 / gamma)).astype(y.dtype, copy=False)
