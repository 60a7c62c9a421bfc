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

from .trajectory import TrajectoryDraws, big_shake_factors, step_coefficients

# Plain float2/double2 rather than cuComplex.h: NVRTC needs no CUDA headers for them, and their
# layout is NumPy's complex64/complex128.
_SOURCE = r"""
extern "C" __global__ void integrate_trajectories(
    const float2* __restrict__ noise,         // (T, n) standard complex Gaussian per step
    const double2* __restrict__ velocity0,    // (n,)
    const double* __restrict__ gain,          // (n,) expl * gaussian_shake * step
    const double* __restrict__ pull,          // (n,) expl * centripetal * step
    const long long* __restrict__ points,     // (n,) points in use
    const long long* __restrict__ shake_ptr,  // (n + 1,) trajectory k's big shakes are
    const long long* __restrict__ shake_step, //   shake_step[shake_ptr[k]:shake_ptr[k + 1]],
    const double2* __restrict__ shake_factor, //   in increasing step order, with their factors
    const double step, const int steps, const int n,
    double2* __restrict__ positions)          // (T + 1, n)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    double xr = 0.0, xi = 0.0;
    double vr = velocity0[k].x, vi = velocity0[k].y;
    const double g = gain[k], p = pull[k];
    const long long used = points[k] - 1;
    long long shake = shake_ptr[k];
    const long long last_shake = shake_ptr[k + 1];
    positions[k] = make_double2(0.0, 0.0);
    for (int t = 0; t < steps; ++t) {
        const size_t at = (size_t)t * n + k;
        if (t < used) {
            const float2 e = noise[at];
            double dvr = g * (double)e.x - p * xr;
            double dvi = g * (double)e.y - p * xi;
            if (shake < last_shake && shake_step[shake] == t) {
                const double2 r = shake_factor[shake++];
                dvr += r.x * vr - r.y * vi;
                dvi += r.x * vi + r.y * vr;
            }
            vr += dvr;
            vi += dvi;
            const double s = step / hypot(vr, vi);
            vr *= s;
            vi *= s;
            xr += vr;
            xi += vi;
        }
        positions[at + n] = make_double2(xr, xi);
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
    positions = cupy.empty((steps + 1, n), cupy.complex128)
    if n == 0:
        return positions.T
    velocity0, gain, pull = step_coefficients(draws)
    # Big shakes as compressed rows: sorted by trajectory, then step.
    order = np.lexsort((draws.shake_step, draws.shake_row))
    shake_ptr = np.searchsorted(draws.shake_row[order], np.arange(n + 1)).astype(np.int64)
    shake_step = draws.shake_step[order].astype(np.int64)
    shake_factor = big_shake_factors(draws.shake_turn[order])
    # Time-major on the device so that neighbouring threads read neighbouring addresses.
    noise = cupy.ascontiguousarray(cupy.asarray(draws.noise).T)
    blocks = (n + _THREADS - 1) // _THREADS
    _kernel()(
        (blocks,),
        (_THREADS,),
        (
            noise,
            cupy.asarray(velocity0),
            cupy.asarray(gain),
            cupy.asarray(pull),
            cupy.asarray(draws.points.astype(np.int64)),
            cupy.asarray(shake_ptr),
            cupy.asarray(shake_step),
            cupy.asarray(shake_factor),
            np.float64(draws.step),
            np.int32(steps),
            np.int32(n),
            positions,
        ),
    )
    return cupy.ascontiguousarray(positions.T)
