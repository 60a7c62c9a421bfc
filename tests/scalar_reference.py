"""A plain, scalar, float64 implementation of the motion-kernel model, for verification only.

It follows the model as written in blurgen.kernels.trajectory's docstring, one trajectory and one
point at a time with Python complex numbers and lists, sharing no code with the vectorised
implementation except the record of random draws (which fixes what "the same kernel" means).
The benchmark also times it as the per-kernel pure-Python baseline.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

FIT_MARGIN = 1e-6


def reference_path(draws, k: int) -> list[complex]:
    """Positions ``column + 1j * row`` of trajectory ``k``, its ``points`` samples."""
    step = draws.step
    expl = float(draws.expl[k])
    shake = float(draws.gaussian_shake[k])
    centripetal = float(draws.centripetal[k])
    shakes = {
        int(t): float(d)
        for row, t, d in zip(draws.shake_row, draws.shake_step, draws.shake_turn, strict=True)
        if row == k
    }
    x = 0j
    v = step * cmath.exp(1j * float(draws.angle[k]))
    path = [x]
    for t in range(int(draws.points[k]) - 1):
        if t in shakes:
            next_direction = 2 * v * cmath.exp(1j * (math.pi + shakes[t]))
        else:
            next_direction = 0
        g = complex(draws.noise[k, t])
        dv = next_direction + expl * (shake * g - centripetal * x) * step
        v = v + dv
        v = v / abs(v) * step
        x = x + v
        path.append(x)
    return path


def reference_splat(path: list[complex], size: int) -> np.ndarray:
    """Centre a path's mean on (size // 2, size // 2), shrink it to fit, splat bilinearly."""
    m = len(path)
    mean = sum(path) / m
    c = size // 2
    room_low = c * (1 - FIT_MARGIN)
    room_high = (size - 1 - c) * (1 - FIT_MARGIN)
    worst = 1.0
    for p in path:
        d = p - mean
        worst = max(worst, d.real / room_high, -d.real / room_low)
        worst = max(worst, d.imag / room_high, -d.imag / room_low)
    grid = [[0.0] * size for _ in range(size)]
    for p in path:
        col = c + (p.real - mean.real) / worst
        row = c + (p.imag - mean.imag) / worst
        c0, r0 = math.floor(col), math.floor(row)
        fc, fr = col - c0, row - r0
        grid[r0][c0] += (1 - fc) * (1 - fr) / m
        grid[r0][c0 + 1] += fc * (1 - fr) / m
        grid[r0 + 1][c0] += (1 - fc) * fr / m
        grid[r0 + 1][c0 + 1] += fc * fr / m
    total = sum(sum(r) for r in grid)
    return np.array([[value / total for value in r] for r in grid])


def reference_kernel(draws, k: int, size: int) -> np.ndarray:
    """(size, size) float64 kernel of trajectory ``k`` of a TrajectoryDraws record."""
    return reference_splat(reference_path(draws, k), size)
