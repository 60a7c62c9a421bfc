"""Straight-line motion kernels: uniform motion of a given length and direction, anti-aliased.

Angles are in degrees, counter-clockwise as seen on screen from the +column axis: 0 is a
horizontal streak, 90 a vertical one. A line is sampled densely and splatted bilinearly, so
sub-pixel lengths and any angle give smooth, exactly centred kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from blurgen.backend import check_device, xp_for_device

from .motion import check_size
from .psf import anchor, rasterise
from .trajectory import trajectory_rngs

# Samples per pixel of line length: enough that the splatted line has no visible beading.
SAMPLES_PER_PX = 16

Range = float | tuple[float, float]


def max_line_length(size: int) -> float:
    """Lines must be shorter than this (pixels) to fit a ``size`` kernel at every angle."""
    c = anchor(check_size(size))
    return float(2 * min(c, size - 1 - c))


def line_kernel(length: float, angle: float, size: int = 64) -> np.ndarray:
    """One straight-line kernel.

    Args:
        length: motion length in pixels, in ``[0, max_line_length(size))``; 0 gives a delta.
        angle: direction in degrees, counter-clockwise on screen from horizontal.
        size: kernel size K in pixels (>= 3).

    Returns:
        (K, K) float32, summing to 1, centroid on ``(K // 2, K // 2)``.
    """
    return _line_kernels(np.array([float(length)]), np.array([float(angle)]), check_size(size), np)[
        0
    ]


def linear_kernels(
    n: int,
    size: int = 64,
    *,
    seed: int = 0,
    start: int = 0,
    device: str = "cpu",
    length: Range | None = None,
    angle: Range = (0.0, 180.0),
) -> Any:
    """Random straight-line kernels, with length and angle drawn uniformly per kernel.

    Kernel ``i`` draws two uniforms from ``numpy.random.default_rng([seed, start + i])``: length,
    then angle.

    Args:
        n: number of kernels.
        size: kernel size K in pixels (>= 3).
        seed: root seed, a non-negative integer.
        start: index of the first kernel.
        device: ``"cpu"`` or ``"cuda"``.
        length: a fixed length in pixels or a ``(low, high)`` range; default
            ``(1, max_line_length(size))``.
        angle: a fixed angle in degrees or a ``(low, high)`` range; default ``(0, 180)``.

    Returns:
        (n, K, K) float32 (CuPy for ``"cuda"``), each kernel summing to 1, centred on the anchor.
    """
    rngs = trajectory_rngs(seed, start, n)
    return linear_kernels_from(rngs, size, length=length, angle=angle, device=device)


def linear_kernels_from(
    rngs: Sequence[np.random.Generator],
    size: int,
    *,
    length: Range | None = None,
    angle: Range = (0.0, 180.0),
    device: str = "cpu",
) -> Any:
    """One straight-line kernel per generator (two uniforms each: length, then angle).

    Arguments and result as :func:`linear_kernels`.
    """
    size = check_size(size)
    xp = xp_for_device(check_device(device))
    longest = max_line_length(size)
    low, high = _as_range("length", (1.0, longest) if length is None else length)
    if low < 0 or high > longest:
        raise ValueError(
            f"length range ({low:g}, {high:g}) px does not fit a {size} px kernel: "
            f"lengths must be at least 0 and below {longest:g} px"
        )
    angle_low, angle_high = _as_range("angle", angle)
    draws = np.array([rng.random(2) for rng in rngs]).reshape(len(rngs), 2)
    lengths = low + draws[:, 0] * (high - low)
    angles = angle_low + draws[:, 1] * (angle_high - angle_low)
    return _line_kernels(lengths, angles, size, xp)


def _as_range(name: str, value: Range) -> tuple[float, float]:
    low, high = (value, value) if np.isscalar(value) else value
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{name} must be a number or a (low, high) range, got {value!r}")
    return low, high


def _line_kernels(lengths: np.ndarray, angles: np.ndarray, size: int, xp: Any) -> Any:
    longest = max_line_length(size)
    bad = (lengths < 0) | (lengths >= longest) | ~np.isfinite(lengths) | ~np.isfinite(angles)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"line of length {lengths[k]!r} px at {angles[k]!r} deg does not fit a {size} px "
            f"kernel: lengths must be at least 0 and below {longest:g} px"
        )
    points = np.ceil(lengths * SAMPLES_PER_PX).astype(np.int64) + 1
    samples = int(points.max()) if len(points) else 1
    j = np.arange(samples)[None, :]
    steps = np.maximum(points - 1, 1)[:, None]
    along = (np.minimum(j, points[:, None] - 1) / steps - 0.5) * lengths[:, None]
    # Screen rows grow downward, so counter-clockwise on screen is exp(-i angle) in (col, row).
    positions = along * np.exp(-1j * np.deg2rad(angles))[:, None]
    return rasterise(xp.asarray(positions), xp.asarray(points), size)
