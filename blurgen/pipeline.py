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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blurgen.backend import check_device, to_numpy, xp_for_device

from .color import as_unit_float
from .degradation import Degradation
from .h5 import (
    SCHEMA,
    PairsWriter,
    SourceSamples,
    camera_columns,
    deflate_rows,
    open_pairs,
    read_record,
)
from .io import Photo, interrupt_between_steps
from .kernels import MotionModel
from .kernels.camera import CameraModel
from .parallel import free_shared, leave_if_importing_main, ordered_map, share_arrays, shared_arrays
from .sample import (
    BLURS,
    FIELD_GRID,
    KERNEL_BLURS,
    LEARNED_BATCH_PIXELS,
    LearnedBlur,
    SampleConfig,
    SampleRecord,
    camera_fields,
    draw_samples,
    oriented,
    render_learned,
    render_sample,
    sample_rng,
    to_uint8,
)

__all__ = ["BLURS", "KERNEL_BLURS", "DatasetConfig", "make_dataset", "regenerate"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
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
# method, source, index, origin, flips, boost, noise, jpeg_quality, noise_seed
PER_PAIR_RECORD_BYTES = 1 + 4 + 4 + 8 + 2 + 8 + 16 + 1 + 8


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

    @classmethod
    def from_dict(cls, values: dict) -> DatasetConfig:
        """The inverse of :meth:`to_dict` (as files record it, and ``--dry-run --json``
        prints it)."""
        values = dict(values)
        motion = values.pop("motion", None)
        camera = CameraModel(**(values.pop("camera", None) or {}))  # it makes lists tuples
        mix = tuple(tuple(pair) for pair in values.pop("mix", ()))
        degradation = Degradation.from_dict(values.pop("degradation"))
        model = MotionModel(**motion) if motion is not None else MotionModel()
        return cls(**values, motion=model, camera=camera, mix=mix, degradation=degradation)

    @property
    def crop(self) -> int:
        """Side of the sharp crop that one sample needs: ``P + K - 1``."""
        return self.patch + self.kernel_size - 1


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
        learned: the learned blur, for ``"bgan"`` samples.

    Returns:
        One :class:`SourceSamples` per segment, with ``skipped`` set for unusable images.
    """
    results, photos, rngs = [], [], []
    for j, path, first, stop in segments:
        try:
            photo = Photo.open(path)
        except (OSError, ValueError) as exc:
            results.append(SourceSamples.skip(j, first, stop, str(exc)))
            continue
        height, width = photo.size
        if min(height, width) < config.crop:
            results.append(SourceSamples.skip(j, first, stop, _too_small(path, photo, config)))
            continue
        results.append(SourceSamples(j, first, stop, fingerprint=photo.fingerprint))
        photos += [photo] * (stop - first)
        rngs += [sample_rng(root_seed, photo.fingerprint, i) for i in range(first, stop)]
    with _device_turn(device):
        records, kernels = draw_samples(
            rngs, [photo.size for photo in photos], config, config.crop, device=device
        )
    sharp, blurred = _render_job(photos, records, kernels, config, device, learned)
    kernels = to_numpy(kernels)  # from a GPU in one transfer, not one for each source
    camera = {}
    if "camera" in config.methods():
        fields = camera_fields(records, (config.crop, config.crop), config)
        camera = camera_columns(records, fields, config.camera.steps)
    row = 0
    for k, result in enumerate(results):
        if result.skipped:
            continue
        rows = slice(row, row + result.stop - result.first)
        results[k] = SourceSamples.of(
            result.source, result.first, result.fingerprint, sharp[rows], blurred[rows],
            kernels[rows], records[rows],
        )  # fmt: skip
        results[k].arrays.update({name: column[rows] for name, column in camera.items()})
        results[k].arrays = deflate_rows(results[k].arrays)
        row = rows.stop
    return results


def _too_small(path: str, photo: Photo, config: DatasetConfig) -> str:
    """Why a photo smaller than a crop is skipped, in the terms of the blur in use."""
    (height, width), k = photo.size, config.kernel_size
    methods = config.methods()
    if any(method in KERNEL_BLURS for method in methods):
        need = f"with {k} px kernels need {config.crop} px"
    elif "camera" in methods:
        need = f"with camera shake within {k} px (--kernel-size) need {config.crop} px"
    else:
        # A learned blur reads the patch alone, but its samples are cut as every method's are:
        # the patch with a border of K - 1 px.
        need = (f"need {config.crop} px: each is the centre of a crop with a {k - 1} px border "
                f"from --kernel-size {k}, which the BGAN does not use (a smaller --kernel-size "
                "takes smaller photos)")  # fmt: skip
    return f"'{path}': too small ({height}x{width}); patches of {config.patch} px {need}"


def _device_turn(device: str) -> contextlib.AbstractContextManager:
    """Held while a job works on a GPU (at most :data:`DEVICE_JOBS` at once), not while it
    opens photos, cuts crops, adds noise or compresses on the host."""
    return _DEVICE_TURNS if device != "cpu" else contextlib.nullcontext()


def _render_job(
    photos: list[Photo], records: list[SampleRecord], kernels: Any, config: DatasetConfig,
    device: str, learned: LearnedBlur | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A job's (N, P, P, 3) uint8 sharp and blurred images, sample ``r`` cut from
    ``photos[r]`` as ``records[r]`` says and blurred with ``kernels[r]`` on ``device``."""
    xp = xp_for_device(device)
    turn = _device_turn(device)
    # The pairs go straight into the job's arrays (no list of copies to stack).
    sharp = np.empty((len(records), config.patch, config.patch, 3), np.uint8)
    blurred = np.empty_like(sharp)
    learned_sharp, on_device = {}, {}
    for r, record in enumerate(records):
        # In the file's dtype: 8-bit crops are decoded to linear light through a table.
        crop = photos[r].region(*record.origin, config.crop, config.crop)
        if record.method in KERNEL_BLURS and _in_batches(device, crop, config):
            # Rendered below, the job's 8-bit kernel-blur samples in one batch on the device.
            on_device[r], sharp[r] = oriented(crop, config.kernel_size, record, config.degradation)
            continue
        with turn:
            crop = xp.asarray(crop)
            if record.method != "bgan":
                pair = render_sample(crop, kernels[r], record, config.degradation, dtype=np.uint8)
                sharp[r], blurred[r] = to_uint8(pair[0]), to_uint8(pair[1])
            else:  # blurred below, the job's learned samples in batches
                centre = oriented(crop, config.kernel_size, record, config.degradation)[1]
                learned_sharp[r] = xp.ascontiguousarray(centre)  # as float once its turn comes
                sharp[r] = to_uint8(centre)
    if on_device:
        batch = list(on_device)
        crops, params = np.stack(list(on_device.values())), [records[r].params for r in batch]
        blurred[batch] = config.degradation.render_batch(crops, kernels[batch], params, turn)
    batch = list(learned_sharp)
    step = max(1, LEARNED_BATCH_PIXELS // config.patch**2)
    for rows in (batch[k : k + step] for k in range(0, len(batch), step)):
        with turn:
            images = render_learned([as_unit_float(learned_sharp.pop(r)) for r in rows],
                                    [records[r] for r in rows], learned)  # fmt: skip
            for r, image in zip(rows, images, strict=True):
                blurred[r] = to_uint8(image)
    return sharp, blurred


def synthesise_shared(*job: Any) -> tuple[list[SourceSamples], str | None]:
    """:func:`synthesise` in a worker process: its pairs handed to the parent in shared
    memory (:func:`blurgen.parallel.share_arrays`); returns the results and the block."""
    results = synthesise(*job)
    return results, share_arrays([result.arrays for result in results])


def _free_results(output: tuple[list[SourceSamples], str | None]) -> None:
    free_shared(output[1])


def _in_batches(device: str, crop: np.ndarray, config: DatasetConfig) -> bool:
    """Whether a kernel-blur sample is rendered with the rest of its job in one batch
    (:meth:`Degradation.render_batch`): on a GPU, where a pair at a time would spend its time
    launching kernels and moving data, for 8-bit crops and the ``"valid"`` boundary. On the
    CPU one at a time is faster (measured: 2.1 ms a pair against 2.9-3.6 ms in batches of
    4-16 of 319 px by 64 px kernels)."""
    return device != "cpu" and crop.dtype == np.uint8 and config.degradation.boundary == "valid"


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
    """Write a ``blurgen-pairs/2`` dataset, resuming an interrupted run of the same job.

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
        learned: the learned blur for ``"bgan"`` samples (e.g. ``blurgen.bgan.infer.BganBlur``;
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
    device = check_device(device)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if "bgan" in config.methods() and learned is None:
        raise ValueError("this config blurs with a BGAN: pass its generator as learned=")
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
    """Rebuild pair ``index`` of a ``blurgen-pairs/2`` file from its source image and record.

    Args:
        path: the pairs file.
        index: the pair's row.
        learned: the learned blur, for pairs blurred by a BGAN (``method`` 2).
        device: ``"cpu"`` or ``"cuda"`` (CUDA's FFT rounding may move a few values by one).

    Returns:
        ``(sharp, blurred)``: (P, P, 3) uint8 RGB, equal to the stored pair when made on the
        same device.

    Raises:
        FileNotFoundError: the source image is gone. ValueError: not a version-2 pairs file,
            no such row, or the source's bytes have changed since the file was made.
    """
    with open_pairs(path) as f:
        if f.attrs["schema"] != SCHEMA:
            raise ValueError(f"'{path}' is a {f.attrs['schema']} file: it holds no sample records")
        if not 0 <= index < len(f["sharp"]):
            raise ValueError(f"'{path}' has no pair {index} (it holds {len(f['sharp'])})")
        record = read_record(f, index)
        kernel = f["kernel"][index]
        source = int(f["source"][index])
        source_path = f["sources"].asstr()[source]
        fingerprint = f["fingerprints"].asstr()[source]
        config = json.loads(f.attrs["config"])
    photo = Photo.open(source_path)
    if photo.fingerprint != fingerprint:
        raise ValueError(f"'{source_path}' has changed since '{path}' was made")
    side = config["patch"] + config["kernel_size"] - 1
    xp = xp_for_device(check_device(device))
    crop = xp.asarray(photo.crop(*record.origin, side, side))
    degradation = Degradation.from_dict(config["degradation"])
    sharp, blurred = render_sample(crop, xp.asarray(kernel), record, degradation, learned)
    return to_uint8(sharp), to_uint8(blurred)


def pair_bytes(config: DatasetConfig) -> int:
    """Bytes of a pair's images and kernels (with camera shake, its kernel field and
    trajectory too)."""
    size = 2 * config.patch**2 * 3 + 4 * config.kernel_size**2
    if "camera" in config.methods():
        size += 4 * FIELD_GRID**2 * config.kernel_size**2 + 8 * (6 * config.camera.steps + 4)
    return size


def plan(sources: Sequence[str | os.PathLike], config: DatasetConfig) -> dict:
    """What a run would do, without reading pixels: sources, samples and bytes at most."""
    pairs = len(sources) * config.per_image
    per_pair = pair_bytes(config) + PER_PAIR_RECORD_BYTES
    return {"sources": len(sources), "pairs": pairs, "bytes": pairs * per_pair,
            "config": json.loads(json.dumps(config.to_dict()))}  # fmt: skip
