"""``make_dataset``: plan the samples, synthesise them (in worker processes), write one HDF5 file.

Each sample is drawn, then rendered (:mod:`blurgen.sample`): sample ``i`` of a photo draws its
record from ``sample_rng(root_seed, fingerprint, i)``, the fingerprint being a hash of the
photo's bytes. A dataset therefore depends only on the sources, the config and the seed, never on
the number of workers or the order of the sources (but for the order of its rows), two datasets
of different photos never share kernels, and any pair can be rebuilt alone (:func:`regenerate`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from blurgen import methods as registry
from blurgen.backend import check_device, xp_for_device

from .h5 import (
    EARLIER_NOISE,
    RECORDED,
    PairsWriter,
    SourceSamples,
    open_pairs,
    read_record,
    sample_layouts,
)
from .io import Photo, interrupt_between_steps
from .parallel import free_shared, leave_if_importing_main, ordered_map, share_arrays, shared_arrays
from .sample import LearnedBlur, SampleConfig, Synthesiser, sample_rng, to_uint8
from .settings import Setting
from .video import KIND as VIDEO
from .video import VIDEO_SUFFIXES, Video, is_video

__all__ = ["DatasetConfig", "make_dataset", "regenerate"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
SOURCE_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
# Samples per job sent to a worker: a job's kernels are drawn as one batch, whose time loop
# costs per batch (a 64 px kernel took 1.27 ms in batches of 32, 0.26 ms in batches of 128);
# but a job's pairs stay under JOB_BYTES, a job holds the decoded photos of at most
# SOURCES_PER_JOB sources (a 12-megapixel photo is 36 MB), and small runs are cut into
# several jobs per worker.
MAX_SAMPLES_PER_JOB = 128
JOB_BYTES = 64 << 20
SOURCES_PER_JOB = 4
JOBS_PER_WORKER = 4
# How workers run (see blurgen.parallel.ordered_map).
EXECUTORS = ("threads", "processes")
# Jobs on a GPU at once from the threads of one process: one computing while another moves
# its data. Each holds a batch of crops, spectra and results in the device's memory,
# so eight threads must not all be on it (a laptop's GPU would run out).
DEVICE_JOBS = 2
_DEVICE_TURNS = threading.BoundedSemaphore(DEVICE_JOBS)
# Samples first .. stop - 1 of source j: (j, path, first, stop).
Segment = tuple[int, str, int, int]


def _methods_help() -> str:
    return "; ".join(f"{m.name}: {m.help}" for m in registry.methods() if m.source == "photo")


# The dataset's own settings (flags and config keys); the methods' and the degradation's are
# declared with them (see blurgen.presets).
DATASET_SETTINGS = (
    Setting("patch", "Side of the square patches in px.", kind="int", minimum=8, default=256),
    Setting("per_image", "Pairs drawn from each source image.", kind="int", minimum=1,
            default=8),
    Setting("kernel_size", "Side of the blur kernels in px.", kind="int", minimum=3, default=31),
    Setting("blur", f"The blur of every pair: {_methods_help()}. Replaces a --mix set at a lower "
            "level (the preset's, or --config's when given as a flag); with --mix at the same "
            "level it is an error.", kind="choice", choices=registry.drawn_names,
            default=registry.names()[0]),
    Setting("mix", "Draw each sample's blur from these weights, e.g. motion=0.5,bgan=0.5.",
            metavar="METHOD=W,..."),
    Setting("flips", "Random horizontal and vertical flips.", kind="switch", default=True),
)  # fmt: skip


@dataclass(frozen=True)
class DatasetConfig(SampleConfig):
    """What a paired dataset contains; with the sources and the seed it fixes every byte.

    The fields of :class:`~blurgen.sample.SampleConfig` (kernel size, blur methods, kernel
    model, flips, degradation), and:

    Attributes:
        patch: side P of the square patches in pixels (>= 8).
        per_image: samples drawn from each source image (>= 1).

    The degradation's boundary must be ``"valid"``, so that every blurred pixel comes from
    real image content.
    """

    patch: int = 256
    per_image: int = 8

    def __post_init__(self) -> None:
        if int(self.patch) != self.patch or self.patch < 8:
            raise ValueError(f"patch must be an integer >= 8 px, got {self.patch!r}")
        if int(self.per_image) != self.per_image or self.per_image < 1:
            raise ValueError(f"per_image must be an integer >= 1, got {self.per_image!r}")
        super().__post_init__()
        if self.degradation.boundary != "valid":
            raise ValueError(
                f"datasets need boundary 'valid' (got {self.degradation.boundary!r}): other "
                "boundaries invent content at the patch edges"
            )

    @property
    def crop(self) -> int:
        """Side of the sharp crop that one sample needs: ``P + K - 1``."""
        return self.patch + self.kernel_size - 1


def bundled_images() -> list[Path]:
    """The CC0 / public-domain sample photos shipped with blurgen."""
    folder = Path(__file__).resolve().parent / "data"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def expand_sources(items: Iterable[str | os.PathLike]) -> list[Path]:
    """Image and video paths from files, folders (recursive, by suffix: images and
    :data:`~blurgen.video.VIDEO_SUFFIXES`) and ``.txt`` lists of paths.

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
            sources += sorted(p for p in found if p.suffix.lower() in SOURCE_SUFFIXES)
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
    segments: Sequence[Segment],
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
        learned: the learned blur, for methods that need one.

    Returns:
        One :class:`SourceSamples` per segment, with ``skipped`` set for unusable images.
    """
    results, photos, rngs = [], [], []
    for j, path, first, stop in segments:
        try:
            photo = open_source(path)
        except (OSError, ValueError) as exc:
            results.append(SourceSamples.skip(j, first, stop, str(exc)))
            continue
        reason = unusable(path, photo, config)
        if reason:
            results.append(SourceSamples.skip(j, first, stop, reason))
            continue
        results.append(SourceSamples(j, first, stop, fingerprint=photo.fingerprint))
        photos += [photo] * (stop - first)
        rngs += [sample_rng(root_seed, photo.fingerprint, i) for i in range(first, stop)]
    synthesiser = Synthesiser(config, learned, device, lambda: _device_turn(device))
    # Photos in one batch; each video on its own, as one may prove unusable while its windows
    # are read (none slow enough for --max-motion), which skips it alone.
    spans, row = {}, 0
    for k, result in enumerate(results):
        if not result.skipped:
            spans[k] = range(row, row + result.stop - result.first)
            row = spans[k].stop
    videos = {k for k, span in spans.items() if isinstance(photos[span.start], Video)}
    batches = [[k for k in spans if k not in videos], *([k] for k in sorted(videos))]
    for batch in batches:
        rows = [r for k in batch for r in spans[k]]
        if not rows:
            continue
        try:
            pairs = synthesiser.make([photos[r] for r in rows], [rngs[r] for r in rows],
                                     config.crop)  # fmt: skip
        except ValueError as exc:
            if batch[0] not in videos:
                raise
            k = batch[0]
            results[k] = SourceSamples.skip(results[k].source, results[k].first, results[k].stop,
                                            str(exc))  # fmt: skip
            continue
        row = 0
        for k in batch:
            part = slice(row, row + len(spans[k]))
            results[k] = SourceSamples.of(results[k].source, results[k].first,
                                          results[k].fingerprint, pairs, part, config)  # fmt: skip
            row = part.stop
    return results


def open_source(path: str | os.PathLike) -> Photo | Video:
    """A source, as a :class:`~blurgen.video.Video` (a video file or a folder of frames) or a
    :class:`~blurgen.io.Photo`.

    Raises:
        FileNotFoundError, ValueError: as their ``open`` (the message names the path).
    """
    return Video.open(path) if is_video(path) else Photo.open(path)


def with_sources(config: DatasetConfig, sources: Sequence[str | os.PathLike]) -> DatasetConfig:
    """``config`` ready for ``sources``: with videos among them, the section of the method
    that reads videos set (its defaults, unless set already)."""
    if not any(is_video(path) for path in sources):
        return config
    method = registry.for_source(VIDEO)
    return replace(config, **{method.section: method.used_section(
        getattr(config, method.section))})  # fmt: skip


def unusable(path: str, source: Photo | Video, config: DatasetConfig) -> str | None:
    """Why a source yields no samples under ``config`` (too small, or a video too short for
    its windows), or None."""
    if min(source.size) < config.crop:
        return too_small(path, source, config)
    frames = getattr(source, "frames", None)
    if frames is not None and config.video is not None and frames < config.video.frames[1]:
        return (f"'{path}': too short ({frames} frames); windows of up to "
                f"{config.video.frames[1]} frames (--frames) need as many")  # fmt: skip
    return None


def too_small(path: str, photo: Photo | Video, config: DatasetConfig) -> str:
    """Why a photo smaller than a crop is skipped, in the terms of the blur in use (a method
    with a kernel, if any, says why)."""
    (height, width) = photo.size
    if getattr(photo, "frames", None) is not None:
        return (f"'{path}': frames too small ({height}x{width}); patches of {config.patch} px "
                f"{registry.for_source(VIDEO).crop_reason(config)}")  # fmt: skip
    used = config.blur_methods()
    method = next((m for m in used if m.has_kernel), used[0])
    return (f"'{path}': too small ({height}x{width}); patches of {config.patch} px "
            f"{method.crop_reason(config)}")  # fmt: skip


def _device_turn(device: str) -> contextlib.AbstractContextManager:
    """Held while a job works on a GPU (at most :data:`DEVICE_JOBS` at once), not while it
    opens photos, cuts crops, adds noise or compresses on the host."""
    return _DEVICE_TURNS if device != "cpu" else contextlib.nullcontext()


def synthesise_shared(*job: Any) -> tuple[list[SourceSamples], str | None]:
    """:func:`synthesise` in a worker process: its pairs handed to the parent in shared
    memory (:func:`blurgen.parallel.share_arrays`); returns the results and the block."""
    results = synthesise(*job)
    return results, share_arrays([result.arrays for result in results])


def _free_results(output: tuple[list[SourceSamples], str | None]) -> None:
    free_shared(output[1])


def samples_per_job(config: DatasetConfig, samples: int, workers: int) -> int:
    """How many samples a job takes: up to :data:`MAX_SAMPLES_PER_JOB`, within
    :data:`JOB_BYTES` of pairs and the samples of :data:`SOURCES_PER_JOB` sources, and with
    several workers at most a :data:`JOBS_PER_WORKER`-th of a worker's share of ``samples``.
    The dataset does not depend on it."""
    pair = pair_bytes(config)
    share = -(-samples // (JOBS_PER_WORKER * workers)) if workers > 1 else samples
    sources = SOURCES_PER_JOB * config.per_image
    return max(1, min(MAX_SAMPLES_PER_JOB, JOB_BYTES // pair, sources, share))


def plan_jobs(
    paths: Sequence[str], per_image: int, size: int, start: tuple[int, int] = (0, 0)
) -> list[list[Segment]]:
    """Cut the samples from ``start`` on into jobs of ``size`` samples (the last may be
    smaller).

    Args:
        paths: the sources.
        per_image: samples per source.
        size: samples per job.
        start: ``(source, sample)`` to begin at (after a resume).

    Returns:
        Jobs, each a list of ``(j, path, first, stop)`` segments, in dataset order.
    """
    source, sample = start
    segments = [(j, paths[j], sample if j == source else 0, per_image)
                for j in range(source, len(paths))]  # fmt: skip
    return split_segments(segments, size)


def split_segments(segments: Sequence[Segment], size: int) -> list[list[Segment]]:
    """Consecutive ``(j, path, first, stop)`` segments cut into groups of ``size`` samples
    (the last may be smaller), a segment split where a group ends."""
    groups: list[list[Segment]] = []
    group: list[Segment] = []
    filled = 0
    for j, path, first, stop in segments:
        while first < stop:
            end = min(stop, first + size - filled)
            group.append((j, path, first, end))
            filled += end - first
            first = end
            if filled == size:
                groups.append(group)
                group, filled = [], 0
    if group:
        groups.append(group)
    return groups


def make_dataset(
    sources: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    config: DatasetConfig,
    seed: int = 0,
    *,
    workers: int = 1,
    executor: str = "threads",
    device: str = "cpu",
    learned: LearnedBlur | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write a ``blurgen-pairs/4`` dataset, resuming an interrupted run of the same job.

    Args:
        sources: image paths (see :func:`expand_sources`); their order fixes source indices.
        output: the ``.h5`` file; written as ``<output>.partial`` and renamed when complete.
        config: patches, kernels and degradation.
        seed: root seed.
        workers: threads or processes synthesising samples; the file does not depend on it.
        executor: ``"threads"`` (of this process: no start-up, no copies of the pairs) or
            ``"processes"`` (spawned: start-up, and each job's pairs copied into shared
            memory, but they run Python at the same time, which may pay on many cores); see
            :data:`EXECUTORS`. With ``device="cuda"``, threads share the GPU, and processes
            each hold a CUDA context of their own and one job's batch on it at a time.
        device: ``"cpu"`` or ``"cuda"`` for kernels and the forward model. On CUDA, FFT
            rounding differs from the CPU's, so a few 8-bit values may differ by one.
        learned: the learned blur, for methods that need one (``blurgen.bgan.infer.BganBlur``;
            it must pickle for worker processes, and be safe to call from several threads).
        overwrite: start afresh, ignoring a partial file, and replace an existing output.
        strict: stop with ValueError at the first unusable image instead of skipping it, and
            remove the partial file this run began (a later run must not take a stopped job
            for progress; one an interrupted run left, resumed here, stays).
        progress: called with the number of sources finished, as they finish.

    Returns:
        Summary: ``pairs`` (in the file), ``kept`` (those of them an interrupted run had
        written, resumed here), ``skipped`` (list of ``{"path", "reason"}``), ``sources``,
        ``path``.

    Raises:
        ValueError: every source was skipped, or, with ``strict``, one was (either way nothing
            is left behind).
        OSError: the disk is full (the partial file stays, to be resumed once there is space),
            or the output cannot be written.
        RuntimeError: worker processes could not start: with ``workers > 1`` a script must call
            this under ``if __name__ == "__main__":``.
    """
    leave_if_importing_main()
    paths = [str(p) for p in sources]
    config = with_sources(config, paths)
    device = check_device(device)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    check_learned(config, learned)
    with PairsWriter(output, paths, config, seed, overwrite=overwrite) as writer:
        kept = writer.pairs
        if progress is not None and writer.next_source:
            progress(writer.next_source)
        start = (writer.next_source, writer.next_sample)
        remaining = (len(paths) - start[0]) * config.per_image - start[1]
        # On CUDA a job is one batch on the device, whose rounding may depend on its size: so
        # jobs are cut as for one worker, whatever their number.
        size = samples_per_job(config, remaining, workers if device == "cpu" else 1)
        jobs = [
            (job, config, seed, device, learned)
            for job in plan_jobs(paths, config.per_image, size, start)
        ]
        workers = workers if len(jobs) > 1 else 1
        # On CUDA, threads share the GPU (DEVICE_JOBS of them on it at a time) while the
        # others open photos and cut crops; but a pair's Python holds the interpreter's lock
        # long enough to bound them at a few thousand pairs a second, which processes are not.
        shared = executor == "processes" and workers > 1
        outputs = ordered_map(
            synthesise_shared if shared else synthesise, jobs, workers, threads=not shared,
            discard=_free_results if shared else None,
        )  # fmt: skip
        try:
            # closing: on an error the workers stop here, before the writer closes the file.
            with interrupt_between_steps() as check_interrupt, contextlib.closing(outputs):
                for made in outputs:
                    results, block = made if shared else (made, None)
                    done = writer.next_source
                    with shared_arrays([r.arrays for r in results], block):
                        bad = [r.skipped for r in results if r.skipped]
                        if strict and bad:
                            # Unlike Ctrl-C or a crash, a stop on bad input is no run to resume;
                            # an interrupted run's file it took up is that run's, and kept.
                            if not kept:
                                writer.discard()
                            raise ValueError(f"{bad[0]} (stopped: --strict)")
                        writer.write(results)
                    if progress is not None and writer.next_source > done:
                        progress(writer.next_source - done)
                    check_interrupt()
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"{writer.next_source} of {len(paths)} sources are in '{writer.temporary}'; "
                "run the same command again to resume"
            ) from None
        if not writer.pairs:
            writer.discard()
            first = writer.skipped[0]["reason"] if writer.skipped else "no samples"
            raise ValueError(
                f"no pairs written: all {len(paths)} sources were skipped (first: {first})"
            )
        writer.finish()
    return {"path": str(output), "pairs": writer.pairs, "kept": kept, "skipped": writer.skipped,
            "sources": len(paths)}  # fmt: skip


def regenerate(
    path: str | os.PathLike,
    index: int,
    *,
    learned: LearnedBlur | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild pair ``index`` of a ``blurgen-pairs/2``, ``/3`` or ``/4`` file from its source
    and record.

    Args:
        path: the pairs file.
        index: the pair's row.
        learned: the learned blur, for pairs blurred by a BGAN (``method`` 2).
        device: ``"cpu"`` or ``"cuda"`` (CUDA's FFT rounding may move a few values by one).

    Returns:
        ``(sharp, blurred)``: (P, P, 3) uint8 RGB, equal to the stored pair when made on the
        same device.

    Raises:
        FileNotFoundError: the source image is gone. ValueError: not a pairs file with
            records, no such row, the source's bytes have changed since the file was made, or
            a noisy pair of a file before ``blurgen-pairs/4`` that does not replay, as its
            noise may be the earlier sampler's (checked on the CPU only).
    """
    with open_pairs(path) as f:
        schema = f.attrs["schema"]
        if schema not in RECORDED:
            raise ValueError(f"'{path}' is a {schema} file: it holds no sample records")
        if not 0 <= index < len(f["sharp"]):
            raise ValueError(f"'{path}' has no pair {index} (it holds {len(f['sharp'])})")
        record = read_record(f, index)
        # Noise drawn before version 4 may be the earlier sampler's, which no longer exists.
        stored = f["blurred"][index] if schema in EARLIER_NOISE and record.params.noisy else None
        kernel = f["kernel"][index]
        source = int(f["source"][index])
        source_path = f["sources"].asstr()[source]
        fingerprint = f["fingerprints"].asstr()[source]
        config = DatasetConfig.from_dict(json.loads(f.attrs["config"]))
    photo = open_source(source_path)
    if photo.fingerprint != fingerprint:
        raise ValueError(f"'{source_path}' has changed since '{path}' was made")
    device = check_device(device)
    synthesiser = Synthesiser(config, learned, device)
    if isinstance(photo, Video):  # rendered from its window of frames, not one crop
        sharp, blurred = synthesiser.replay(photo, kernel, record, config.crop)
    else:
        xp = xp_for_device(device)
        crop = xp.asarray(photo.crop(*record.origin, config.crop, config.crop))
        sharp, blurred = synthesiser.render(crop, xp.asarray(kernel), record)
        sharp, blurred = to_uint8(sharp), to_uint8(blurred)
    if stored is not None and device == "cpu" and not np.array_equal(blurred, stored):
        raise ValueError(f"pair {index} of '{path}' ({schema}) does not replay: files before "
                         "blurgen-pairs/4 may hold noise of an earlier sampler, which this "
                         "version does not have (a pair made on a GPU may also differ by its "
                         "rounding)")  # fmt: skip
    return sharp, blurred


def check_learned(config: SampleConfig, learned: LearnedBlur | None) -> None:
    """Raise ValueError if ``config`` draws a method that needs a learned blur and there is
    none."""
    needs = [method.name for method in config.blur_methods() if method.learned]
    if needs and learned is None:
        raise ValueError(f"this config blurs with {needs[0]}, a learned blur: pass its generator "
                         "as learned=")  # fmt: skip


def pair_bytes(config: DatasetConfig) -> int:
    """Bytes of a pair's row in the file: images, kernel, record and the methods' columns,
    uncompressed."""
    return sum(column.row_bytes for column in sample_layouts(config).values())


def plan(sources: Sequence[str | os.PathLike], config: DatasetConfig) -> dict:
    """What a run would do, without reading pixels: sources, samples and bytes at most."""
    pairs = len(sources) * config.per_image
    config = with_sources(config, sources)
    return {"sources": len(sources), "pairs": pairs, "bytes": pairs * pair_bytes(config),
            "config": json.loads(json.dumps(config.to_dict()))}  # fmt: skip
