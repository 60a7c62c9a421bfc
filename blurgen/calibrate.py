"""Fit the kernel model and the degradation to real blurry photos by their realism distance.

Each candidate setting renders the same samples of the sharp photos (the same generators every
time, so the objective is deterministic and candidates differ only by their settings), measures
them (:mod:`blurgen.realism`) and scores their distance from the real photos. SciPy's
differential evolution searches the box of :data:`PARAMETERS` with a fixed seed and budget.

Given kernels estimated for real photos, their extents (:func:`blurgen.kernels.kernel_extent`)
count twice. As a sixth statistic: the distance between the extents of :data:`KERNEL_DRAWS`
kernels the candidate draws and theirs (1-Wasserstein over their standard deviation) joins the
five image statistics in the mean. As a condition: the candidate's kernel extents must cover
theirs between its 5th and 95th percentiles. 400 draws estimate a tail percentile to about a
pixel, so the search asks the stricter :data:`SEARCH_PERCENTILES` of them, and any shortfall
(px, over the real extents' standard deviation) is added :data:`SHORTFALL_WEIGHT` times, which
makes the condition all but hard.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import wasserstein_distance

from . import methods as registry
from .io import Photo
from .kernels import kernel_extent
from .parameters import DEFAULT_FIT, PARAMETERS
from .pipeline import DatasetConfig
from .realism import MIN_SIDE, compare, statistics_of
from .sample import LearnedBlur, SampleRecord, Synthesiser, sample_rng


def configure(base: DatasetConfig, values: dict[str, float]) -> DatasetConfig:
    """``base`` with the given :data:`PARAMETERS` values applied (the others as in ``base``)."""
    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown calibration parameters: {', '.join(unknown)}")
    size = int(round(values.get("kernel_size", base.kernel_size)))
    sections = {m.section: m.calibrated(base, values, size) for m in registry.methods()
                if m.calibration}  # fmt: skip
    mix, blur = base.mix, base.blur
    shares = {m.name: values[m.name] for m in registry.methods() if m.share and m.name in values}
    if shares:
        # The shares are of all samples; the first method takes what is left (none if they
        # add up to more than 1, the shares then scaled to sum to 1).
        given = {m: share for m, share in shares.items() if share > 0}
        rest = max(0.0, 1 - sum(given.values()))
        blur = registry.names()[0]
        mix = tuple((m, w) for m, w in ((blur, rest), *given.items()) if w > 0)
        if len(mix) == 1:
            mix, blur = (), mix[0][0]
    return replace(base, kernel_size=size, degradation=base.degradation.calibrated(values),
                   mix=mix, blur=blur, **sections)  # fmt: skip


def preset_of(config: DatasetConfig) -> dict:
    """make-dataset option values (as ``--config`` and ``--preset`` files hold them) for the
    kernel model and the degradation of ``config``. Every setting is written, those that are
    off as null, so that the file replaces the default preset's values rather than adding to
    them. ``blur`` is left out when a mix draws the methods, and the kernel model when no
    sample uses it (make-dataset refuses a file that sets either)."""
    methods = {"mix": ",".join(f"{m}={w:.4g}" for m, w in config.mix)} if config.mix else {
        "blur": config.blur, "mix": None}  # fmt: skip
    models = {name: value for method in config.blur_methods()
              for name, value in method.settings_of(config).items()}  # fmt: skip
    return {"kernel_size": config.kernel_size, **methods, **models,
            **config.degradation.settings_of()}  # fmt: skip


KERNEL_DRAWS = 400
SEARCH_PERCENTILES = (7.0, 93.0)
SHORTFALL_WEIGHT = 10.0
COVERED_PERCENTILES = (5.0, 95.0)


def drawn_extents(config: DatasetConfig, count: int = KERNEL_DRAWS, seed: int = 0) -> np.ndarray:
    """Extents (px) of ``count`` kernels drawn under ``config`` (the same generators for every
    config)."""
    rngs = [sample_rng(seed, "kernel-extents", i) for i in range(count)]
    return kernel_extent(Synthesiser(config).draw(rngs, [(1 << 16, 1 << 16)] * count, None)[1])


def coverage_shortfall(
    extents: np.ndarray, real: np.ndarray, percentiles: tuple[float, float] = COVERED_PERCENTILES
) -> float:
    """How far, in px, the ``percentiles`` range of ``extents`` falls short of covering the
    ``real`` extents (0: covered)."""
    low, high = np.percentile(extents, percentiles)
    return float(max(0.0, low - np.min(real)) + max(0.0, np.max(real) - high))


def read_kernel_extents(items: Sequence[str | os.PathLike]) -> np.ndarray:
    """Extents of kernels stored as ``.npy`` arrays or grey images (files or folders; where a
    kernel is in both forms, its ``.npy`` is read)."""
    from .pipeline import IMAGE_SUFFIXES

    files: dict[tuple[Path, str], Path] = {}
    for item in map(Path, items):
        if not item.exists():
            raise FileNotFoundError(f"'{item}': no such file or folder")
        for path in sorted(item.iterdir()) if item.is_dir() else [item]:
            key, suffix = (path.parent, path.stem), path.suffix.lower()
            if suffix == ".npy" or (suffix in IMAGE_SUFFIXES and key not in files):
                files[key] = path
    extents = []
    for path in files.values():
        try:
            if path.suffix.lower() == ".npy":
                kernel = np.load(path, allow_pickle=False)
            else:
                photo = Photo.open(path)
                kernel = photo.crop(0, 0, *photo.size)[..., 0]
        except (OSError, ValueError) as exc:
            raise ValueError(f"'{path}': not a kernel ({exc})") from None
        if kernel.ndim != 2 or not np.all(np.isfinite(kernel)) or kernel.sum() <= 0:
            raise ValueError(f"'{path}': not a kernel (need a 2-D array with a positive sum)")
        extents.append(kernel_extent(kernel))
    if not extents:
        raise ValueError(f"no kernels (.npy or images) in {', '.join(map(str, items))}")
    return np.array(extents)


class Renderer:
    """Renders the same samples of the sharp photos under any config, and measures them.

    Args:
        sharp: sharp photo paths (unreadable ones raise, naming the file).
        samples: samples per photo.
        patch: crop side in px.
        seed: the samples' root seed.
    """

    def __init__(self, sharp: Sequence, samples: int, patch: int, seed: int) -> None:
        self.photos = [Photo.open(path) for path in sharp]
        small = [str(p.path) for p in self.photos if min(p.size) < patch]
        if small:
            raise ValueError(f"sharp photos smaller than the {patch} px patch: {small[0]}")
        self.samples, self.patch, self.seed = samples, patch, seed

    def pairs(
        self, config: DatasetConfig, learned: LearnedBlur | None = None
    ) -> Iterator[tuple[SampleRecord, np.ndarray, np.ndarray]]:
        """Every sample rendered under ``config`` (``learned``: the learned blur, for methods
        that need one): its record, and its sharp and blurred images as uint8 (H, W, 3)."""
        synthesiser = Synthesiser(config, learned)
        for photo in self.photos:
            rngs = [sample_rng(self.seed, photo.fingerprint, i) for i in range(self.samples)]
            pairs = synthesiser.make([photo] * self.samples, rngs, self.patch)
            yield from zip(pairs.records, pairs.sharp, pairs.blurred, strict=True)

    def statistics(self, config: DatasetConfig, learned: LearnedBlur | None = None) -> list[dict]:
        """The realism statistics of every sample rendered under ``config``."""
        return statistics_of(blurred for _, _, blurred in self.pairs(config, learned))


@dataclass(frozen=True)
class Calibration:
    """The result of :func:`calibrate`.

    Attributes:
        values: the best values found, per fitted parameter.
        config: ``base`` with them applied.
        before: score of ``base`` itself. after: score of ``config``. (The realism distance;
            with kernel extents, see the module docstring.)
        evaluations: candidate settings rendered and measured.
    """

    values: dict[str, float]
    config: DatasetConfig
    before: float
    after: float
    evaluations: int


def calibrate(
    real: Sequence[dict],
    renderer: Renderer,
    *,
    base: DatasetConfig | None = None,
    fit: Sequence[str] = DEFAULT_FIT,
    budget: int = 400,
    seed: int = 0,
    bounds: dict[str, tuple[float, float]] | None = None,
    kernel_extents: Sequence[float] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Calibration:
    """Search the ``fit`` parameters for the config whose samples are closest to ``real``.

    Args:
        real: :func:`blurgen.realism.image_statistics` of the real photos (5 or more).
        renderer: the sharp photos' samples.
        base: the config the parameters are applied to (default: make-dataset's defaults).
        fit: names from :data:`PARAMETERS`.
        budget: candidate settings to try, at most (differential evolution, a population of
            3 per parameter; at least two generations).
        seed: the search's seed.
        bounds: ranges replacing those of :data:`PARAMETERS`.
        kernel_extents: extents of kernels estimated for real photos, to cover (see the
            module docstring); None for no such condition.
        progress: called with 1 after each candidate.
    """
    base = base if base is not None else DatasetConfig()
    names = list(fit)
    unknown = sorted(set(names) - set(PARAMETERS))
    if unknown or not names:
        raise ValueError(f"parameters to fit must be among {', '.join(PARAMETERS)}, got {names}")
    box = [(bounds or {}).get(n, (PARAMETERS[n].low, PARAMETERS[n].high)) for n in names]
    if "kernel_size" in names and base.degradation.boundary == "valid":
        # The blurred patch keeps P - K + 1 px, and the realism measure needs MIN_SIDE.
        low, high = box[names.index("kernel_size")]
        box[names.index("kernel_size")] = (low, min(high, renderer.patch - MIN_SIDE + 1))
    count = [0]
    extents = None if kernel_extents is None else np.asarray(kernel_extents, np.float64)
    spread = 1.0 if extents is None else max(float(np.std(extents, ddof=1)), 1e-6)

    def distance(config: DatasetConfig) -> float:
        count[0] += 1
        if progress is not None:
            progress(1)
        result = compare(renderer.statistics(config), real)
        if extents is None:
            return result.overall
        drawn = drawn_extents(config)
        kernel_distance = wasserstein_distance(drawn, extents) / spread
        score = (sum(result.distances.values()) + kernel_distance) / (len(result.distances) + 1)
        shortfall = coverage_shortfall(drawn, extents, SEARCH_PERCENTILES)
        return score + SHORTFALL_WEIGHT * shortfall / spread

    def objective(vector: np.ndarray) -> float:
        return distance(configure(base, dict(zip(names, map(float, vector), strict=True))))

    before = distance(base)
    population = 3
    generations = max(1, budget // (population * len(names)) - 1)
    result = differential_evolution(
        objective, box, seed=seed, popsize=population, maxiter=generations, polish=False,
        tol=0, init="latinhypercube", updating="deferred",
        integrality=[PARAMETERS[n].integer for n in names],
    )  # fmt: skip
    values = {n: (int(round(v)) if PARAMETERS[n].integer else float(v))
              for n, v in zip(names, result.x, strict=True)}  # fmt: skip
    after = float(result.fun)
    if not math.isfinite(after) or after > before:
        values, after = {}, before
    return Calibration(values, configure(base, values), before, after, count[0])
