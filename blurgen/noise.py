"""Sensor noise and output quantisation: deterministic cores, with randomness passed in.

Noise is drawn on the host (CuPy's generators are not reproducible across versions) and moved to
the image's device. It is made from a NumPy bit generator's raw 64-bit output (whose streams NumPy
keeps across versions, unlike its samplers') by blurgen's own arithmetic, several times as fast
as NumPy's exact samplers:

* read noise: a standard normal from 16 bits (:func:`normal_table`);
* shot noise below :data:`EXACT_BELOW` photons: an exact Poisson draw, by inverting its
  distribution function (:func:`_exact_counts`);
* shot noise from :data:`EXACT_BELOW` photons on: a normal draw corrected for the Poisson's
  skewness and kurtosis and rounded to whole photons (:func:`_approximate_counts`), whose
  distribution function is within :data:`APPROXIMATION_ERROR` of the Poisson's.

docs/benchmarks.md ("Shot noise at a usable speed") derives the bounds and gives the speed.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np

from blurgen.backend import get_xp, to_numpy
from blurgen.color import as_uint

# Mean photon counts below which shot noise is drawn exactly, and from which it is approximated.
EXACT_BELOW = 16
# The approximation's largest difference from the Poisson distribution function, over every mean
# from EXACT_BELOW on (Kolmogorov distance; 1.31e-4 at 16 photons, where it is largest).
APPROXIMATION_ERROR = 1.4e-4
# Values noised at a time (a 256 px RGB patch in one go: under threads, every NumPy call here can
# wait for Python's lock, so fewer and larger calls are faster), bounding the memory it takes.
_CHUNK = 1 << 18
# The exact draw's table: rows every 1/8 photon, each the 32-bit uniform's range cut into 2,048
# cells, holding the count of the uniforms in the cell, or _STEP where the count steps inside it.
_ROW_BITS = 3
_CELL_BITS = 11
_STEP = 255
_MOST_COUNTS = 64  # P(count >= 64) < 1e-17 for means below EXACT_BELOW


def noise_streams(seed: int) -> np.random.Generator:
    """The generator of a noise seed (0 to 2**64 - 1) that :func:`poisson_gaussian` draws from:
    SFC64, the fastest of NumPy's bit generators.

    Each value takes one 64-bit draw, value after value in row-major order, so noise added strip
    by strip (consecutive rows, in order) equals noise added to the whole image.
    """
    return np.random.Generator(np.random.SFC64(int(seed)))


def poisson_gaussian(linear: Any, shot: float, read: float, rng: np.random.Generator | None) -> Any:
    """Add shot (Poisson) and read (Gaussian) noise to a linear-light image.

    The signal is treated as ``x / shot`` photo-electrons: the result is
    ``shot * Poisson(x / shot) + Normal(0, read**2)``, whose mean is ``x`` and variance
    ``shot * x + read**2``. Counts from :data:`EXACT_BELOW` photons on are approximated, to
    :data:`APPROXIMATION_ERROR` (see the module's docstring). The same generator state gives the
    same noise whatever the array's device.

    Args:
        linear: float array in linear light (NumPy or CuPy), any shape; negative values get no
            shot noise.
        shot: gain in image units per electron (>= 0); 0 means no shot noise.
        read: standard deviation of the read noise in image units (>= 0).
        rng: the generator (:func:`noise_streams`); unused, and may be None, when both levels
            are 0.

    Returns:
        float32 array like ``linear``, unclipped.

    Example:
        >>> light = np.full((2, 3), 0.25, np.float32)
        >>> poisson_gaussian(light, 0.01, 0.002, noise_streams(7)).shape
        (2, 3)
    """
    xp = get_xp(linear)
    if shot <= 0 and read <= 0:  # no copies, and on a GPU no round trip through the host
        return linear.astype(xp.float32, copy=False)
    light = to_numpy(linear)
    values = np.ravel(light).astype(np.float32)
    draw = rng.bit_generator.random_raw
    for start in range(0, values.size, _CHUNK):
        part = values[start : start + _CHUNK]
        bits = draw(part.size).astype("<u8", copy=False)
        # Bits 0-15 make the read noise, 16-31 the shot noise (drawn exactly: its remainder's),
        # 32-63 an exact draw's count.
        fields = bits.view("<u2")
        if shot > 0:
            photons = part * np.float32(1 / shot)
            counts = _approximate_counts(photons, fields[1::4])
            low = np.flatnonzero(photons < EXACT_BELOW)  # negative values too
            counts[low] = _exact_counts(photons.take(low), bits.take(low))
            np.multiply(counts, np.float32(shot), out=part)
        if read > 0:
            noise = normal_table().take(fields[::4], mode="clip")  # no bounds checks
            noise *= np.float32(read)
            part += noise
    return xp.asarray(values.reshape(np.shape(light)))


@functools.lru_cache(maxsize=1)
def normal_table() -> np.ndarray:
    """A standard normal from 16 uniform bits: the mean of each of 65,536 equally likely slices
    of the normal distribution, scaled to variance 1 (float32, read-only).

    Its distribution function is within 2**-16 of the normal's everywhere; the tails stop at
    +-4.39 (the outer slices' means), where the normal has 1.1e-5 of its mass.
    """
    from scipy.special import ndtri

    edges = ndtri(np.arange(1, 65536) / 65536)
    density = np.concatenate([[0.0], np.exp(-0.5 * edges**2) / math.sqrt(2 * math.pi), [0.0]])
    means = (density[:-1] - density[1:]) * 65536
    means /= math.sqrt(np.mean(means**2))
    table = means.astype(np.float32)
    table.setflags(write=False)
    return table


def _approximate_counts(photons: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Poisson counts for means from :data:`EXACT_BELOW` on (float32; other means give NaN or
    meaningless counts), from a 16-bit uniform each.

    A standard normal z (:func:`normal_table`) becomes
    ``floor(m + 1/2 + s z + (z**2 - 1) / 6 + z (1 - z**2) / (72 s))``, ``s = sqrt(m - 1/12)``:
    the Cornish-Fisher expansion of the Poisson quantile to second order (skewness, kurtosis),
    with Sheppard's correction for rounding to whole counts, so that the counts have the
    Poisson's mean and variance (to 4e-6 and 1e-4 of them, from 16 photons on).
    """
    z = normal_table().take(uniform, mode="clip")
    spread = np.subtract(photons, np.float32(1 / 12))
    # Means up to 1/12 give NaN or infinite terms here: exact draws replace them.
    with np.errstate(invalid="ignore", divide="ignore"):
        np.sqrt(spread, out=spread)
        counts = spread * z
        counts += photons
        square = z * z
        spread *= np.float32(72)
        z /= spread
        np.subtract(np.float32(1), square, out=spread)
        spread *= z
        counts += spread  # z (1 - z**2) / (72 s)
        square *= np.float32(1 / 6)
        square += np.float32(1 / 3)  # (z**2 + 2) / 6: the skewness's (z**2 - 1) / 6, and 1/2
        counts += square
        return np.floor(counts, out=counts)


def _exact_counts(photons: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Poisson counts for means below :data:`EXACT_BELOW`, by inversion (uint8 counts, from
    float32 means and their values' 64-bit draws).

    ``Poisson(m) = Poisson(r / 8) + Poisson(m - r / 8)``, ``r = floor(8 m)``: the first from a
    table of its distribution function (:func:`_inversion_table`) and the draw's high 32 bits,
    exact to 2**-32; the second, of a mean under 1/8, from bits 16-31, exact to 2**-16 (its
    count is 0 unless ``1 - u`` is below ``1 - exp(-m) < m``).
    """
    cells, steps = _inversion_table()
    scaled = photons * np.float32(1 << _ROW_BITS)
    whole = np.trunc(scaled)  # negative means: row 0 (or below, clipped to 0), count 0
    uniform = bits.view("<u4")[1::2]
    index = whole.astype(np.int32)
    index <<= _CELL_BITS
    index |= (uniform >> (32 - _CELL_BITS)).view(np.int32)
    counts = cells.take(index, mode="clip")
    scaled -= whole  # 8 (m - r / 8), exactly (negative for negative means)
    scaled *= np.float32(2.0**16 / (1 << _ROW_BITS))
    stepped = np.flatnonzero(counts == _STEP)
    if stepped.size:  # a step inside the uniform's cell: count the steps below the uniform
        row = np.maximum(index[stepped] >> _CELL_BITS, 0)
        counts[stepped] = (steps[row] <= uniform[stepped, None]).sum(axis=1)
    rest = bits.view("<u2")[1::4]
    more = np.flatnonzero(rest < scaled)
    if more.size:  # a remainder that may count
        counts[more] += _small_counts(scaled[more] / np.float64(2.0**16), rest[more])
    return counts


def _small_counts(mean: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Poisson counts of means below 1/8 (float64; negative: 0) by inversion of 16-bit
    uniforms taken as 1 - u: the number of k with 1 - u < P(count > k) (uint8)."""
    left = (uniform + 0.5) * 2.0**-16
    survival = -np.expm1(-mean)  # P(count > 0)
    counts = (left < survival).astype(np.uint8)
    term = np.exp(-mean) * mean  # P(count = 1)
    for k in range(2, 9):  # P(count >= 9) < 1e-13
        survival -= term
        more = left < survival
        if not more.any():
            break
        counts += more
        term *= mean / k
    return counts


@functools.lru_cache(maxsize=1)
def _inversion_table() -> tuple[np.ndarray, np.ndarray]:
    """The exact draw's tables (read-only): ``steps[r, k]``, the first 32-bit uniform whose
    Poisson(r / 8) count exceeds k (``ceil(2**32 P(count <= k) - 1/2)``); and, by row and the
    uniform's top bits, the count of every uniform in the cell, or :data:`_STEP`."""
    rows = EXACT_BELOW << _ROW_BITS
    mean = np.arange(rows)[:, None] / (1 << _ROW_BITS)
    k = np.arange(_MOST_COUNTS)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = k * np.log(mean) - mean - np.array([math.lgamma(j + 1) for j in k])
    log_pmf[0] = np.where(k == 0, 0.0, -np.inf)
    cdf = np.cumsum(np.exp(log_pmf), axis=1)
    steps = np.minimum(np.ceil(cdf * 2.0**32 - 0.5), 2**32).astype(np.int64)
    starts = np.arange(1 << _CELL_BITS, dtype=np.int64) << (32 - _CELL_BITS)
    cells = np.empty((rows, 1 << _CELL_BITS), np.uint8)
    for r in range(rows):
        count = np.searchsorted(steps[r], starts, side="right")
        inside = np.searchsorted(steps[r], starts + (1 << (32 - _CELL_BITS)), side="left")
        cells[r] = np.where(inside > count, _STEP, count)
    for array in (cells, steps):
        array.setflags(write=False)
    return cells.ravel(), steps


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
