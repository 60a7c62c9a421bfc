"""How real a set of blurred images looks: blur statistics per image, distances between sets.

Each image is measured at its native resolution (blur size is a property of the capture; a
photo larger than :data:`MAX_SIDE` is measured on its central crop, never resampled), on its
luma (Rec. 601 weights on the encoded values, in [0, 1]):

* ``falloff``: slope of the radially averaged log power spectrum against log frequency,
  between 1/64 and 1/2.5 cycles per pixel (natural sharp photos: about -2; blur steepens it).
* ``directionality``: coherence of the gradient energy, ``(l1 - l2) / (l1 + l2)`` for the
  eigenvalues of the summed structure tensor of the image's derivatives of a Gaussian of 1 px
  (0: no preferred direction; 0.74 for a horizontal box blur of 9 px on white noise).
* ``extent``: how far blur spreads a point, in px, from the autocorrelation of the gradient
  field (the blur kernel's autocorrelation seen through the image's gradients, which are
  nearly white at short range): the central lobe where it exceeds :data:`LOBE_LEVEL` of its
  zero-lag value, as the RMS distance of the lobe's pixels from the centre, scaled so that a
  Gaussian blur of sigma on white noise gives sigma (the normalised autocorrelation of its
  gradients is ``(1 - u) exp(-u)``, ``u = r^2 / (4 sigma^2)``). Below that level the slow
  correlations of image content, not blur, would decide the lobe.
* ``detail``: log10 of the share of the spectral power above 1/4 cycle per pixel: what is
  left of fine detail.
* ``noise``: the noise standard deviation in 8-bit levels, from the finest diagonal Haar
  coefficients (median absolute value / 0.6745, Donoho's estimator; edges barely move it).

Two sets are compared statistic by statistic with the 1-Wasserstein distance between their
values, divided by the standard deviation of the reference (real) set, so 1 means "one real
spread apart"; the overall distance is the mean over the statistics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage, optimize
from scipy.stats import wasserstein_distance

from .color import as_unit_float

STATISTICS = ("falloff", "directionality", "extent", "detail", "noise")
UNITS = {"falloff": "log P / log f", "directionality": "0-1", "extent": "px",
         "detail": "log10 share", "noise": "8-bit levels"}  # fmt: skip
MAX_SIDE = 2048
MIN_SIDE = 64
# Largest lag of the gradient autocorrelation examined: extents saturate near LAG / 2.
LAG = 64
LOBE_LEVEL = 0.2
# u where (1 - u) exp(-u) = LOBE_LEVEL: the Gaussian's lobe is the disc r^2 < 4 sigma^2 u, whose
# RMS radius is sigma sqrt(2 u).
_LOBE_U = optimize.brentq(lambda u: (1 - u) * math.exp(-u) - LOBE_LEVEL, 0, 1)
MIN_IMAGES = 5
_LUMA = np.array([0.299, 0.587, 0.114])
_BAND = (1 / 64, 1 / 2.5)
_FINE = 0.25


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 luma of an (H, W, 3) RGB or (H, W) grey image (float in [0, 1], or
    uint8 / uint16)."""
    values = np.asarray(as_unit_float(np.asarray(image)), np.float64)
    if values.ndim == 3:
        return values[..., :3] @ _LUMA
    if values.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got {values.shape}")
    return values


def central_crop(gray: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    """The central ``side`` x ``side`` part (or less, where the image is smaller)."""
    height, width = gray.shape
    y, x = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return gray[y : y + side, x : x + side]


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """The blur statistics of one image (see the module docstring), plus ``angle``: the blur
    direction in degrees in [0, 180), counter-clockwise from horizontal (the direction of least
    gradient energy; not compared between sets, since real shake has every direction).

    Args:
        image: (H, W, 3) RGB or (H, W) grey; float in [0, 1], uint8 or uint16; both sides at
            least :data:`MIN_SIDE` px.

    Raises:
        ValueError: the image is too small.
    """
    gray = central_crop(luma(image))
    if min(gray.shape) < MIN_SIDE:
        raise ValueError(f"a {gray.shape[0]}x{gray.shape[1]} image is too small to measure "
                         f"(at least {MIN_SIDE}x{MIN_SIDE} px)")  # fmt: skip
    frequency, power = _radial_power(gray)
    band = (frequency >= _BAND[0]) & (frequency <= _BAND[1])
    falloff = float(np.polyfit(np.log(frequency[band]), np.log(power[band]), 1)[0])
    detail = math.log10(max(power[frequency > _FINE].sum() / power.sum(), 1e-12))
    # Derivatives of a Gaussian of 1 px: plain differences respond unequally to directions
    # (a 30-degree streak reads as 40 degrees), these nearly isotropically.
    coherence, angle = _directionality(
        ndimage.gaussian_filter(gray, 1.0, order=(0, 1)),
        ndimage.gaussian_filter(gray, 1.0, order=(1, 0)),
    )
    return {
        "falloff": falloff,
        "directionality": coherence,
        "extent": gradient_extent(np.diff(gray, axis=1)[:-1], np.diff(gray, axis=0)[:, :-1]),
        "detail": detail,
        "noise": noise_level(gray) * 255,
        "angle": angle,
    }


def _radial_power(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean power per integer radius of the Hann-windowed spectrum (DC left out): the
    frequencies (cycles/px) and powers of the radii up to Nyquist."""
    height, width = gray.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    spectrum = np.abs(scipy.fft.rfft2((gray - gray.mean()) * window)) ** 2
    fy = scipy.fft.fftfreq(height)[:, None]
    fx = scipy.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fy, fx)
    # Bins of 1/min(H, W) cycle/px: one per distinguishable frequency on the shorter side.
    step = 1 / min(height, width)
    index = np.rint(radius / step).astype(np.int64).ravel()
    count = np.bincount(index)
    total = np.bincount(index, spectrum.ravel())
    radii = np.arange(1, min(len(count), int(0.5 / step) + 1))
    radii = radii[count[radii] > 0]
    return radii * step, total[radii] / count[radii]


def _directionality(gx: np.ndarray, gy: np.ndarray) -> tuple[float, float]:
    tensor = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    values, vectors = np.linalg.eigh(tensor)  # ascending
    total = values.sum()
    coherence = float((values[1] - values[0]) / total) if total > 0 else 0.0
    # Image rows grow downwards; angles are counted counter-clockwise on screen.
    vx, vy = vectors[:, 0]
    angle = math.degrees(math.atan2(-vy, vx)) % 180
    return coherence, float(angle)


def gradient_extent(gx: np.ndarray, gy: np.ndarray, lag: int = LAG) -> float:
    """Blur extent in px from an image's gradients (see the module docstring)."""
    height, width = gx.shape
    shape = (
        scipy.fft.next_fast_len(height + lag, True),
        scipy.fft.next_fast_len(width + lag, True),
    )
    power = np.zeros((shape[0], shape[1] // 2 + 1))
    for g in (gx, gy):
        power += np.abs(scipy.fft.rfft2(g - g.mean(), s=shape)) ** 2
    correlation = scipy.fft.irfft2(power, s=shape)
    # Lags -lag .. lag in both directions, zero lag at the centre.
    rows = np.r_[shape[0] - lag : shape[0], 0 : lag + 1]
    cols = np.r_[shape[1] - lag : shape[1], 0 : lag + 1]
    window = correlation[np.ix_(rows, cols)]
    if not window[lag, lag] > 0:
        return 0.0
    labels, _ = ndimage.label(window > LOBE_LEVEL * window[lag, lag])
    y, x = np.nonzero(labels == labels[lag, lag])
    return math.sqrt(np.mean((y - lag) ** 2 + (x - lag) ** 2) / (2 * _LOBE_U))


def noise_level(gray: np.ndarray) -> float:
    """Noise standard deviation of a (H, W) image, in its own units: the median absolute finest
    diagonal Haar coefficient over 0.6745 (exact in expectation for white Gaussian noise)."""
    height, width = (gray.shape[0] // 2) * 2, (gray.shape[1] // 2) * 2
    g = gray[:height, :width]
    diagonal = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2
    return float(np.median(np.abs(diagonal)) / 0.6745)


@dataclass(frozen=True)
class Comparison:
    """The distance between a set of images and a reference (real) set.

    Attributes:
        distances: per statistic, the 1-Wasserstein distance over the reference's standard
            deviation.
        overall: the mean of ``distances``.
        medians: per statistic, ``(set's median, reference's median)``.
        counts: ``(images in the set, images in the reference)``.
    """

    distances: dict[str, float]
    overall: float
    medians: dict[str, tuple[float, float]]
    counts: tuple[int, int]

    def to_dict(self) -> dict:
        """JSON-serialisable fields."""
        return {"distances": self.distances, "overall": self.overall,
                "medians": {k: list(v) for k, v in self.medians.items()},
                "counts": list(self.counts)}  # fmt: skip


def compare(
    measured: Sequence[dict[str, float]], reference: Sequence[dict[str, float]]
) -> Comparison:
    """Distance of a set of images' statistics from a reference set's (see the module docstring).

    Args:
        measured, reference: :func:`image_statistics` of each image; at least
            :data:`MIN_IMAGES` each.

    Raises:
        ValueError: too few images on either side.
    """
    for name, values in (("blurred", measured), ("real", reference)):
        if len(values) < MIN_IMAGES:
            raise ValueError(f"{len(values)} usable {name} image(s): the realism measure needs "
                             f"at least {MIN_IMAGES} on each side")  # fmt: skip
    distances, medians = {}, {}
    for name in STATISTICS:
        ours = np.array([s[name] for s in measured])
        theirs = np.array([s[name] for s in reference])
        spread = max(float(np.std(theirs, ddof=1)), 1e-9)
        distances[name] = float(wasserstein_distance(ours, theirs) / spread)
        medians[name] = (float(np.median(ours)), float(np.median(theirs)))
    overall = float(np.mean(list(distances.values())))
    return Comparison(distances, overall, medians, (len(measured), len(reference)))


def statistics_of(images: Iterable[np.ndarray]) -> list[dict[str, float]]:
    """:func:`image_statistics` of each image, in order."""
    return [image_statistics(image) for image in images]


PAIRS_SUFFIXES = (".h5", ".hdf5")


def measure(
    items: Sequence[str | os.PathLike],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """The statistics of every image in ``items``: image files, folders (recursive), ``.txt``
    lists, and pairs files (``.h5``: each pair's ``blurred`` image).

    Returns:
        ``(measured, skipped)``: :func:`image_statistics` with the image's ``name`` added, and
        ``{"name", "reason"}`` for each image that could not be read or is too small.

    Raises:
        FileNotFoundError: an item does not exist. ValueError: with ``strict``, the first image
            that cannot be used.
    """
    from .h5 import open_pairs
    from .io import Photo

    measured, skipped = [], []

    def add(name: str, read: Callable[[], np.ndarray]) -> None:
        try:
            measured.append({"name": name, **image_statistics(read())})
        except (OSError, ValueError) as exc:
            if strict:
                raise ValueError(f"{exc} (stopped: --strict)") from None
            skipped.append({"name": name, "reason": str(exc)})
        if progress is not None:
            progress(1)

    files, photos = _split(items)
    for path in files:
        with open_pairs(path) as f:
            blurred = f["blurred"]
            for i in range(len(blurred)):
                add(f"{path}#{i}", lambda i=i, blurred=blurred: blurred[i])
    for path in photos:
        add(str(path), lambda path=path: _central(Photo.open(path)))
    return measured, skipped


def count_images(items: Sequence[str | os.PathLike]) -> int:
    """How many images :func:`measure` would measure (for a progress bar)."""
    from .h5 import open_pairs

    files, photos = _split(items)
    total = len(photos)
    for path in files:
        with open_pairs(path) as f:
            total += len(f["blurred"])
    return total


def _split(items: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Pairs files, and the image paths of everything else (see :func:`measure`)."""
    from .pipeline import expand_sources

    pairs = [Path(item) for item in items if Path(item).suffix.lower() in PAIRS_SUFFIXES]
    others = [item for item in items if Path(item).suffix.lower() not in PAIRS_SUFFIXES]
    return pairs, expand_sources(others)


def _central(photo: Any) -> np.ndarray:
    """The central :data:`MAX_SIDE` crop of a photo, converted (only that part)."""
    height, width = photo.size
    rows, cols = min(height, MAX_SIDE), min(width, MAX_SIDE)
    return photo.crop((height - rows) // 2, (width - cols) // 2, rows, cols)


_COLOURS = ((230, 120, 20), (40, 110, 200))  # RGB: orange, blue


def histogram_panel(
    groups: Sequence[np.ndarray],
    title: str,
    *,
    size: tuple[int, int] = (220, 360),
    bins: int = 16,
    marks: Sequence[float] = (),
) -> np.ndarray:
    """Histograms of two (or one) sets of values on shared bins, bars side by side, each bar
    the share of its set's values in the bin; thin vertical lines at ``marks``.

    Returns:
        (H, W, 3) uint8 RGB panel of ``size`` (height, width).
    """
    import cv2

    height, width = size
    low = min(float(np.min(v)) for v in groups)
    high = max(float(np.max(v)) for v in groups)
    high = high if high > low else low + 1e-6
    edges = np.linspace(low, high, bins + 1)
    panel = np.full((height, width, 3), 255, np.uint8)
    top, bottom, left, span = 40, height - 40, 20, width - 40
    shares = [np.histogram(v, edges)[0] / len(v) for v in groups]
    tallest = max(float(s.max()) for s in shares) or 1.0
    bar = span / bins / len(groups)
    for k, share in enumerate(shares):
        for b, value in enumerate(share):
            x0 = int(left + (b * len(groups) + k) * bar)
            y0 = int(bottom - (bottom - top) * value / tallest)
            cv2.rectangle(panel, (x0, y0), (int(x0 + bar) - 1, bottom), _COLOURS[k], -1)
    cv2.line(panel, (left, bottom), (left + span, bottom), (0, 0, 0), 1)
    for mark in marks:
        x = int(left + (mark - low) / (high - low) * span)
        cv2.line(panel, (x, top - 10), (x, bottom), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(panel, title, (left, 25), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for x, value in ((left, low), (left + span - 60, high)):
        cv2.putText(panel, f"{value:.3g}", (x, height - 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def legend_panel(labels: Sequence[str], size: tuple[int, int] = (220, 360)) -> np.ndarray:
    """A panel naming the colours of :func:`histogram_panel`'s sets, in order."""
    import cv2

    panel = np.full((*size, 3), 255, np.uint8)
    for k, label in enumerate(labels):
        cv2.rectangle(panel, (20, 60 + 40 * k), (50, 80 + 40 * k), _COLOURS[k], -1)
        cv2.putText(panel, label, (60, 77 + 40 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0),
                    1, cv2.LINE_AA)  # fmt: skip
    return panel


def plot_distributions(
    measured: Sequence[dict],
    reference: Sequence[dict],
    labels: tuple[str, str] = ("blurred", "real"),
) -> np.ndarray:
    """Histograms of each statistic for two sets, side by side: an (H, W, 3) uint8 RGB picture
    (orange: ``measured``, blue: ``reference``; see :func:`histogram_panel`)."""
    panels = [
        histogram_panel(
            [np.array([s[name] for s in group]) for group in (measured, reference)],
            f"{name} ({UNITS[name]})",
        )  # fmt: skip
        for name in STATISTICS
    ]
    counts = (len(measured), len(reference))
    panels.append(
        legend_panel([f"{lab} ({n} images)" for lab, n in zip(labels, counts, strict=True)])
    )
    rows = [np.concatenate(panels[i : i + 3], axis=1) for i in range(0, len(panels), 3)]
    return np.concatenate(rows, axis=0)
