"""Point-spread functions from paths: centring, fitting and bilinear sub-pixel rasterisation.

A kernel of size K has its anchor, the pixel the convolution treats as the origin, at
``(K // 2, K // 2)``. Paths are shifted so that their weighted mean lands exactly there before they
are splatted; bilinear splatting keeps the centroid of a point exactly, so the kernel's centroid is
the anchor and blurred images stay aligned with their sharp originals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blurgen.backend import get_xp

# Points must stay strictly inside the last pixel so that the bilinear neighbour exists.
_FIT_MARGIN = 1e-6


def anchor(size: int) -> int:
    """Index of the kernel's anchor pixel along each axis: ``size // 2``."""
    return size // 2


def max_extent(size: int) -> tuple[float, float]:
    """How far a point may lie from the anchor, toward lower and higher indices, in pixels."""
    c = anchor(size)
    return c * (1 - _FIT_MARGIN), (size - 1 - c) * (1 - _FIT_MARGIN)


def rasterise(positions: Any, points: Any, size: int) -> Any:
    """Splat paths onto ``size`` x ``size`` grids, centred on the anchor.

    Column ``k`` of ``positions`` holds a path whose first ``points[k]`` samples carry equal
    weight; past them the last sample is repeated (and ignored). Each path is shifted so that its
    mean sits on ``(size // 2, size // 2)``. A path that then reaches outside the grid is shrunk
    about its mean until it fits (never clipped), which keeps its shape and its centroid.

    Args:
        positions: (L, n) complex128 NumPy or CuPy array, ``column + 1j * row`` in pixels; any
            origin.
        points: (n,) int64 on the same device, samples in use per path, in [1, L].
        size: kernel size K in pixels (>= 3).

    Returns:
        (n, K, K) float32 kernels on the input's device, non-negative, each summing to 1.
    """
    xp = get_xp(positions)
    length, n = positions.shape
    if positions.strides[-1] != positions.itemsize:
        positions = xp.ascontiguousarray(positions)
    repeated = (length - points) * positions[-1]
    mean = (positions.sum(axis=0) - repeated) / points
    # (L, n, 2) real view: one pass finds both axes' extremes.
    pairs = positions.view(xp.float64).reshape(length, n, 2)
    high = pairs.max(axis=0) - xp.stack([mean.real, mean.imag], axis=1)
    low = xp.stack([mean.real, mean.imag], axis=1) - pairs.min(axis=0)
    room_low, room_high = max_extent(size)
    worst = xp.maximum(high.max(axis=1) / room_high, low.max(axis=1) / room_low)
    scale = 1 / xp.maximum(worst, 1.0)

    c = anchor(size)
    # col = scale * x + shift per path, applied before compaction so no per-point gathers.
    used = xp.arange(length)[:, None] < points[None, :]
    owner = xp.broadcast_to(xp.arange(n), (length, n))[used]
    col = (pairs[..., 0] * scale + (c - scale * mean.real))[used]
    row = (pairs[..., 1] * scale + (c - scale * mean.imag))[used]
    col0 = xp.floor(col)
    row0 = xp.floor(row)
    fc = col - col0
    fr = row - row0
    weight = (1.0 / points)[owner]
    wr = weight * fr
    w0 = weight - wr
    base = owner * (size * size) + row0.astype(xp.int64) * size + col0.astype(xp.int64)
    bins = n * size * size
    grid = xp.bincount(base, weights=w0 - w0 * fc, minlength=bins)
    grid += xp.bincount(base + 1, weights=w0 * fc, minlength=bins)
    grid += xp.bincount(base + size, weights=wr - wr * fc, minlength=bins)
    grid += xp.bincount(base + size + 1, weights=wr * fc, minlength=bins)
    grid = grid.reshape(n, size, size)
    grid /= grid.sum(axis=(1, 2), keepdims=True)
    return grid.astype(xp.float32)


def kernel_centroid(kernels: np.ndarray) -> np.ndarray:
    """Centroids (row, column) in pixels of (n, K, K) kernels, as (n, 2) float64."""
    k = np.asarray(kernels, np.float64)
    idx = np.arange(k.shape[-1], dtype=np.float64)
    mass = k.sum(axis=(1, 2))
    rows = (k.sum(axis=2) * idx).sum(axis=1) / mass
    cols = (k.sum(axis=1) * idx).sum(axis=1) / mass
    return np.stack([rows, cols], axis=1)
