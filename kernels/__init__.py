"""Camera-shake point-spread functions: random trajectories, straight lines, kernel banks."""

from .linear import line_kernel, linear_kernels, linear_kernels_from
from .motion import motion_kernels, motion_kernels_from
from .psf import kernel_centroid, kernel_extent
from .trajectory import MotionModel

__all__ = [
    "MotionModel",
    "kernel_centroid",
    "kernel_extent",
    "line_kernel",
    "linear_kernels",
    "linear_kernels_from",
    "motion_kernels",
    "motion_kernels_from",
]
