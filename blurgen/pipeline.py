"""``make_dataset``: plan the samples, synthesise them (in worker processes), write one HDF5 file.

Sample ``i`` of source ``j`` draws everything from ``numpy.random.default_rng([root_seed, j, i])``,
in this order: its blur method (one uniform, only when mixing methods), its kernel (trajectory
or line) or a learned blur's noise vector (4 normals), the crop's top-left corner, two flips,
then the degradation's parameters and noise (kernel methods only). A dataset therefore depends
only on the sources, the config and the seed, never on the number of workers, and any sample can
be regenerated alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blurgen.backend import check_device, get_xp, to_numpy
from blurgen.kernels import MotionModel, linear_kernels_from, motion_kernels_from
from blurgen.kernels.motion import check_size

from .degradation import Degradation
from .forward import valid_offset
from .h5 import PairsWriter, SourceSamples
from .io import interrupt_between_steps, read_image
from .parallel import ordered_map

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
BLURS = ("motion", "linear", "bgan")
KERNEL_BLURS = ("motion", "linear")
# A learned blur: (N, P, P, 3) float patches in [0, 1] and (N, 4) noise vectors -> blurred.
LearnedBlur = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Samples per job sent to a worker: enough kernels to batch, few enough that memory stays
# small and 2 workers have several jobs each on small runs.
SAMPLES_PER_JOB = 32


@dataclass(frozen=True)
class DatasetConfig:
    """What a paired dataset contains; with the sources and the seed it fixes every byte.

    Attributes:
        patch: side P of the square patches in pixels (>= 8).
        per_image: samples drawn from each source image (>= 1).
        kernel_size: side K of the blur kernels in pixels (>= 3).
        blur: ``"motion"`` (camera-shake kernels), ``"linear"`` (straight streaks) or
            ``"bgan"`` (a trained blur generator: no kernel, no added noise).
        mix: ``(method, weight)`` pairs; when given, each sample draws its method with these
            probabilities (normalised) instead of using ``blur``.
        bgan: the BGAN checkpoint used for ``"bgan"`` samples (recorded; the generator itself
            is passed to :func:`make_dataset`).
        flips: random horizontal and vertical flips.
        motion: the camera-shake model of ``"motion"`` samples (exposure fractions, path
            length, ...); its path length defaults to 60/64 of ``kernel_size``.
        degradation: the forward model; its boundary must be ``"valid"`` so that every blurred
            pixel comes from real image content.
    """

    patch: int = 256
    per_image: int = 8
    kernel_size: int = 31
    blur: str = "motion"
    mix: tuple[tuple[str, float], ...] = ()
    bgan: str | None = None
    flips: bool = True
    motion: MotionModel = field(default_factory=MotionModel)
    degradation: Degradation = field(default_factory=Degradation)

    def __post_init__(self) -> None:
        if int(self.patch) != self.patch or self.patch < 8:
            raise ValueError(f"patch must be an integer >= 8 px, got {self.patch!r}")
        if int(self.per_image) != self.per_image or self.per_image < 1:
            raise ValueError(f"per_image must be an integer >= 1, got {self.per_image!r}")
        check_size(self.kernel_size)
        if self.blur not in BLURS:
            raise ValueError(f"blur must be one of {', '.join(BLURS)}, got {self.blur!r}")
        mix = tuple((str(m), float(w)) for m, w in self.mix)
        object.__setattr__(self, "mix", mix)
        for method, weight in mix:
            if method not in BLURS or not weight >= 0:
                raise ValueError(f"mix entries are METHOD=WEIGHT with a method of {BLURS}, "
                                 f"got {method}={weight}")  # fmt: skip
        if mix and sum(w for _, w in mix) <= 0:
            raise ValueError(f"mix weights must not all be zero, got {mix!r}")
        if "bgan" in self.methods() and not self.bgan:
            raise ValueError("samples blurred by a BGAN need its checkpoint (--bgan CKPT)")
        if self.degradation.boundary != "valid":
            raise ValueError(
                f"datasets need boundary 'valid' (got {self.degradation.boundary!r}): other "
                "boundaries invent content at the patch edges"
            )

    def methods(self) -> list[str]:
        """The blur methods samples may use."""
        return [m for m, w in self.mix if w > 0] if self.mix else [self.blur]

    def draw_method(self, rng: np.random.Generator) -> str:
        """A sample's method: ``blur``, or one drawn from ``mix`` (one uniform)."""
        if not self.mix:
            return self.blur
        weights = np.array([w for _, w in self.mix])
        u = rng.random() * weights.sum()
        return self.mix[
            min(int(np.searchsorted(np.cumsum(weights), u, side="right")), len(weights) - 1)
        ][0]

    @property
    def crop(self) -> int:
        """Side of the sharp crop that one sample needs: ``P + K - 1``."""
        return self.patch + self.kernel_size - 1

    def to_dict(self) -> dict:
        """JSON-serialisable config, the kernel model resolved."""
        values = asdict(self)
        values["mix"] = [list(pair) for pair in self.mix]
        if "motion" in self.methods():
            values["motion"] = self.motion.resolved(self.kernel_size)
        else:
            del values["motion"]
        return values


def bundled_images() -> list[Path]:
    """The CC0 / public-domain sample photos shipped with blurgen."""
    folder = Path(__file__).resolve().parent / "data"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def expand_sources(items: Iterable[str | os.PathLike]) -> list[Path]:
    """Image paths from files, folders (recursive, by suffix) and ``.txt`` lists of paths.

    Paths in a list are relative to the list's folder unless absolute; blank lines and lines
    starting with ``#`` are ignored. Folders are expanded in sorted order.

    Raises:
        FileNotFoundError: an item does not exist (the message names it).
    """
    sources: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            sources += sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file() and path.suffix.lower() == ".txt":
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = Path(line)
                    sources.append(listed if listed.is_absolute() else path.parent / listed)
        elif path.is_file():
            sources.append(path)
        else:
            raise FileNotFoundError(f"source '{path}' does not exist")
    return sources


def synthesise(
    segments: Sequence[tuple[int, str, int, int]],
    config: DatasetConfig,
    root_seed: int,
    device: str = "cpu",
    learned: LearnedBlur | None = None,
) -> list[SourceSamples]:
    """The samples of some slices of sources (one worker's job), in order.

    Args:
        segments: ``(j, path, first, stop)``: samples ``first .. stop - 1`` of source ``j``.
        config: the dataset config.
        root_seed: the dataset's seed.
        device: where kernels and the forward model run (randomness stays on the host).
        learned: the learned blur, for ``"bgan"`` samples.

    Returns:
        One :class:`SourceSamples` per segment, with ``skipped`` set for unusable images.
    """
    entries: list[tuple[int, int, int, np.ndarray | None, str]] = []
    for j, path, first, stop in segments:
        try:
            image = read_image(path)
        except (OSError, ValueError) as exc:
            entries.append((j, first, stop, None, str(exc)))
            continue
        height, width = image.shape[:2]
        if min(height, width) < config.crop:
            reason = (f"'{path}': too small ({height}x{width}); patches of {config.patch} px "
                      f"with {config.kernel_size} px kernels need {config.crop} px")  # fmt: skip
            entries.append((j, first, stop, None, reason))
            continue
        entries.append((j, first, stop, image, ""))
    rngs = [
        np.random.default_rng([root_seed, j, i])
        for j, first, stop, image, _ in entries
        if image is not None
        for i in range(first, stop)
    ]
    methods = [config.draw_method(rng) for rng in rngs]
    kernels = _kernels(rngs, methods, config, device)
    offset = valid_offset(config.kernel_size)
    results, row = [], 0
    for j, first, stop, image, reason in entries:
        if image is None:
            results.append(SourceSamples.skip(j, first, stop, reason))
            continue
        rows = range(row, row + stop - first)
        samples = [
            _one_sample(image, kernels[r], methods[r], rngs[r], config, offset, learned)
            for r in rows
        ]
        empty = np.zeros((config.kernel_size,) * 2, np.float32)
        chosen = np.stack(
            [to_numpy(kernels[r]) if methods[r] in KERNEL_BLURS else empty for r in rows]
        )
        results.append(SourceSamples.of(j, first, samples, chosen, methods[rows.start : rows.stop]))
        row = rows.stop
    return results


def plan_jobs(
    paths: Sequence[str], per_image: int, start: tuple[int, int] = (0, 0)
) -> list[list[tuple[int, str, int, int]]]:
    """Cut the remaining samples into jobs of about :data:`SAMPLES_PER_JOB` samples.

    Args:
        paths: the sources.
        per_image: samples per source.
        start: ``(source, sample)`` to begin at (after a resume).

    Returns:
        Jobs, each a list of ``(j, path, first, stop)`` segments, in dataset order.
    """
    jobs, job, size = [], [], 0
    source, sample = start
    for j in range(source, len(paths)):
        first = sample if j == source else 0
        while first < per_image:
            stop = min(per_image, first + SAMPLES_PER_JOB - size)
            job.append((j, paths[j], first, stop))
            size += stop - first
            first = stop
            if size == SAMPLES_PER_JOB:
                jobs.append(job)
                job, size = [], 0
    if job:
        jobs.append(job)
    return jobs


def _kernels(
    rngs: list[np.random.Generator], methods: list[str], config: DatasetConfig, device: str
) -> list[Any]:
    """Per sample: its kernel (kernel methods, drawn in batches) or its noise vector (BGAN)."""
    out: list[Any] = [None] * len(rngs)
    for method in set(methods):
        chosen = [k for k, m in enumerate(methods) if m == method]
        group = [rngs[k] for k in chosen]
        if method == "motion":
            drawn = motion_kernels_from(group, config.kernel_size, config.motion, device=device)
        elif method == "linear":
            drawn = linear_kernels_from(group, config.kernel_size, device=device)
        else:
            drawn = [rng.standard_normal(4) for rng in group]
        for k, item in zip(chosen, drawn, strict=True):
            out[k] = item
    return out


def _one_sample(
    image: np.ndarray,
    kernel: Any,
    method: str,
    rng: np.random.Generator,
    config: DatasetConfig,
    offset: int,
    learned: LearnedBlur | None,
) -> tuple:
    height, width = image.shape[:2]
    y = int(rng.integers(0, height - config.crop + 1))
    x = int(rng.integers(0, width - config.crop + 1))
    crop = image[y : y + config.crop, x : x + config.crop]
    flip = rng.random(2)
    if config.flips and flip[0] < 0.5:
        crop = crop[:, ::-1]
    if config.flips and flip[1] < 0.5:
        crop = crop[::-1]
    crop = np.ascontiguousarray(crop)
    sharp = crop[offset : offset + config.patch, offset : offset + config.patch]
    if method not in KERNEL_BLURS:
        blurred = learned(sharp[None], np.asarray(kernel)[None])[0]
        return _to_uint8(sharp), _to_uint8(blurred), (y, x), (0.0, 0.0)
    blurred, params = config.degradation.apply(get_xp(kernel).asarray(crop), kernel, rng)
    return _to_uint8(sharp), _to_uint8(to_numpy(blurred)), (y, x), (params.shot, params.read)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def make_dataset(
    sources: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    config: DatasetConfig,
    seed: int = 0,
    *,
    workers: int = 1,
    device: str = "cpu",
    learned: LearnedBlur | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write a ``blurgen-pairs/1`` dataset, resuming an interrupted run of the same job.

    Args:
        sources: image paths (see :func:`expand_sources`); their order fixes source indices.
        output: the ``.h5`` file; written as ``<output>.partial`` and renamed when complete.
        config: patches, kernels and degradation.
        seed: root seed.
        workers: processes synthesising samples on the CPU; the file does not depend on it.
        device: ``"cpu"`` or ``"cuda"`` for kernels and the forward model. On CUDA, FFT
            rounding differs from the CPU's, so a few 8-bit values may differ by one.
        learned: the learned blur for ``"bgan"`` samples (e.g. ``blurgen.bgan.infer.BganBlur``;
            it must pickle for worker processes).
        overwrite: start afresh, ignoring a partial file, and replace an existing output.
        strict: stop with ValueError at the first unusable image instead of skipping it (the
            partial file keeps what was written before it).
        progress: called with the number of sources finished, as they finish.

    Returns:
        Summary: ``pairs``, ``skipped`` (list of ``{"path", "reason"}``), ``sources``, ``path``.
    """
    paths = [str(p) for p in sources]
    device = check_device(device)
    if "bgan" in config.methods() and learned is None:
        raise ValueError("this config blurs with a BGAN: pass its generator as learned=")
    with PairsWriter(output, paths, config, seed, overwrite=overwrite) as writer:
        if progress is not None and writer.next_source:
            progress(writer.next_source)
        start = (writer.next_source, writer.next_sample)
        jobs = [
            (job, config, seed, device, learned)
            for job in plan_jobs(paths, config.per_image, start)
        ]
        # One GPU is used from this process; worker processes are for the CPU.
        workers = workers if device == "cpu" and len(jobs) > 1 else 1
        try:
            with interrupt_between_steps() as check_interrupt:
                for results in ordered_map(synthesise, jobs, workers):
                    bad = [r.skipped for r in results if r.skipped]
                    if strict and bad:
                        raise ValueError(f"{bad[0]} (stopped: --strict)")
                    done = writer.next_source
                    writer.write(results)
                    if progress is not None and writer.next_source > done:
                        progress(writer.next_source - done)
                    check_interrupt()
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"{writer.next_source} of {len(paths)} sources are in '{writer.temporary}'; "
                "run the same command again to resume"
            ) from None
        writer.finish()
    return {"path": str(output), "pairs": writer.pairs, "skipped": writer.skipped,
            "sources": len(paths)}  # fmt: skip


def plan(sources: Sequence[str | os.PathLike], config: DatasetConfig) -> dict:
    """What a run would do, without reading pixels: sources, samples and bytes at most."""
    pairs = len(sources) * config.per_image
    per_pair = 2 * config.patch**2 * 3 + 4 * config.kernel_size**2 + 8 + 1 + 4 + 8 + 8
    return {"sources": len(sources), "pairs": pairs, "bytes": pairs * per_pair,
            "config": json.loads(json.dumps(config.to_dict()))}  # fmt: skip
