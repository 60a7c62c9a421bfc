"""Whether a pair is aligned: the blur kernel a sharp/blurred pair implies, and its centroid.

A pair teaches a deblurrer to undo exactly what separates its two images. If the blurred image
is also shifted from the sharp one, the deblurrer learns to shift, so a pair's blur must move no
content: the kernel that maps the sharp image to the blurred one must have its centroid (its
first moment over its sum) on its centre, as blurgen's own kernels do. This estimates that
kernel from the two images alone, whatever made them, so it checks a pipeline end to end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft

from .color import as_unit_float


def estimate_kernel(
    sharp: Any,
    blurred: Any,
    size: int,
    *,
    regularisation: float = 1e-3,
    tolerance: float = 1e-3,
    max_iterations: int = 500,
) -> np.ndarray:
    """The ``size`` x ``size`` kernel k of sum 1 that best maps a sharp image to its blurred
    version, ``blurred = k * sharp`` (a true convolution, as :func:`blurgen.blur` and the BGAN
    apply kernels: ``k[c + d]`` moves content by +d, c the centre).

    Least squares on the images' differences to their right and lower neighbours, over the
    output pixels whose whole ``size`` x ``size`` neighbourhood lies inside the sharp image (so
    nothing is assumed about what lies beyond it), plus ``regularisation`` times the sharp
    differences' energy times ``|k|^2``; the sum is held at 1 (a blur keeps brightness, which
    differences cannot see). Differences rather than pixels: the same convolution holds
    between them, they are nearly white where a photo's pixels are not, and they leave out
    the slow changes of brightness that a camera's tone curve distorts most. Solved by
    conjugate gradients with FFT convolutions, until the residual of the normal equations is
    ``tolerance`` of its start, or ``max_iterations``. The colour channels are averaged first
    (a linear blur commutes with that).

    Noise, JPEG and a tone curve applied after the blur make the estimate noisy rather than
    shifted; so does a patch with little texture (a sky): judge alignment over many pairs.

    Args:
        sharp, blurred: (H, W) or (H, W, C) images of one shape, aligned as the pair is
            stored: float in [0, 1], or uint8 / uint16 (scaled to [0, 1]). H and W over
            ``size + 1``.
        size: the kernel's side, px, odd: at least the blur's extent, or mass beyond it is
            attributed elsewhere.

    Returns:
        (size, size) float64 of sum 1, indexed [dy, dx] from the top left; values may be
        slightly negative where the data do not pin them.

    Raises:
        ValueError: images of different shapes, an even size, or images too small for it.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and positive, got {size!r}")
    sharp, blurred = (np.asarray(as_unit_float(image), np.float64) for image in (sharp, blurred))
    if sharp.shape != blurred.shape:
        raise ValueError(f"the images differ in shape: {sharp.shape} and {blurred.shape}")
    if sharp.ndim == 3:
        sharp, blurred = sharp.mean(axis=2), blurred.mean(axis=2)
    if min(sharp.shape) <= size + 1:
        raise ValueError(f"images must be over {size + 1} px a side, got "
                         f"{sharp.shape[0]} x {sharp.shape[1]}")  # fmt: skip
    sharp, blurred = _differences(sharp), _differences(blurred)
    height, width = sharp.shape[:2]
    half = size // 2
    shape = tuple(scipy.fft.next_fast_len(n + size - 1, real=True) for n in (height, width))
    spectrum = scipy.fft.rfft2(sharp, shape, axes=(0, 1))
    target = blurred[half : height - half, half : width - half]

    def forward(kernel: np.ndarray) -> np.ndarray:
        # The valid part of kernel * sharp: the outputs whose neighbourhood is all inside.
        full = scipy.fft.irfft2(spectrum * scipy.fft.rfft2(kernel, shape)[..., None], shape,
                                axes=(0, 1))  # fmt: skip
        return full[size - 1 : height, size - 1 : width]

    def adjoint(residual: np.ndarray) -> np.ndarray:
        # Each kernel tap's correlation of the sharp differences with the residual.
        spectra = np.conj(spectrum) * scipy.fft.rfft2(residual, shape, axes=(0, 1))
        correlation = scipy.fft.irfft2(spectra.sum(axis=2), shape)
        return np.roll(correlation, (size - 1, size - 1), (0, 1))[:size, :size]

    weight = regularisation * (sharp[half : height - half, half : width - half] ** 2).sum()

    def normal(kernel: np.ndarray) -> np.ndarray:
        # The normal equations' operator, on kernels of sum 0 (the changes that keep sum 1).
        image = adjoint(forward(kernel)) + weight * kernel
        return image - image.mean()

    kernel = np.full((size, size), 1.0 / size**2)
    residual = adjoint(target) - normal(kernel)
    residual -= residual.mean()
    direction = residual.copy()
    squared = (residual**2).sum()
    stop = tolerance**2 * squared
    for _ in range(max_iterations):
        if squared <= stop:
            break
        image = normal(direction)
        step = squared / (direction * image).sum()
        kernel += step * direction
        residual -= step * image
        squared, previous = (residual**2).sum(), squared
        direction = residual + (squared / previous) * direction
    return kernel


def _differences(image: np.ndarray) -> np.ndarray:
    """(H - 1, W - 1, 2): each pixel's difference to its right and its lower neighbour."""
    return np.stack([image[:-1, 1:] - image[:-1, :-1], image[1:, :-1] - image[:-1, :-1]], -1)


def kernel_centroid(kernel: np.ndarray) -> tuple[float, float]:
    """The (dy, dx) centroid of a (K, K) kernel, K odd, px from its centre pixel: its first
    moment over its sum (signed values count as they are, so noise in an estimate's tails
    neither adds nor removes mass)."""
    kernel = np.asarray(kernel, np.float64)
    offsets = np.arange(kernel.shape[0]) - kernel.shape[0] // 2
    total = kernel.sum()
    return float(kernel.sum(axis=1) @ offsets / total), float(kernel.sum(axis=0) @ offsets / total)


def pair_offset(sharp: Any, blurred: Any, size: int, **options: float) -> tuple[float, float]:
    """How far (dy, dx), px, a pair's blur moves its content: the centroid of its
    :func:`estimate_kernel` (``options`` are that function's). 0 for an aligned pair; a
    positive dx means the blurred image sits to the right of the sharp one."""
    return kernel_centroid(estimate_kernel(sharp, blurred, size, **options))
