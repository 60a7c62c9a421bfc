"""Camera-shake point-spread functions: random trajectories, straight lines, kernel banks."""

from .linear import line_kernel, linear_kernels
from .motion import motion_kernels, motion_kernels_from
from .psf import kernel_centroid
from .trajectory import MotionModel

__all__ = [
    "MotionModel",
    "kernel_centroid",
    "line_kernel",
    "linear_kernels",
    "motion_kernels",
    "motion_kernels_from",
]
