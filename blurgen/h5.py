"""The paired dataset file, schema ``blurgen-pairs/4``: writer (atomic, resumable) and checks.

A file holds one row per pair in per-sample datasets (:func:`sample_layouts`: the
synthesiser's, the degradation's and those of the blur methods its config uses; the docs' table
is :func:`schema_table`), the source paths and fingerprints, and root attributes:
``schema``, ``blurgen_version``, ``config`` (JSON), ``root_seed``, ``complete``, ``skipped``
(JSON list of ``{"path", "reason"}``). While a file is being written (as ``<name>.partial``) it
also holds ``next_source``, ``next_sample`` and ``n_done``.

With ``kernel`` the per-sample columns are the whole record of a sample's random choices
(:class:`blurgen.sample.SampleRecord`), so :func:`blurgen.pipeline.regenerate` rebuilds any pair
from its source alone. Sample ``index`` of a source drew them from
``blurgen.sample.sample_rng(root_seed, fingerprint, index)``.

Version 1 files (``blurgen-pairs/1``: ``seed`` (N,) uint64 held the sample index, ``noise``
was float32, and flips, boost, JPEG quality and noise seed were not stored) are still read.
Version 3 files have version 4's columns, and version 2 files version 3's without the ISP's; but
their noise may come from the noise sampler blurgen had before version 4 (NumPy's exact draws),
which it no longer has: their noisy pairs replay only if it does not
(:func:`blurgen.pipeline.regenerate` checks).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import blurgen
from blurgen import methods as registry

from .degradation import DegradationParams
from .io import check_output_path, deflated_chunk, open_hdf5, partial_path
from .sample import Pairs, SampleRecord
from .schema import DEFLATE_LEVEL, PACKED, Column

log = logging.getLogger("blurgen")

SCHEMA = "blurgen-pairs/4"
# Version 2 files are version 3's without the ISP's columns (no ISP could be drawn then), and
# version 3 files version 4's, but with noise perhaps from the earlier sampler.
EARLIER_NOISE = ("blurgen-pairs/2", "blurgen-pairs/3")
RECORDED = (*EARLIER_NOISE, SCHEMA)
READABLE = ("blurgen-pairs/1", *RECORDED)
_PER_SAMPLE_V1 = ("sharp", "blurred", "kernel", "method", "seed", "source", "origin", "noise")
# The suffix of a column's name when it is handed to the writer compressed (deflate_rows).
DEFLATED = ":deflated"


def per_sample(f: h5py.File) -> tuple[str, ...]:
    """The per-sample datasets of an open pairs file (or shard) of the current schema, as its
    config lays them out."""
    from .pipeline import DatasetConfig

    return tuple(sample_layouts(DatasetConfig.from_dict(json.loads(f.attrs["config"]))))


def sample_layouts(config: Any) -> dict[str, Column]:
    """Each per-sample dataset of a pairs file of ``config`` (a
    :class:`~blurgen.pipeline.DatasetConfig`): the images, the kernel and the record (the
    synthesiser's columns, the degradation's), then the columns of each blur method the config
    uses."""
    p, k = config.patch, config.kernel_size
    codes = ", ".join(f"{m.code} {m.name}" for m in registry.methods())
    without = ", ".join(m.name for m in registry.methods() if not m.has_kernel)
    kernels = "".join(f"; for {m.name}, {m.kernel_note}" for m in registry.methods()
                      if m.kernel_note)  # fmt: skip
    layouts = {
        name: Column(np.uint8, (p, p, 3), "RGB, aligned pixel for pixel, one chunk each",
                     {"chunks": (1, p, p, 3)})
        for name in ("sharp", "blurred")
    }  # fmt: skip
    layouts["kernel"] = Column(np.float32, (k, k), f"sums to 1 (zeros for {without})"
                               f"{kernels}; gzip + shuffle",
                               {"chunks": (1, k, k), **PACKED})  # fmt: skip
    layouts.update({
        "method": Column(np.uint8, (), f"the blur method: {codes}"),
        "source": Column(np.int32, (), "index into `sources`"),
        "index": Column(np.uint32, (), "the sample's number among its source's samples"),
        "origin": Column(np.int32, (2,), "top-left (y, x) of the crop in the source image, "
                         "before flips"),
        "flips": Column(np.uint8, (2,), "horizontal, vertical (1: mirrored), applied in that "
                        "order"),
        **config.degradation.param_columns(),
    })  # fmt: skip
    for method in config.blur_methods():
        layouts.update(method.columns(config))
    return layouts


def schema_table(config: Any = None) -> str:
    """The format's table in Markdown: every per-sample dataset of a file of ``config`` (by
    default one whose config uses every method, each with every column it can add, and an
    ISP), with P the patch and K the kernel size, then the per-file ones."""
    from .degradation import Degradation
    from .isp import Isp
    from .pipeline import DatasetConfig

    if config is None:
        sections = {m.section: m.documented_section() for m in registry.methods() if m.section}
        mix = [(m, 1) for m in registry.drawn_names()]
        config = DatasetConfig(patch=97, kernel_size=5, degradation=Degradation(isp=Isp()),
                               mix=mix, **sections)  # fmt: skip
    letters = {config.patch: "P", config.kernel_size: "K"}
    lines = ["| name | dtype | shape | notes |", "| --- | --- | --- | --- |"]
    for name, column in sample_layouts(config).items():
        shape = ", ".join(["N", *(letters.get(n, str(n)) for n in column.shape)])
        shape = f"({shape},)" if len(column.shape) == 0 else f"({shape})"
        lines.append(f"| `{name}` | {column.dtype} | {shape} | {column.notes} |")
    lines.append("| `sources` | str | (S,) | source paths as given |")
    lines.append("| `fingerprints` | str | (S,) | BLAKE2b-128 of each source's bytes "
                 "(empty if skipped) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def create_samples(f: h5py.File, config: Any, rows: int = 0) -> None:
    """Create the per-sample datasets of a pairs file of ``config`` in ``f``, ``rows`` long and
    growable."""
    for name, column in sample_layouts(config).items():
        f.create_dataset(name, (rows, *column.shape), column.dtype,
                         maxshape=(None, *column.shape), **column.options)  # fmt: skip


def append_samples(f: h5py.File, arrays: dict[str, np.ndarray], rows: int) -> int:
    """Append one :class:`SourceSamples`' arrays after the first ``rows`` rows of ``f``'s
    per-sample datasets; returns the new number of rows. Columns stored a chunk a row go
    straight into their chunks, past HDF5's selections and chunk cache (the images about
    10 % faster): as they are where the file does not compress them, and compressed
    beforehand by :func:`deflate_rows` where it does."""
    count = len(arrays["sharp"])
    for name in (name.removesuffix(DEFLATED) for name in arrays):
        dataset = f[name]
        dataset.resize(rows + count, axis=0)
        packed = arrays.get(name + DEFLATED)
        if packed is not None:
            chunks: Any = deflated_chunks(packed, count)
        elif dataset.chunks[0] == 1 and not dataset.compression:
            chunks = np.ascontiguousarray(arrays[name], dataset.dtype)
        else:
            dataset[rows:] = arrays[name]
            continue
        origin = (0,) * (dataset.ndim - 1)
        for row, chunk in enumerate(chunks, rows):
            dataset.id.write_direct_chunk((row, *origin), chunk)
    return rows + count


def deflate_rows(arrays: dict[str, np.ndarray], config: Any) -> dict[str, np.ndarray]:
    """``arrays`` with each column that pairs files of ``config`` compress
    (:attr:`Column.compressed`) replaced by its rows compressed as the file stores them, one
    chunk a row: HDF5's shuffle, then deflate at :data:`~blurgen.schema.DEFLATE_LEVEL`.
    Whoever makes the samples compresses them, not the one process that writes the file (a
    64 px kernel took it 0.08 ms, a camera shake's kernel field 1.2 ms). Column ``name``
    becomes ``name + DEFLATED``, one uint8 array: the n + 1 int64 offsets at which the chunks
    start and the last ends, then the chunks."""
    out = dict(arrays)
    for name, column in sample_layouts(config).items():
        if column.compressed and name in out:
            rows = out.pop(name)
            chunks = [deflated_chunk(row, DEFLATE_LEVEL, shuffle=True) for row in rows]
            ends = np.cumsum([0, *map(len, chunks)], dtype=np.int64)
            data = np.frombuffer(b"".join(chunks), np.uint8)
            out[name + DEFLATED] = np.concatenate([ends.view(np.uint8), data])
    return out


def deflated_chunks(packed: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """The ``count`` chunks of a column packed by :func:`deflate_rows`, in row order."""
    head = 8 * (count + 1)
    ends = packed[:head].view(np.int64)
    data = packed[head:]
    for start, stop in zip(ends[:-1].tolist(), ends[1:].tolist(), strict=True):
        yield data[start:stop]


def write_header(
    f: h5py.File, sources: list[str], fingerprints: list[str], config_json: str, seed: int
) -> None:
    """Write what a pairs file holds besides its samples: sources, fingerprints and the root
    attributes (``complete`` false; the caller sets it once the samples are in)."""
    f.create_dataset("sources", data=sources, dtype=h5py.string_dtype())
    f.create_dataset("fingerprints", data=fingerprints, dtype=h5py.string_dtype())
    f.attrs["schema"] = SCHEMA
    f.attrs["blurgen_version"] = blurgen.__version__
    f.attrs["config"] = config_json
    f.attrs["root_seed"] = seed
    f.attrs["complete"] = False


def record_columns(records: list[SampleRecord], config: Any) -> dict[str, np.ndarray]:
    """The per-sample columns of ``records`` of a file of ``config`` but images, kernels,
    sources, indices and the methods' own."""
    return {
        "method": np.array([registry.get(r.method).code for r in records], np.uint8),
        "origin": np.array([r.origin for r in records], np.int32).reshape(-1, 2),
        "flips": np.array([r.flips for r in records], np.uint8).reshape(-1, 2),
        **DegradationParams.columns(
            [r.params for r in records], isp=config.degradation.isp is not None
        ),
    }


def read_record(f: h5py.File, row: int) -> SampleRecord:
    """The record of pair ``row`` of an open ``blurgen-pairs/2``, ``/3`` or ``/4`` file."""
    y, x = (int(v) for v in f["origin"][row])
    horizontal, vertical = (bool(v) for v in f["flips"][row])
    method = registry.by_code(int(f["method"][row]))
    return SampleRecord(method.name, (y, x), (horizontal, vertical),
                        DegradationParams.from_row(f, row), method.read(f, row))  # fmt: skip


@dataclass
class SourceSamples:
    """Samples ``first .. stop - 1`` of one source image, or why it was skipped."""

    source: int
    first: int
    stop: int
    skipped: str = ""
    fingerprint: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def skip(cls, source: int, first: int, stop: int, reason: str) -> SourceSamples:
        """A slice of a source that yields no samples."""
        return cls(source, first, stop, skipped=reason)

    @classmethod
    def of(
        cls, source: int, first: int, fingerprint: str, pairs: Pairs, rows: slice, config: Any
    ) -> SourceSamples:
        """Rows ``rows`` of ``pairs``, consecutive samples of a source from ``first`` on, with
        the columns a file of ``config`` stores compressed already compressed."""
        records = pairs.records[rows]
        count = len(records)
        return cls(source, first, first + count, fingerprint=fingerprint, arrays=deflate_rows({
            "sharp": pairs.sharp[rows], "blurred": pairs.blurred[rows],
            "kernel": np.asarray(pairs.kernels[rows], np.float32),
            "source": np.full(count, source, np.int32),
            "index": np.arange(first, first + count, dtype=np.uint32),
            **record_columns(records, config),
            **{name: column[rows] for name, column in pairs.columns.items()},
        }, config))  # fmt: skip


class PairsWriter:
    """Appends samples to ``<path>.partial`` and renames it to ``path`` once complete.

    A partial file of the same sources, config and seed is resumed where its last checkpoint
    ends (unless ``overwrite``); one that cannot be trusted (left damaged by a crash or a full
    disk) is started afresh, and anything else in its place (another job's partial file) is
    replaced, each with a warning naming it. Use as a context manager; call :meth:`finish`
    when the last source is written, or the file stays partial (and resumable).

    Before each write the writer allocates the disk space it will take, and stops with an
    OSError naming the file if there is none, so that the partial file ends at a clean
    checkpoint. HDF5 reports some write errors only as exceptions ignored while freeing its
    objects; the writer catches those too and stops the same way.
    """

    def __init__(
        self, path: str | os.PathLike, sources: list[str], config: Any, seed: int, *,
        overwrite: bool = False,
    ) -> None:  # fmt: skip
        self.path = check_output_path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"'{self.path}' already exists; pass --overwrite to replace it")
        self.temporary = partial_path(self.path)
        self.sources = sources
        self.config = config
        self.config_json = json.dumps(config.to_dict(), sort_keys=True)
        self.seed = int(seed)
        self.next_source = 0
        self.next_sample = 0
        self.pairs = 0
        self.skipped: list[dict] = []
        self.finished = False
        self.overwrite = overwrite
        self.file: h5py.File | None = None

    def __enter__(self) -> PairsWriter:
        self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        self._lost: list[BaseException] = []
        try:
            if self.overwrite or not self._resume():
                self._guard(self._create, resumable=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if self.file is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    # After a failed write HDF5 may fail again here; a resume checks the file.
                    self.file.close()
                self.file = None
            if self.finished and exc_info[0] is None:
                if self._lost:
                    raise self._failure(None, f"a write failed ({self._lost[0]})")
                with h5py.File(self.temporary, "r+"):
                    pass  # reopened, HDF5 trims the space reserved beyond its end
                os.replace(self.temporary, self.path)
        finally:
            sys.unraisablehook = self._hook

    def _unraisable(self, info: Any) -> None:
        """Keep the write errors HDF5 raises while freeing its objects (Python would only print
        them); pass anything else on."""
        if isinstance(info.exc_value, OSError) and "h5py" in repr(info.object):
            self._lost.append(info.exc_value)
        else:
            self._hook(info)

    def _resume(self) -> bool:
        if not self.temporary.exists():
            return False
        try:
            f = h5py.File(self.temporary, "a")
        except OSError as exc:
            log.warning("'%s' is damaged (%s); starting it again", self.temporary, exc)
            return False
        try:
            why_not = ""
            if f.attrs.get("schema") != SCHEMA or "next_source" not in f.attrs:
                why_not = f"is not an unfinished {SCHEMA} file; replacing it"
            else:
                differ = [
                    name
                    for name, same in (
                        ("options", f.attrs.get("config") == self.config_json),
                        ("seed", int(f.attrs.get("root_seed", -1)) == self.seed),
                        ("sources", list(f["sources"].asstr()[...]) == self.sources),
                    )
                    if not same
                ]
                if differ:
                    why_not = (f"was made with other {' and '.join(differ)}; starting afresh "
                               f"(its {int(f.attrs['n_done'])} pairs are discarded)")  # fmt: skip
            if not why_not:
                self._restore(f)
        except Exception as exc:  # h5py raises many types on a damaged file
            f.close()
            log.warning("'%s' is damaged (%s); starting it again", self.temporary, exc)
            return False
        if why_not:
            f.close()
            log.warning("'%s' %s", self.temporary, why_not)
        return not why_not

    def _restore(self, f: h5py.File) -> None:
        """Take up a partial file at its last checkpoint, reading its last rows to make sure
        that everything up to there is intact."""
        pairs = int(f.attrs["n_done"])
        for name in per_sample(f):  # drop anything written after the last checkpoint
            f[name].resize(pairs, axis=0)
            if pairs:
                f[name][pairs - 1]
        f["fingerprints"].asstr()[...]
        f.flush()
        self.file = f
        self.next_source = int(f.attrs["next_source"])
        self.next_sample = int(f.attrs["next_sample"])
        self.pairs = pairs
        self.skipped = json.loads(f.attrs["skipped"])

    def _create(self) -> None:
        f = self.file = h5py.File(self.temporary, "w")
        try:
            create_samples(f, self.config)
            write_header(f, self.sources, [""] * len(self.sources), self.config_json, self.seed)
            self._checkpoint()
        except BaseException:
            # Without its first checkpoint the file holds nothing to resume.
            with contextlib.suppress(OSError, RuntimeError):
                self.discard()
            raise

    def _guard(self, write: Any, *args: Any, resumable: bool = True) -> None:
        """Run ``write`` and turn a failure to write into one OSError that names the file and
        says how to go on (to resume, where ``resumable``: the file holds a checkpoint)."""
        try:
            write(*args)
            if self._lost:
                raise self._lost[0]
        except OSError as exc:
            full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
            # h5py's message is HDF5's error stack; the system's reason is what a user can act on.
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise self._failure(
                exc.errno, "the disk is full" if full else f"cannot write ({why})", resumable
            ) from None

    def _failure(self, number: int | None, reason: str, resumable: bool = True) -> OSError:
        """One OSError naming the file and its disk, and saying how to go on; ``errno`` is
        kept for callers."""
        message = f"{reason}: '{self.temporary}' on {_device_of(self.temporary)}"
        if resumable:
            remedy = "free some space and" if number == errno.ENOSPC else "then"
            message += f"; {remedy} run the same command again to resume"
        elif number == errno.ENOSPC:
            message += "; free some space and run the command again"
        failure = OSError(message)
        failure.errno = number
        return failure

    def write(self, results: list[SourceSamples]) -> None:
        """Append the samples of consecutive sources, then record the progress durably.

        Raises:
            OSError: the disk has no room for them (nothing is written), or a write failed.
        """
        self._guard(self._reserve, sum(a.nbytes for r in results for a in r.arrays.values()))
        self._guard(self._append, results)
        self._guard(self._checkpoint)

    def _reserve(self, nbytes: int) -> None:
        """Allocate disk space for the file to grow by ``nbytes`` (and HDF5's metadata), so
        that the writes that follow cannot run out of it. The file ends its life trimmed
        (see ``__exit__``).

        Raises:
            OSError: ENOSPC, there is not that much space.
        """
        nbytes += DISK_MARGIN
        if not hasattr(os, "posix_fallocate"):  # macOS, Windows: check instead
            free = shutil.disk_usage(self.temporary.parent).free
            if nbytes > free:
                raise OSError(errno.ENOSPC, f"{nbytes} bytes needed, {free} free")
            return
        fd = os.open(self.temporary, os.O_RDWR)
        try:
            os.posix_fallocate(fd, self.file.id.get_filesize(), nbytes)
        finally:
            os.close(fd)

    def _append(self, results: list[SourceSamples]) -> None:
        f = self.file
        for result in results:
            if result.skipped:
                if result.first == 0:  # once per source, not per slice
                    path = self.sources[result.source]
                    self.skipped.append({"path": path, "reason": result.skipped})
                continue
            f["fingerprints"][result.source] = result.fingerprint
            self.pairs = append_samples(f, result.arrays, self.pairs)
        if results:
            last = results[-1]
            finished = last.stop == self.config.per_image
            self.next_source = last.source + 1 if finished else last.source
            self.next_sample = 0 if finished else last.stop
        # The samples reach the disk before the checkpoint that counts them does: if they
        # fail to, the file keeps its last checkpoint.
        f.flush()

    def _checkpoint(self) -> None:
        f = self.file
        f.attrs["next_source"] = self.next_source
        f.attrs["next_sample"] = self.next_sample
        f.attrs["n_done"] = self.pairs
        f.attrs["skipped"] = json.dumps(self.skipped)
        f.flush()

    def finish(self) -> None:
        """Mark the file complete; it is renamed into place when the context exits."""
        f = self.file
        f.attrs["complete"] = True
        for name in ("next_source", "next_sample", "n_done"):
            del f.attrs[name]
        self._guard(self._reserve, 0)
        self._guard(f.flush)
        self.finished = True

    def discard(self) -> None:
        """Close and remove the partial file (a run that produced nothing), even where
        closing fails (a full disk)."""
        try:
            if self.file is not None:
                file, self.file = self.file, None
                file.close()
        finally:
            self.temporary.unlink(missing_ok=True)


# Room kept free beyond a write's own bytes, for HDF5's metadata and the checkpoint.
DISK_MARGIN = 1 << 20


def _device_of(path: os.PathLike) -> str:
    """The mount point of the file system holding ``path``, for messages."""
    folder = Path(path).resolve().parent
    while not os.path.ismount(folder):
        folder = folder.parent
    return f"the file system at '{folder}'"


def verify_pairs(path: str | os.PathLike) -> tuple[dict, list[str]]:
    """Check a pairs file (either schema version) against its schema.

    Returns:
        ``(info, problems)``: a summary (schema, pairs, sources, skipped, patch, kernel size,
        config, seed, version, complete, shards: 0 for an ordinary file) and a list of
        problems, empty when all is well; for a file made on a cluster, every shard is opened.
    """
    problems: list[str] = []
    with open_hdf5(path) as f:
        attrs = dict(f.attrs)
        schema = attrs.get("schema")
        if schema not in READABLE:
            return {"schema": schema}, [f"not a pairs file ({' or '.join(READABLE)})"]
        bad = bad_shards(f, path, thorough=True)
        if bad:
            return {"schema": schema}, [_shards_message(path, bad)]
        columns = per_sample(f) if schema in RECORDED else _PER_SAMPLE_V1
        index = "index" if schema in RECORDED else "seed"
        missing = [name for name in (*columns, "sources") if name not in f]
        if missing:
            return {"schema": schema}, [f"missing datasets: {', '.join(missing)}"]
        n = len(f["sharp"])
        info = {
            "schema": schema,
            "pairs": n,
            "sources": len(f["sources"]),
            "skipped": json.loads(attrs.get("skipped", "[]")),
            "patch": f["sharp"].shape[1],
            "kernel_size": f["kernel"].shape[1],
            "config": json.loads(attrs.get("config", "{}")),
            "root_seed": int(attrs.get("root_seed", -1)),
            "blurgen_version": str(attrs.get("blurgen_version")),
            "complete": bool(attrs.get("complete")),
            "shards": len(shard_paths(f, path)),
        }
        if not info["complete"]:
            problems.append("the complete flag is not set: the file was not finished")
        for name in columns:
            if len(f[name]) != n:
                problems.append(f"'{name}' has {len(f[name])} rows, 'sharp' has {n}")
        if f["blurred"].shape != f["sharp"].shape or f["sharp"].shape[1:3] != (info["patch"],) * 2:
            problems.append(f"sharp {f['sharp'].shape} and blurred {f['blurred'].shape} differ")
        source = f["source"][...]
        if n and (source.min() < 0 or source.max() >= info["sources"]):
            problems.append("source indices out of range")
        without = [m.code for m in registry.methods() if not m.has_kernel]
        none = np.isin(f["method"][...], without)
        sums = f["kernel"][...].sum(axis=(1, 2), dtype=np.float64) if n else np.zeros(0)
        bad = ~np.where(none, np.abs(sums) < 1e-6, np.abs(sums - 1) < 1e-5)
        if bad.any():
            problems.append(f"{int(bad.sum())} kernels do not sum to 1 (or 0 for learned blur)")
        expected = info["config"].get("per_image")
        if expected and n and np.any(f[index][...] >= expected):
            problems.append(f"sample indices ('{index}') out of range")
    return info, problems


def open_pairs(path: str | os.PathLike) -> h5py.File:
    """Open a pairs file (schema version 1 or 2) for reading, or raise ValueError saying what it
    is not, or which of its shards are missing or damaged."""
    f = open_hdf5(path)
    try:
        if f.attrs.get("schema") not in READABLE:
            raise ValueError(f"'{path}' is not a pairs file ({' or '.join(READABLE)})")
        bad = bad_shards(f, path)
        if bad:
            raise ValueError(_shards_message(path, bad))
    except BaseException:
        f.close()
        raise
    return f


# A shard of a pairs file made on a cluster: the samples of consecutive jobs. Version 1 shards
# may hold the earlier noise sampler's pairs (see EARLIER_NOISE), so a job makes them again.
SHARD_SCHEMA = "blurgen-shard/2"


def shard_paths(f: h5py.File, path: str | os.PathLike) -> list[Path]:
    """The shard files an open pairs file reads its samples from, in order; none for an
    ordinary file. Shard names are stored relative to the pairs file's folder, as HDF5 resolves
    them, so the folder can move."""
    if "sharp" not in f or not f["sharp"].is_virtual:
        return []
    folder = Path(path).parent
    return [folder / source.file_name for source in f["sharp"].virtual_sources()]


def bad_shards(
    f: h5py.File, path: str | os.PathLike, thorough: bool = False
) -> list[tuple[Path, str]]:
    """``(shard, what is wrong)`` for each shard of an open pairs file that is missing or not
    HDF5 (a missing shard would otherwise read as zeros); ``thorough`` also opens each one and
    reads its last rows, to catch unfinished and truncated shards."""
    bad = []
    for shard in shard_paths(f, path):
        if not shard.is_file():
            bad.append((shard, "missing"))
        elif not h5py.is_hdf5(shard):
            bad.append((shard, "not an HDF5 file"))
        elif thorough:
            try:
                with h5py.File(shard, "r") as part:
                    if part.attrs.get("schema") != SHARD_SCHEMA or not part.attrs.get("complete"):
                        bad.append((shard, "not a finished shard"))
                    for name in per_sample(part):
                        if len(part[name]):
                            part[name][-1]
            except Exception as exc:  # h5py raises many types on a damaged file
                bad.append((shard, f"damaged: {exc}"))
    return bad


def _shards_message(path: str | os.PathLike, bad: list[tuple[Path, str]]) -> str:
    named = ", ".join(f"'{shard}' ({why})" for shard, why in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (f"'{path}' reads its samples from shards, and {len(bad)} are missing or damaged: "
            f"{named}{more}; rerun the make-dataset command to write them again")  # fmt: skip


def read_shard(
    path: str | os.PathLike, segments: list[list[int]], config_json: str, seed: int
) -> dict:
    """The summary of a finished shard of this job: ``pairs``, ``fingerprints`` (list of
    ``[source, fingerprint]``) and ``skipped`` (list of ``{"path", "reason"}``).

    Reads the last row of every dataset, so a truncated file is caught.

    Raises:
        ValueError: the shard is damaged, unfinished, or of another job (the message says
            which).
    """
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            if attrs.get("schema") != SHARD_SCHEMA or not attrs.get("complete"):
                raise ValueError("not a finished shard")
            if (attrs["config"] != config_json or int(attrs["root_seed"]) != seed
                    or json.loads(attrs["segments"]) != segments):  # fmt: skip
                raise ValueError("a shard of another job (config, seed or samples differ)")
            pairs = int(attrs["pairs"])
            for name in per_sample(f):
                if len(f[name]) != pairs:
                    raise ValueError(f"'{name}' has {len(f[name])} rows, not {pairs}")
                if pairs:
                    f[name][pairs - 1]
            return {"pairs": pairs, "fingerprints": json.loads(attrs["fingerprints"]),
                    "skipped": json.loads(attrs["skipped"])}  # fmt: skip
    except ValueError:
        raise
    except Exception as exc:  # h5py raises many types on a damaged file
        raise ValueError(f"damaged ({exc})") from exc
