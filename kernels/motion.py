"""Camera-shake kernels from random trajectories: draw on the host, integrate, rasterise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from blurgen.backend import check_device, get_xp, xp_for_device

from .psf import rasterise
from .trajectory import (
    MotionModel,
    draw_trajectories,
    integrate_trajectories,
    trajectory_rngs,
)

MIN_SIZE = 3
# Trajectories integrated together: large enough to amortise the per-step overhead of the
# time loop (measured best at 2048 among 512..4096), small enough that a batch's arrays stay
# around 100 MB.
CPU_BATCH = 2048
CUDA_BATCH = 16384
RASTER_GROUP = 64


def check_size(size: int) -> int:
    """Validate a kernel size in pixels and return it as an int."""
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"kernel size must be an integer >= {MIN_SIZE} px, got {size!r}")
    return int(size)


def motion_kernels(
    n: int,
    size: int = 64,
    *,
    seed: int = 0,
    start: int = 0,
    device: str = "cpu",
    **model_params: Any,
) -> Any:
    """Random camera-shake kernels (Boracchi-Foi trajectories, DeblurGAN's parameterisation).

    Kernel ``i`` is drawn from ``numpy.random.default_rng([seed, start + i])`` alone, so it does not
    depend on ``n``, on the device, or on how a large job is split into calls.

    Args:
        n: number of kernels.
        size: kernel size K in pixels (>= 3).
        seed: root seed, a non-negative integer.
        start: index of the first kernel; ``motion_kernels(5, start=10)`` gives kernels 10..14.
        device: ``"cpu"`` (NumPy) or ``"cuda"`` (CuPy; same kernels within 1e-6).
        **model_params: fields of :class:`MotionModel` (``iters``, ``max_len``, ``expl``,
            ``fractions``, ``gaussian_shake``, ``centripetal``, ``prob_big_shake``).

    Returns:
        (n, K, K) float32 array (CuPy for ``"cuda"``), non-negative, each kernel summing to 1 with
        its centroid on pixel ``(K // 2, K // 2)``.

    Example:
        >>> k = motion_kernels(8, 31, seed=1)
        >>> k.shape, bool(abs(k.sum(axis=(1, 2)) - 1).max() < 1e-6)
        ((8, 31, 31), True)
    """
    model = MotionModel(**model_params)
    size = check_size(size)
    device = check_device(device)
    return motion_kernels_from(trajectory_rngs(seed, start, n), size, model, device=device)


def motion_kernels_from(
    rngs: Sequence[np.random.Generator], size: int, model: MotionModel, *, device: str = "cpu"
) -> Any:
    """One kernel per generator; the building block of :func:`motion_kernels`.

    Args:
        rngs: one NumPy generator per kernel; each is advanced by the draws of one trajectory.
        size: kernel size K in pixels (>= 3).
        model: the motion model.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        (len(rngs), K, K) float32, as :func:`motion_kernels`.
    """
    xp = xp_for_device(device)
    batch = CUDA_BATCH if device == "cuda" else CPU_BATCH
    kernels = xp.empty((len(rngs), size, size), xp.float32)
    for start in range(0, len(rngs), batch):
        _motion_batch(rngs[start : start + batch], size, model, device, kernels[start:])
    return kernels


def _motion_batch(
    rngs: Sequence[np.random.Generator], size: int, model: MotionModel, device: str, out: Any
) -> None:
    """Kernels of ``rngs`` into ``out[:len(rngs)]``, each in the row of its generator."""
    draws = draw_trajectories(rngs, model, size, longest_first=True)
    if device == "cuda":
        from ._cuda import integrate_trajectories_cuda

        positions = integrate_trajectories_cuda(draws)
        xp = get_xp(positions)
        out[xp.asarray(draws.source)] = rasterise(positions, xp.asarray(draws.points), size)
        return
    positions = integrate_trajectories(draws)
    # Splatting is cache-bound on the CPU: small groups of kernels keep their grids in cache.
    for s in range(0, len(draws), RASTER_GROUP):
        group = slice(s, s + RASTER_GROUP)
        out[draws.source[group]] = rasterise(positions[group], draws.points[group], size)
