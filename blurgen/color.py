"""Transfer functions between encoded values (what image files hold) and linear light.

Light adds up linearly, so blur is physically a weighted sum in linear light; image files store
sRGB-encoded values. All functions work on NumPy or CuPy arrays of any shape, elementwise, and
keep the dtype of float inputs; 8- and 16-bit integer inputs are first scaled to [0, 1] as
float32 (:func:`as_unit_float`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

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


def as_uint(image: np.ndarray, bits: int = 8) -> np.ndarray:
    """A float image in [0, 1] as an image file stores it: clipped to [0, 1] and rounded to the
    nearest of the 2**bits levels.

    Args:
        image: NumPy float array of any shape, nominally in [0, 1].
        bits: 8 or 16.

    Returns:
        uint8 (8 bits) or uint16 (16 bits), of the input's shape.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    return np.rint(np.clip(image, 0, 1) * top).astype(dtype)


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
    out = _writable(xp.maximum(x, SRGB_ENCODED_KNEE))
    out += 0.055
    out /= 1.055
    xp.power(out, 2.4, out=out)
    _linear_segment(out, x <= SRGB_ENCODED_KNEE, x / 12.92)
    return out[()]


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
    out = _writable(xp.maximum(y, SRGB_LINEAR_KNEE))
    xp.power(out, 1 / 2.4, out=out)
    out *= 1.055
    out -= 0.055
    _linear_segment(out, y <= SRGB_LINEAR_KNEE, 12.92 * y)
    return out[()]


def _writable(values: Any) -> Any:
    """``values`` as an array to compute on in place (a ufunc gives a scalar for 0-d input;
    indexing the result with ``[()]`` turns a 0-d array back into one)."""
    return get_xp(values).asarray(values)


def _linear_segment(out: Any, below: Any, values: Any) -> None:
    """Put ``values`` into ``out`` where ``below``: the curves' linear segments near black.

    The curves are computed in place on one array (the same operations, in the same order, as
    one expression would do, at a fraction of its memory traffic)."""
    xp = get_xp(out)
    if below.any():
        xp.copyto(out, values, where=below)


def gamma_to_linear(encoded: Any, gamma: float = 2.2) -> Any:
    """Decode a plain power-law encoding: ``max(x, 0) ** gamma``."""
    xp = get_xp(encoded)
    out = _writable(xp.maximum(as_unit_float(encoded), 0))
    return xp.power(out, gamma, out=out)[()]


def linear_to_gamma(linear: Any, gamma: float = 2.2) -> Any:
    """Encode linear light with a plain power law: ``max(y, 0) ** (1 / gamma)``."""
    xp = get_xp(linear)
    out = _writable(xp.maximum(as_unit_float(linear), 0))
    return xp.power(out, 1 / gamma, out=out)[()]


def check_curve(curve: Any) -> tuple[float, ...]:
    """A camera response (tone curve) as :func:`linear_to_curve` takes it, checked: the
    encoded values, from 0 to 1 and rising, at 3 to 65,536 evenly spaced levels of linear
    light from 0 to 1.

    Raises:
        ValueError: it is not such a curve (the message says why).
    """
    try:
        values = tuple(float(v) for v in np.ravel(curve))
    except (TypeError, ValueError):
        raise ValueError(f"tone_curve must be numbers, got {curve!r}") from None
    if not 3 <= len(values) <= 65536:
        raise ValueError(f"tone_curve needs 3 to 65536 values, got {len(values)}")
    if values[0] != 0 or values[-1] != 1:
        raise ValueError(f"tone_curve must rise from 0 to 1, got {values[0]:g} to {values[-1]:g}")
    falls = np.flatnonzero(np.diff(values) <= 0)
    if falls.size:
        k = int(falls[0]) + 1
        raise ValueError(f"tone_curve must rise: its value {k} ({values[k]:g}) is not above the "
                         f"one before ({values[k - 1]:g})")  # fmt: skip
    return values


def linear_to_curve(linear: Any, curve: tuple[float, ...]) -> Any:
    """Encode linear light with a camera response: ``curve`` (see :func:`check_curve`)
    holds the encoded values at evenly spaced linear levels from 0 to 1, joined by straight
    lines; below 0 gives 0, and above 1 its last line goes on (light an unsaturated sensor
    kept, as the power laws go on). float32, on the input's device."""
    xp = get_xp(linear)
    linear = as_unit_float(linear)
    levels = xp.linspace(0, 1, len(curve))
    out = xp.interp(linear, levels, xp.asarray(curve))
    slope = (1 - curve[-2]) * (len(curve) - 1)
    return xp.where(linear > 1, 1 + (linear - 1) * slope, out).astype(xp.float32)


def curve_to_linear(encoded: Any, curve: tuple[float, ...]) -> Any:
    """Decode values encoded by :func:`linear_to_curve`: its inverse (exact at the curve's
    levels, straight lines between them)."""
    xp = get_xp(encoded)
    levels = xp.linspace(0, 1, len(curve))
    return xp.interp(as_unit_float(encoded), xp.asarray(curve), levels).astype(xp.float32)
