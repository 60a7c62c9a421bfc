"""The blur of the forward model: true 2-D convolution of images with kernels, batched.

Convolution, not correlation: a kernel with mass to the right of its anchor moves light to the
right. The anchor is pixel ``(K // 2, K // 2)``, where blurgen's kernels put their centroid, so a
blurred image stays aligned with its sharp original:

* ``boundary="valid"`` returns only pixels whose whole neighbourhood lies inside the image,
  ``(H - K + 1, W - K + 1)``, exactly ``scipy.signal.convolve2d(..., mode="valid")`` per channel.
  Its pixel ``(y, x)`` is aligned with sharp pixel ``(y + o, x + o)``, ``o = valid_offset(K)``.
* ``"reflect"`` (mirror without repeating the edge) and ``"wrap"`` (periodic) keep the size, and
  pixel ``(y, x)`` is aligned with sharp pixel ``(y, x)``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from blurgen.backend import get_xp

from .color import as_unit_float
from .kernels.camera import crop_probes, project
from .kernels.psf import splat_points

BOUNDARIES = ("valid", "reflect", "wrap")
METHODS = ("auto", "fft", "direct")
# Largest kernel for which the direct (cv2.filter2D) path is used by "auto" on the CPU. Above
# it, batched FFTs win (cv2 itself switches to a DFT for kernels over 11 px).
DIRECT_MAX_KERNEL = 11
_CPU_FFT_ELEMENTS = 1 << 20
# Images of at least this many pixels, with the kernel's border (a 720p frame has 921 K and more),
# are blurred a channel per thread when there are several: channels are independent, so the bits
# do not depend on the threads. A 720p frame took 18.5 ms on two cores against 35.8 in one
# thread; the 256-row strips that Degradation.render blurs (408 K for 720p, 632 K for 1080p)
# gained nothing or lost, and stay whole (it blurs them side by side instead).
CHANNEL_MIN_PIXELS = 3 << 18


def valid_offset(size: int) -> int:
    """Offset between a valid-mode output pixel and the sharp pixel it is aligned with."""
    return size - 1 - size // 2


def output_size(height: int, width: int, size: int, boundary: str) -> tuple[int, int]:
    """``(H', W')`` of :func:`blur`'s output for an H×W image and a K×K kernel."""
    if boundary == "valid":
        return height - size + 1, width - size + 1
    return height, width


def boundary_strip(image: Any, size: int, boundary: str, start: int, stop: int) -> Any:
    """The input that output rows ``start .. stop - 1`` of :func:`blur` read, padded as it pads.

    The valid convolution of the result with a K×K kernel equals those rows of
    ``blur(image, kernel, boundary=boundary)``, so a large image can be blurred strip by strip
    without padding or converting it whole.

    Args:
        image: (H, W, C) array of any dtype, NumPy or CuPy (a view is fine).
        size: the kernel's side K.
        boundary: ``"valid"``, ``"reflect"`` or ``"wrap"``.
        start, stop: output rows, ``0 <= start < stop <= H'``.

    Returns:
        (stop - start + K - 1, W', C) array, ``W' = W`` for ``"valid"`` and ``W + K - 1``
        otherwise; image's dtype and device.
    """
    xp = get_xp(image)
    if boundary == "valid":
        return image[start : stop + size - 1]
    height = image.shape[0]
    before, after = valid_offset(size), size // 2
    rows = np.arange(start - before, stop + after)
    if boundary == "reflect":  # mirrored about the first and last rows, which are not repeated
        rows = np.abs(rows)
        rows = np.where(rows >= height, 2 * (height - 1) - rows, rows)
    else:
        rows %= height
    mode = "reflect" if boundary == "reflect" else "wrap"
    return xp.pad(image[xp.asarray(rows)], ((0, 0), (before, after), (0, 0)), mode=mode)


def blur(
    sharp: Any,
    kernels: Any,
    *,
    boundary: str = "valid",
    method: str = "auto",
    threads: int | None = None,
) -> Any:
    """Convolve images with blur kernels.

    Args:
        sharp: (H, W, C) image or (N, H, W, C) batch, NumPy or CuPy: float32 (other floats
            are converted), or uint8 / uint16, scaled to [0, 1].
        kernels: (K, K) for all images, or (N, K, K) one per image; same device as ``sharp``.
        boundary: ``"valid"``, ``"reflect"`` or ``"wrap"`` (see the module docstring).
        method: ``"fft"`` (batched FFTs at fast lengths), ``"direct"`` (``cv2.filter2D``, NumPy
            only) or ``"auto"``. The methods agree to float32 rounding.
        threads: CPU threads for the FFTs of images of :data:`CHANNEL_MIN_PIXELS` or more, a
            channel each at a time and any more within a channel's transforms (the bits do not
            depend on it); None chooses: every core (:func:`fft_threads`) from the main thread
            of the main process, one elsewhere.

    Returns:
        float32 array on the input's device: (H', W', C) or (N, H', W', C), where H' = H - K + 1
        for ``"valid"`` and H otherwise.

    Example:
        >>> img = np.zeros((5, 5, 1), np.float32); img[2, 2] = 1
        >>> k = np.zeros((3, 3), np.float32); k[1, 2] = 1  # mass right of the anchor
        >>> float(blur(img, k, boundary="wrap")[2, 3, 0])  # moves light to the right
        1.0
    """
    xp = get_xp(sharp)
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}; choose one of {', '.join(BOUNDARIES)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1 (or None to choose), got {threads!r}")
    images, kernels = _check_shapes(as_unit_float(sharp), xp.asarray(kernels))
    size = kernels.shape[-1]
    if boundary != "valid":
        before, after = valid_offset(size), size // 2
        mode = "reflect" if boundary == "reflect" else "wrap"
        images = xp.pad(images, ((0, 0), (before, after), (before, after), (0, 0)), mode=mode)
    if method == "auto":
        method = "direct" if xp is np and size <= DIRECT_MAX_KERNEL else "fft"
    if method == "direct":
        if xp is not np:
            raise ValueError("method 'direct' runs on the CPU only; use 'fft' for CuPy arrays")
        out = _valid_direct(images, kernels)
    elif xp is np:
        out = _valid_fft_threads(images, kernels, threads)
    else:
        out = _valid_fft(images, kernels)
    return out if np.ndim(sharp) == 4 else out[0]


def fft_threads() -> int:
    """The threads :func:`blur` uses when not told: every core this process may use when called
    from the main thread of the main process, else one. Worker threads and worker processes
    (make-dataset's, a DataLoader's) so keep one thread each, without being told."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    if multiprocessing.parent_process() is not None:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def _check_shapes(images: Any, kernels: Any) -> tuple[Any, Any]:
    """(N, H, W, C) float32 images and (N or 1, K, K) float32 kernels, or a clear error."""
    if images.ndim not in (3, 4):
        raise ValueError(
            f"expected an (H, W, C) image or an (N, H, W, C) batch, got {images.shape}"
        )
    if images.ndim == 3:
        images = images[None]
    if kernels.ndim not in (2, 3) or kernels.shape[-1] != kernels.shape[-2]:
        raise ValueError(
            f"expected a square (K, K) kernel or (N, K, K) kernels, got {kernels.shape}"
        )
    if kernels.ndim == 2:
        kernels = kernels[None]
    n, height, width, _ = images.shape
    if kernels.shape[0] not in (1, n):
        raise ValueError(f"{kernels.shape[0]} kernels for {n} images: give one, or one per image")
    size = kernels.shape[-1]
    if height < size or width < size:
        raise ValueError(f"a {height}x{width} image is smaller than its {size}x{size} kernel")
    return images.astype(np.float32, copy=False), kernels.astype(np.float32, copy=False)


def _valid_fft(images: Any, kernels: Any, workers: int = 1) -> Any:
    """Valid convolution by FFTs along H and W, batched over images and channels; on the CPU,
    the image's transforms on ``workers`` threads (SciPy's).

    Circular convolution of length L >= H equals the linear one at indices K - 1 .. H - 1, the
    valid part, so the transforms need no padding beyond the next fast length of the image.
    """
    import scipy.fft

    xp = get_xp(images)
    fft = _fft_module(xp)
    n, height, width, channels = images.shape
    size = kernels.shape[-1]
    shape = (scipy.fft.next_fast_len(height, True), scipy.fft.next_fast_len(width, True))
    out = xp.empty((n, height - size + 1, width - size + 1, channels), xp.float32)
    # On the CPU, a few images at a time keep the transforms in cache (measured: 32 patches of
    # 286 px run 1.5x faster in groups of 2-8 than at once); a GPU wants the whole batch.
    group = n if xp is not np else max(1, _CPU_FFT_ELEMENTS // (shape[0] * shape[1] * channels))
    threads = {"workers": workers} if xp is np else {}
    for first in range(0, n, group):
        part = slice(first, first + group)
        kernel = kernels[part] if len(kernels) > 1 else kernels
        spectrum = fft.rfft2(images[part], s=shape, axes=(1, 2), **threads)
        # The kernel's rows beyond its K are zeros: transform its K rows, then the columns
        # (the same values as rfft2's, in 0.11 ms instead of 0.18 for a 64 px kernel).
        spectrum *= fft.fft(fft.rfft(kernel, n=shape[1], axis=2), n=shape[0], axis=1)[..., None]
        full = fft.irfft2(spectrum, s=shape, axes=(1, 2), **threads)
        out[part] = full[:, size - 1 : height, size - 1 : width]
    return out


def _valid_fft_threads(images: np.ndarray, kernels: np.ndarray, threads: int | None) -> np.ndarray:
    """:func:`_valid_fft` on the CPU, large images a channel per thread when there are several
    and the cores left over shared out among the channels' own transforms (None: on
    :func:`fft_threads` cores); the same bits as :func:`_valid_fft` in one thread."""
    n, height, width, channels = images.shape
    if height * width < CHANNEL_MIN_PIXELS:
        return _valid_fft(images, kernels)
    tasks = list(itertools.product(range(n), range(channels)))
    cores = threads
    if threads is None:
        cores = fft_threads()
        # A thread a channel while that is at most two a core, the system sharing the cores
        # out (an RGB 720p image on two cores: three threads did better than two).
        threads = len(tasks) if 1 < cores and len(tasks) <= 2 * cores else cores
    threads = min(threads, len(tasks))
    # SciPy splits a 2-D transform into independent 1-D ones, so its workers change no bit
    # either: a grey image, or a colour one on many cores, gets the cores a thread a channel
    # leaves idle.
    workers = max(1, cores // threads)
    if threads <= 1:
        return _valid_fft(images, kernels, workers)
    size = kernels.shape[-1]
    out = np.empty((n, height - size + 1, width - size + 1, channels), np.float32)

    def blur_channel(task: tuple[int, int]) -> None:
        i, c = task
        kernel = kernels[i : i + 1] if len(kernels) > 1 else kernels
        out[i : i + 1, ..., c : c + 1] = _valid_fft(
            images[i : i + 1, ..., c : c + 1], kernel, workers
        )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(blur_channel, tasks))
    return out


def _fft_module(xp: Any) -> Any:
    if xp is np:
        import scipy.fft

        return scipy.fft
    import cupyx.scipy.fft

    return cupyx.scipy.fft


def _valid_direct(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Valid convolution with cv2.filter2D (a correlation), on the flipped kernel."""
    n, height, width, channels = images.shape
    size = kernels.shape[-1]
    # Correlating with the flipped kernel anchored at a is convolution anchored at K - 1 - a;
    # this anchor makes output pixel y + a the valid output y.
    a = valid_offset(size)
    out = np.empty((n, height - size + 1, width - size + 1, channels), np.float32)
    for i in range(n):
        flipped = np.ascontiguousarray(kernels[min(i, len(kernels) - 1)][::-1, ::-1])
        for c0 in range(0, channels, 4):  # filter2D takes up to 4 channels at once
            part = np.ascontiguousarray(images[i, :, :, c0 : c0 + 4])
            filtered = cv2.filter2D(part, cv2.CV_32F, flipped, anchor=(a, a))
            filtered = filtered.reshape(height, width, -1)
            out[i, :, :, c0 : c0 + 4] = filtered[a : a + out.shape[1], a : a + out.shape[2]]
    return out


# cv2's border for each boundary: "reflect" mirrors without repeating the edge, as blur() does.
_WARP_BORDERS = {"valid": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101,
                 "wrap": cv2.BORDER_WRAP}  # fmt: skip


def warp_blur(
    image: np.ndarray,
    homographies: Any,
    size: int,
    *,
    boundary: str = "valid",
    tolerance: float | None = None,
) -> np.ndarray:
    """Spatially varying blur: the mean of an image warped by each of T homographies.

    ``out(x) = mean_t image(H_t^-1 x)`` (bilinear), so a point at x spreads over ``H_t x``.
    The homographies must move no pixel more than ``size // 2`` px along either axis (as
    :func:`blurgen.kernels.camera.fit_shake` makes them), so that the output has the shape and
    alignment :func:`blur` gives a K x K kernel, ``K = size``: with ``"valid"`` every kept
    pixel's whole path lies inside the image.

    With a ``tolerance``, runs of consecutive homographies that differ by translations, to
    within ``tolerance`` px over the output, are rendered as one convolution (by the
    translations' kernel) and one warp, where that is cheaper (:func:`warp_runs`). The
    translations are exact at the output's centre, and a run of pure translations is exact;
    elsewhere each copy lands within ``tolerance`` px of its own warp's place along either axis,
    interpolated twice instead of once.

    Args:
        image: (H, W, C) float32 NumPy, C up to 4 (light, not encoded values).
        homographies: (T, 3, 3), from the sharp image's pixels (x right, y down) to each time
            step's; or bands of rows with their own, ``[(first_row, stop_row, (T', 3, 3))]``
            covering every row (a rolling shutter's; each band is warped alone).
        size: the K whose reach bounds the motion.
        boundary: as for :func:`blur`.
        tolerance: None (each homography warps the image: exact, up to bilinear
            interpolation), or px (> 0) within which runs of them are one warp.

    Returns:
        float32 (H', W', C), shaped as :func:`blur`'s output.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    if tolerance is not None and not tolerance > 0:
        raise ValueError(f"tolerance must be a positive number of px or None, got {tolerance!r}")
    height, width, channels = image.shape
    image = np.ascontiguousarray(image, dtype=np.float32)
    if channels == 3:  # OpenCV's warps and filters run 1.4x as fast on four channels as on three
        image = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    border = _WARP_BORDERS[boundary]
    bands = homographies if isinstance(homographies, list) else [(0, height, homographies)]
    top, left, kept_height, kept_width = _kept_region(height, width, size, boundary)
    total = np.zeros((kept_height, kept_width, image.shape[2]), np.float32)
    # OpenCV writes into these instead of new arrays, whose pages cost as much as a warp.
    layout = image.shape[2:] if image.shape[2] > 1 else ()
    warped, convolved = np.empty((kept_height, kept_width, *layout), np.float32), None
    for first, stop, maps in bands:
        # Only the band's kept rows are warped, and only the kept columns.
        first, stop = max(first, top), min(stop, top + kept_height)
        if first >= stop:
            continue
        if tolerance is None or stop - first < _RUN_MIN_ROWS:
            runs = [WarpRun(homography, None) for homography in maps]
        else:
            probes = crop_probes(stop - first, kept_width) + (left, first)
            runs = warp_runs(maps, probes, tolerance, stop - first)
            convolved = np.empty(image.size, np.float32) if convolved is None else convolved
        convolving = [run for run in runs if run.kernel is not None]
        shift = np.array([[1, 0, -left], [0, 1, -first], [0, 0, 1]], np.float64)
        out = warped[: stop - first]
        band = total[first - top : stop - top]
        # The warps of no run, each weighing 1 / T (summed first, so divided once).
        plain = np.zeros(band.shape, np.float32) if len(runs) > len(convolving) else None
        window = (left, first, kept_width, stop - first)
        parts = iter(_read_parts(convolving, window, image.shape, boundary))
        for run in runs:
            source, lift = image, _IDENTITY
            if run.kernel is not None:
                source, lift = _convolved_part(image, run, next(parts), boundary, convolved)
            cv2.warpPerspective(source, shift @ run.homography @ lift, (kept_width, stop - first),
                                dst=out, flags=cv2.INTER_LINEAR, borderMode=border)  # fmt: skip
            target = plain if run.kernel is None else band
            target += out.reshape(target.shape)
        if plain is not None:
            band += plain / np.float32(len(maps))
    if channels == 3:  # a contiguous copy: the encoding's table lookups run faster on one
        return cv2.cvtColor(total, cv2.COLOR_RGBA2RGB)
    return total[..., :channels]


@dataclass(frozen=True)
class WarpRun:
    """One warp of :func:`warp_blur`: the image, convolved by ``kernel`` (None: as it is,
    weighing 1 / T), warped by ``homography``.

    Attributes:
        homography: (3, 3) float64, from the sharp image's pixels to the warp's.
        kernel: (h, w) float32 weights of translations, or None; ``kernel[i, j]`` is the
            weight of the move by ``(j - anchor[0], i - anchor[1])`` px as (dx, dy): the
            convolved image takes ``kernel[i, j] * image[y - dy, x - dx]``.
        anchor: (x, y) index of the zero move in ``kernel``.
    """

    homography: np.ndarray
    kernel: np.ndarray | None
    anchor: tuple[int, int] = (0, 0)


# Costs in warped rows of 4 float32 channels (130 us for 292 x 292 px, measured): a kernel's
# tap over a row (cv2.filter2D: 20 us for 292 x 292 px), and the calls' own overheads (a warp
# about 10 us, a run's kernel and convolution about 60).
_TAP_COST = 0.15
_WARP_CALL_COST = 20
_RUN_CALL_COST = 130
# Bands of fewer rows keep their warps: grouping costs about 1 ms a band in Python, more than
# it saves on a rolling shutter's thin bands (measured).
_RUN_MIN_ROWS = 32
_IDENTITY = np.eye(3)


def warp_runs(
    homographies: np.ndarray, probes: np.ndarray, tolerance: float, rows: int = 256
) -> list[WarpRun]:
    """Consecutive homographies grouped in runs, each rendered by one convolution and one
    warp; a homography that no run takes stays a warp of its own.

    Within a run, every probe's position relative to the probes' centre (their mean) varies by
    at most ``tolerance`` px along either axis: the run's warps differ from each other by
    translations there, to that tolerance. A run ends there, or earlier where the taps of its
    kernel would cost more than the warps it saves. Its warp is its middle homography, moved
    by the sub-pixel amount that puts the centre on whole pixels (so all of a pure
    translation's fractions go into the kernel, interpolated once); its kernel holds 1 / T at
    the translation that takes that warp to each of the run's at the centre, with bilinear
    weights.

    Args:
        homographies: (T, 3, 3) from the sharp image's pixels to each time step's.
        probes: (P, 2) points as (x, y) px where the tolerance is checked (the output's
            corners, edge midpoints and centre: the fields are nearly affine).
        tolerance: px, > 0.
        rows: the rows the warps write (a convolution reads about as many more as its
            kernel is tall): with the overheads of calls, what a run costs against a warp.

    Returns:
        The runs, in order; their kernels and the other warps' 1 / T sum to 1.
    """
    steps = len(homographies)
    centre = probes.mean(axis=0)
    moved = project(homographies, np.vstack([probes, centre]))
    relative = (moved[:, :-1] - moved[:, -1:]).reshape(steps, -1)  # (T, 2P)
    middles = moved[:, -1]  # (T, 2): where the centre goes
    spans, first = [], 0  # (first, stop) of each run; a warp of its own is a run of one
    while first < steps:
        within = _within_tolerance(relative[first:], tolerance)
        # The kernel's box (with the bilinear weights' pixel) against the warps it replaces.
        box = (np.maximum.accumulate(middles[first : first + within])
               - np.minimum.accumulate(middles[first : first + within]) + 3)  # fmt: skip
        convolved = _RUN_CALL_COST + _TAP_COST * box[:, 0] * box[:, 1] * (rows + box[:, 1])
        saved = np.arange(within) * (rows + _WARP_CALL_COST) - convolved  # (within >= 1)
        count = int(np.argmax(saved)) + 1 if saved.max() > 0 else 1
        spans.append((first, first + count))
        first += count
    grouped = [(a, b) for a, b in spans if b - a > 1]
    if not grouped:
        return [WarpRun(h, None) for h in homographies]
    # Each run's warp: its middle homography, moved to put the centre on whole pixels.
    references = homographies[[(a + b - 1) // 2 for a, b in grouped]]
    offsets = project(references, centre[None])[:, 0] - centre
    nudges = np.tile(np.eye(3), (len(grouped), 1, 1))
    nudges[:, :2, 2] = np.round(offsets) - offsets
    references = nudges @ references
    # Warp t is its run's, after a move of the image by d_t at the centre.
    members = np.concatenate([np.arange(a, b) for a, b in grouped])
    counts = np.array([b - a for a, b in grouped])
    owner = np.repeat(np.arange(len(grouped)), counts)
    back = _inverses(homographies[members]) @ references[owner]
    lifted = back @ np.array([centre[0], centre[1], 1.0])
    moves = centre - lifted[:, :2] / lifted[:, 2:]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    low = np.minimum(np.floor(np.minimum.reduceat(moves, starts)), 0).astype(int)
    high = np.maximum(np.floor(np.maximum.reduceat(moves, starts)) + 1, 0).astype(int)
    shapes = high - low + 1  # (w, h) of each kernel
    side = int(shapes.max()) + 1
    grid = moves - low[owner]  # in [0, shape - 1)
    squares = splat_points(grid[:, 0], grid[:, 1], counts, side) * (counts / steps)[:, None, None]
    made = {a: WarpRun(reference, square[:h, :w].astype(np.float32), (int(-lx), int(-ly)))
            for (a, _), reference, square, (w, h), (lx, ly)
            in zip(grouped, references, squares, shapes, low, strict=True)}  # fmt: skip
    return [made[a] if b - a > 1 else WarpRun(homographies[a], None) for a, b in spans]


def _within_tolerance(relative: np.ndarray, tolerance: float, window: int = 32) -> int:
    """How many leading rows of ``relative`` (T, 2P) stay within ``tolerance`` of each other in
    every column (at least 1). Looked for in windows that double: a run is usually a few dozen
    of a shake's hundreds of poses, and the running extremes of all of them cost more than the
    grouping's other steps (measured)."""
    while True:
        ahead = relative[:window]
        spread = np.maximum.accumulate(ahead) - np.minimum.accumulate(ahead)
        within = int(np.searchsorted(spread.max(axis=1) > tolerance, True))
        if within < len(ahead) or len(ahead) == len(relative):
            return within
        window *= 2


def _inverses(matrices: np.ndarray) -> np.ndarray:
    """The inverses of (N, 3, 3) float64 matrices, by their adjugates (several times as fast as
    ``np.linalg.inv`` on many small matrices)."""
    a, b, c = matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 0, 2]
    d, e, f = matrices[:, 1, 0], matrices[:, 1, 1], matrices[:, 1, 2]
    g, h, i = matrices[:, 2, 0], matrices[:, 2, 1], matrices[:, 2, 2]
    adjugate = np.stack([e * i - f * h, c * h - b * i, b * f - c * e,
                         f * g - d * i, a * i - c * g, c * d - a * f,
                         d * h - e * g, b * g - a * h, a * e - b * d], -1)  # fmt: skip
    determinant = a * adjugate[:, 0] + b * adjugate[:, 3] + c * adjugate[:, 6]
    return (adjugate / determinant[:, None]).reshape(-1, 3, 3)


def _kept_region(height: int, width: int, size: int, boundary: str) -> tuple[int, int, int, int]:
    """(top, left, height, width) of :func:`warp_blur`'s output within the image."""
    o = valid_offset(size) if boundary == "valid" else 0
    return o, o, *output_size(height, width, size, boundary)


def _read_parts(
    runs: list[WarpRun], window: tuple[int, int, int, int], shape: tuple[int, ...], boundary: str
) -> list[tuple[int, int, int, int]]:
    """The part of the image (x0, y0, x1, y1) that each run's warp reads for the output
    ``window`` (x, y, width, height), with a margin of its kernel's reach and the
    interpolation's pixel; all of it when the boundary wraps (a part would wrap about its own
    edges). One computation for all the runs: calls cost more than the arithmetic."""
    height, width = shape[:2]
    if boundary == "wrap" or not runs:
        return [(0, 0, width, height)] * len(runs)
    x, y, w, h = window
    corners = np.array([[x, y, 1], [x + w - 1, y, 1], [x, y + h - 1, 1],
                        [x + w - 1, y + h - 1, 1]], np.float64)  # fmt: skip
    mapped = corners @ np.linalg.inv(np.stack([run.homography for run in runs])).transpose(0, 2, 1)
    read = mapped[..., :2] / mapped[..., 2:]  # (runs, 4, 2)
    reach = np.array([max(run.kernel.shape) + 1 for run in runs])
    low = np.maximum(np.floor(read.min(axis=1)).astype(int) - reach[:, None], 0)
    high = np.ceil(read.max(axis=1)).astype(int) + 1 + reach[:, None]
    high = np.minimum(high, [width, height])
    return [(int(a), int(b), int(c), int(d)) for (a, b), (c, d) in zip(low, high, strict=True)]


def _convolved_part(
    image: np.ndarray, run: WarpRun, box: tuple[int, int, int, int], boundary: str,
    buffer: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The image's part ``box`` (x0, y0, x1, y1; :func:`_read_parts`) convolved by a run's kernel
    (into ``buffer``, as many values as the image), and the map from the part's pixels to the
    image's."""
    channels = image.shape[2]
    kernel, (ax, ay) = run.kernel, run.anchor
    x0, y0, x1, y1 = box
    # filter2D correlates, placing the flipped kernel's anchor on the pixel.
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    anchor = (kernel.shape[1] - 1 - ax, kernel.shape[0] - 1 - ay)
    part = image[y0:y1, x0:x1]
    shape = (y1 - y0, x1 - x0, channels) if channels > 1 else (y1 - y0, x1 - x0)
    out = buffer[: part.size].reshape(shape)
    if boundary == "wrap":  # filter2D cannot wrap: pad first
        before_y, before_x = anchor[1], anchor[0]
        after_y, after_x = kernel.shape[0] - 1 - before_y, kernel.shape[1] - 1 - before_x
        padded = cv2.copyMakeBorder(part, before_y, after_y, before_x, after_x,
                                    cv2.BORDER_WRAP)  # fmt: skip
        whole = cv2.filter2D(padded, cv2.CV_32F, flipped, anchor=anchor,
                             borderType=cv2.BORDER_CONSTANT)  # fmt: skip
        out[...] = whole[before_y : before_y + part.shape[0], before_x : before_x + part.shape[1]]
    else:
        border = cv2.BORDER_REPLICATE if boundary == "valid" else cv2.BORDER_REFLECT_101
        cv2.filter2D(part, cv2.CV_32F, flipped, dst=out, anchor=anchor, borderType=border)
    lift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    return out, lift
