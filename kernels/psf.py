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

    Row ``k`` of ``positions`` holds a path whose first ``points[k]`` samples carry equal weight;
    past them the last sample is repeated (and ignored). Each path is shifted so that its mean
    sits on ``(size // 2, size // 2)``. A path that then reaches outside the grid is shrunk about
    its mean until it fits (never clipped), which keeps its shape and its centroid.

    Args:
        positions: (n, L) complex128 NumPy or CuPy array, ``column + 1j * row`` in pixels; any
            origin.
        points: (n,) int64 on the same device, samples in use per path, in [1, L].
        size: kernel size K in pixels (>= 3).

    Returns:
        (n, K, K) float32 kernels on the input's device, non-negative, each summing to 1.
    """
    xp = get_xp(positions)
    cols, rows = fitted_coordinates(positions, points, size)
    if xp is np:
        grid = _splat_runs(cols, rows, points, size)
    else:
        grid = splat_points(cols, rows, points, size)
    grid /= grid.sum(axis=(1, 2), keepdims=True)
    return grid.astype(xp.float32)


def fitted_coordinates(positions: Any, points: Any, size: int) -> tuple[Any, Any]:
    """Column and row of every used sample after centring and fitting, kernel by kernel.

    Returns:
        Two (sum(points),) float64 arrays: the samples of path 0, then of path 1, and so on.
    """
    xp = get_xp(positions)
    n, length = positions.shape
    positions = xp.ascontiguousarray(positions)
    # Gather the used prefix of every row: sample j of path k sits at k * L + j.
    owner = segment_ids(points)
    first = xp.cumsum(points) - points
    index = xp.arange(len(owner)) + (owner * length - first[owner])
    path = positions.ravel()[index]
    # Each mean sums its own path's samples in order, and nothing else: so a kernel's bits do
    # not depend on the batch it is drawn in (a row sum over the padded batch would round
    # differently with the batch's longest path).
    mean = (xp.bincount(owner, weights=path.real, minlength=n)
            + 1j * xp.bincount(owner, weights=path.imag, minlength=n)) / points  # fmt: skip
    room_low, room_high = max_extent(size)
    worst = xp.ones(n)
    for part, centre in ((positions.real, mean.real), (positions.imag, mean.imag)):
        worst = xp.maximum(worst, (part.max(axis=1) - centre) / room_high)
        worst = xp.maximum(worst, (centre - part.min(axis=1)) / room_low)
    scale = 1 / worst
    c = anchor(size)
    cols = path.real * scale[owner] + (c - scale * mean.real)[owner]
    rows = path.imag * scale[owner] + (c - scale * mean.imag)[owner]
    return cols, rows


def splat_points(cols: Any, rows: Any, points: Any, size: int) -> Any:
    """Bilinear splat of every sample's four corners (any backend).

    Args:
        cols, rows: (P,) float64 sample coordinates in [0, size - 1), grouped by kernel.
        points: (n,) samples per kernel, summing to P.
        size: K.

    Returns:
        (n, K, K) float64 grids, unnormalised.
    """
    xp = get_xp(cols)
    n = len(points)
    owner = segment_ids(points)
    col0, row0 = xp.floor(cols), xp.floor(rows)
    fc, fr = cols - col0, rows - row0
    weight = (1.0 / points)[owner]
    wr = weight * fr
    w0 = weight - wr
    base = owner * (size * size) + row0.astype(xp.int64) * size + col0.astype(xp.int64)
    # One scatter of all four corners: adding four scatters' grids touched (page-faulted)
    # every page of each fresh grid (2.6 ms against 0.1 for a camera's 4x4 field at K=101).
    corners = xp.concatenate([base, base + 1, base + size, base + size + 1])
    weights = xp.concatenate([w0 - w0 * fc, w0 * fc, wr - wr * fc, wr * fc])
    return xp.bincount(corners, weights=weights, minlength=n * size * size).reshape(n, size, size)


def _splat_runs(cols: np.ndarray, rows: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splat (NumPy), summing runs of consecutive samples in one cell before scattering.

    A path moves a small fraction of a pixel per sample, so most consecutive samples share a
    cell; the bilinear weights of a run follow from the sums of ``fc``, ``fr`` and ``fc * fr``.
    Same arguments and result as :func:`splat_points`.
    """
    n = len(points)
    col0, row0 = np.floor(cols), np.floor(rows)
    fc, fr = cols - col0, rows - row0
    owner = segment_ids(points)
    cell = (owner * (size * size) + row0 * size + col0).astype(np.int64)
    starts = np.flatnonzero(np.diff(cell, prepend=-1))
    count = np.diff(starts, append=len(cell)).astype(np.float64)
    sum_c = np.add.reduceat(fc, starts)
    sum_r = np.add.reduceat(fr, starts)
    sum_cr = np.add.reduceat(fc * fr, starts)
    weight = 1.0 / points[owner[starts]]
    base = cell[starts]
    corners = np.concatenate([base, base + 1, base + size, base + size + 1])
    weights = np.concatenate(
        [count - sum_c - sum_r + sum_cr, sum_c - sum_cr, sum_r - sum_cr, sum_cr]
    ) * np.tile(weight, 4)
    return np.bincount(corners, weights=weights, minlength=n * size * size).reshape(n, size, size)


def segment_ids(points: Any) -> Any:
    """``k`` repeated ``points[k]`` times, as int64 (``repeat`` with array counts, which
    CuPy does not offer). ``points`` must be positive."""
    xp = get_xp(points)
    marker = xp.zeros(int(points.sum()), xp.int64)
    marker[(xp.cumsum(points) - points)[1:]] = 1
    return xp.cumsum(marker)


def kernel_centroid(kernels: np.ndarray) -> np.ndarray:
    """Centroids (row, column) in pixels of (n, K, K) kernels, as (n, 2) float64."""
    k = np.asarray(kernels, np.float64)
    idx = np.arange(k.shape[-1], dtype=np.float64)
    mass = k.sum(axis=(1, 2))
    rows = (k.sum(axis=2) * idx).sum(axis=1) / mass
    cols = (k.sum(axis=1) * idx).sum(axis=1) / mass
    return np.stack([rows, cols], axis=1)


def kernel_extent(kernels: np.ndarray) -> np.ndarray:
    """Extent of (n, K, K) kernels (or one (K, K)) in pixels: the standard deviation of each
    kernel's mass along its principal axis (a straight streak of length L: L / sqrt(12)).
    Returns (n,) float64 (a float for one kernel)."""
    k = np.asarray(kernels, np.float64)
    batch = k if k.ndim == 3 else k[None]
    batch = batch / batch.sum(axis=(1, 2), keepdims=True)
    rows, cols = np.indices(batch.shape[1:], dtype=np.float64)
    my = (batch * rows).sum(axis=(1, 2), keepdims=True)
    mx = (batch * cols).sum(axis=(1, 2), keepdims=True)
    cxx = (batch * (cols - mx) ** 2).sum(axis=(1, 2))
    cyy = (batch * (rows - my) ** 2).sum(axis=(1, 2))
    cxy = (batch * (cols - mx) * (rows - my)).sum(axis=(1, 2))
    # Largest eigenvalue of [[cxx, cxy], [cxy, cyy]], in closed form.
    largest = (cxx + cyy) / 2 + np.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    extent = np.sqrt(largest)
    return extent if k.ndim == 3 else float(extent[0])
