"""CuPy integrator for random trajectories: one CUDA thread per trajectory, float64 throughout.

Imported only when a CUDA device is requested. It consumes the same host-drawn
:class:`~blurgen.kernels.trajectory.TrajectoryDraws` as the NumPy integrator and follows the same
recursion, so the two agree to rounding.
"""

from __future__ import annotations

import functools
from typing import Any

import cupy
import numpy as np

from .trajectory import TrajectoryDraws, step_coefficients, turn_factors

_SOURCE = r"""
#include <cuComplex.h>

extern "C" __global__ void integrate_trajectories(
    const cuFloatComplex* __restrict__ noise,   // (T, n) standard complex Gaussian per step
    const cuDoubleComplex* __restrict__ turn,   // (T, n) big-shake factor or 0
    const cuDoubleComplex* __restrict__ velocity0,  // (n,)
    const double* __restrict__ gain,            // (n,) expl * gaussian_shake * step
    const double* __restrict__ pull,            // (n,) expl * centripetal * step
    const long long* __restrict__ points,       // (n,) points in use
    const double step, const int steps, const int n,
    cuDoubleComplex* __restrict__ positions)    // (T + 1, n)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    double xr = 0.0, xi = 0.0;
    double vr = cuCreal(velocity0[k]), vi = cuCimag(velocity0[k]);
    const double g = gain[k], p = pull[k];
    const long long used = points[k] - 1;
    positions[k] = make_cuDoubleComplex(0.0, 0.0);
    for (int t = 0; t < steps; ++t) {
        const size_t at = (size_t)t * n + k;
        if (t < used) {
            const cuFloatComplex e = noise[at];
            const cuDoubleComplex r = turn[at];
            const double dvr = g * (double)cuCrealf(e) - p * xr
                             + (cuCreal(r) * vr - cuCimag(r) * vi);
            const double dvi = g * (double)cuCimagf(e) - p * xi
                             + (cuCreal(r) * vi + cuCimag(r) * vr);
            vr += dvr;
            vi += dvi;
            const double s = step / hypot(vr, vi);
            vr *= s;
            vi *= s;
            xr += vr;
            xi += vi;
        }
        positions[at + n] = make_cuDoubleComplex(xr, xi);
    }
}
"""

_THREADS = 128


@functools.lru_cache(maxsize=1)
def _kernel() -> Any:
    return cupy.RawKernel(_SOURCE, "integrate_trajectories")


def integrate_trajectories_cuda(draws: TrajectoryDraws) -> Any:
    """Positions of every trajectory on the GPU.

    Returns:
        (n, T + 1) complex128 CuPy array, laid out as
        :func:`~blurgen.kernels.trajectory.integrate_trajectories` returns it.
    """
    n = len(draws)
    steps = draws.noise.shape[1]
    velocity0, gain, pull = step_coefficients(draws)
    # Time-major on the device so that neighbouring threads read neighbouring addresses.
    noise = cupy.ascontiguousarray(cupy.asarray(draws.noise).T)
    turn = cupy.ascontiguousarray(cupy.asarray(turn_factors(draws)).T)
    positions = cupy.empty((steps + 1, n), cupy.complex128)
    if n == 0:
        return positions.T
    blocks = (n + _THREADS - 1) // _THREADS
    _kernel()(
        (blocks,),
        (_THREADS,),
        (
            noise,
            turn,
            cupy.asarray(velocity0),
            cupy.asarray(gain),
            cupy.asarray(pull),
            cupy.asarray(draws.points.astype(np.int64)),
            np.float64(draws.step),
            np.int32(steps),
            np.int32(n),
            positions,
        ),
    )
    return cupy.ascontiguousarray(positions.T)
