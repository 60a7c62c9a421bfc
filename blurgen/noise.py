"""Sensor noise and output quantisation: deterministic cores, with randomness passed in.

Noise is drawn on the host from the sample's NumPy generator (CuPy's generators are not
reproducible across versions) and moved to the image's device.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from blurgen.backend import get_xp, to_numpy
from blurgen.color import as_uint

Generators = tuple[np.random.Generator, np.random.Generator]


def noise_streams(seed: int) -> Generators:
    """The shot-noise and read-noise generators of a noise seed (0 to 2**64 - 1).

    Each kind of noise has its own stream, drawn pixel after pixel in row-major order, so noise
    added strip by strip (consecutive rows, in order) equals noise added to the whole image.
    """
    shot, read = np.random.SeedSequence(int(seed)).spawn(2)
    return np.random.default_rng(shot), np.random.default_rng(read)


def poisson_gaussian(
    linear: Any, shot: float, read: float, rng: np.random.Generator | Generators | None
) -> Any:
    """Add shot (Poisson) and read (Gaussian) noise to a linear-light image.

    The signal is treated as ``x / shot`` photo-electrons: the result is
    ``shot * Poisson(x / shot) + Normal(0, read**2)``, whose variance is ``shot * x + read**2``.

    Args:
        linear: float array in linear light (NumPy or CuPy), non-negative.
        shot: gain in image units per electron (>= 0); 0 means no shot noise.
        read: standard deviation of the read noise in image units (>= 0).
        rng: one generator for both kinds of noise, or a ``(shot, read)`` pair of them
            (:func:`noise_streams`); unused, and may be None, when both levels are 0.

    Returns:
        float32 array like ``linear``, unclipped.
    """
    xp = get_xp(linear)
    if shot <= 0 and read <= 0:  # no copies, and on a GPU no round trip through the host
        return linear.astype(xp.float32, copy=False)
    shot_rng, read_rng = rng if isinstance(rng, tuple) else (rng, rng)
    x = to_numpy(linear).astype(np.float64)
    if shot > 0:
        x = shot * shot_rng.poisson(np.maximum(x, 0) / shot)
    if read > 0:
        x += read_rng.normal(0.0, read, size=x.shape)
    return xp.asarray(x.astype(np.float32))


def quantise(encoded: Any, levels: int = 255) -> Any:
    """Round values in [0, 1] to ``levels + 1`` steps, as an 8-bit file would (clipped first)."""
    xp = get_xp(encoded)
    return (xp.rint(xp.clip(encoded, 0, 1) * levels) / levels).astype(xp.float32)


# Rows compressed at a time, and the overlap between bands: the height of a 4:2:0 JPEG's MCU
# (16 px), which also covers the decoder's interpolation of chroma across MCU rows.
JPEG_BAND_ROWS = 256
_MCU_ROWS = 16


def jpeg(encoded: Any, quality: int, *, in_place: bool = False) -> Any:
    """Compress and decompress an RGB image as JPEG at ``quality`` (1-100) with cv2.

    Tall images go in bands of :data:`JPEG_BAND_ROWS` rows that start on MCU rows and overlap
    their neighbours by one MCU row: each band holds the whole image's blocks, and its decoded
    rows see the same chroma neighbours, so the result equals compressing the whole image at
    once, pixel for pixel, without an encoded copy of all of it.

    Args:
        encoded: (H, W, 3) sRGB-encoded RGB image: float in [0, 1] (rounded to 8 bits first),
            or uint8.
        quality: JPEG quality.
        in_place: a uint8 NumPy ``encoded`` may be overwritten with the result (saves a copy).

    Returns:
        The decoded image on the input's device: uint8 for uint8 input, else float32 in [0, 1].
    """
    xp = get_xp(encoded)
    image = to_numpy(encoded)
    exact = image.dtype == np.uint8
    if not exact:
        image = as_uint(image)
    elif not (in_place and xp is np):
        image = image.copy()
    height = image.shape[0]
    above = image[:0].copy()  # the band's upper overlap, as it was before compression
    for start in range(0, height, JPEG_BAND_ROWS):
        stop = min(height, start + JPEG_BAND_ROWS)
        band = np.concatenate([above, image[start : stop + _MCU_ROWS]])
        top = len(above)
        above = image[max(start, stop - _MCU_ROWS) : stop].copy()
        image[start:stop] = _jpeg_round_trip(band, quality)[top : top + stop - start]
    return xp.asarray(image if exact else image.astype(np.float32) / 255)


def _jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
