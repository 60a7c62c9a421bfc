"""The paired dataset file, schema ``blurgen-pairs/1``: writer (atomic, resumable) and checks.

| name | dtype | shape | notes |
| --- | --- | --- | --- |
| ``sharp``, ``blurred`` | uint8 | (N, P, P, 3) | RGB, aligned pixel for pixel, one chunk each |
| ``kernel`` | float32 | (N, K, K) | sums to 1 (zeros for learned blur), gzip + shuffle |
| ``method`` | uint8 | (N,) | 0 trajectory kernel, 1 linear kernel, 2 BGAN |
| ``seed`` | uint64 | (N,) | sample index i: its generator is default_rng([root_seed, source, i]) |
| ``source`` | int32 | (N,) | index into ``sources`` |
| ``origin`` | int32 | (N, 2) | top-left (y, x) of the crop in the source image, before flips |
| ``noise`` | float32 | (N, 2) | shot gain and read-noise std actually used |
| ``sources`` | str | (S,) | source paths as given |

Root attributes: ``schema``, ``blurgen_version``, ``config`` (JSON), ``root_seed``, ``complete``,
``skipped`` (JSON list of ``{"path", "reason"}``). While a file is being written (as
``<name>.partial``) it also holds ``next_source``, ``next_sample`` and ``n_done``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

import blurgen

from .io import check_output_path, open_hdf5, partial_path

SCHEMA = "blurgen-pairs/1"
METHODS = {"motion": 0, "linear": 1, "bgan": 2}
_PER_SAMPLE = ("sharp", "blurred", "kernel", "method", "seed", "source", "origin", "noise")


@dataclass
class SourceSamples:
    """Samples ``first .. stop - 1`` of one source image, or why it was skipped."""

    source: int
    first: int
    stop: int
    skipped: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def skip(cls, source: int, first: int, stop: int, reason: str) -> SourceSamples:
        """A slice of a source that yields no samples."""
        return cls(source, first, stop, skipped=reason)

    @classmethod
    def of(
        cls, source: int, first: int, samples: list[tuple], kernels: np.ndarray, methods: list[str]
    ) -> SourceSamples:
        """Stack ``(sharp, blurred, origin, noise)`` samples with their kernels and methods."""
        sharp, blurred, origin, noise = zip(*samples, strict=True)
        count = len(samples)
        return cls(source, first, first + count, arrays={
            "sharp": np.stack(sharp), "blurred": np.stack(blurred),
            "kernel": np.asarray(kernels, np.float32),
            "method": np.array([METHODS[m] for m in methods], np.uint8),
            "seed": np.arange(first, first + count, dtype=np.uint64),
            "source": np.full(count, source, np.int32),
            "origin": np.asarray(origin, np.int32), "noise": np.asarray(noise, np.float32),
        })  # fmt: skip


class PairsWriter:
    """Appends samples to ``<path>.partial`` and renames it to ``path`` once complete.

    A partial file of the same sources, config and seed is resumed where it ends (unless
    ``overwrite``); anything else in its place is started afresh. Use as a context manager;
    call :meth:`finish` when the last source is written, or the file stays partial (and
    resumable).
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
        if self.overwrite or not self._resume():
            self._create()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.file is not None:
            self.file.close()
        if self.finished and exc_info[0] is None:
            os.replace(self.temporary, self.path)

    def _resume(self) -> bool:
        if not self.temporary.exists():
            return False
        try:
            f = h5py.File(self.temporary, "a")
        except OSError:
            return False  # a crash left it unreadable: nothing worth keeping
        same = (
            f.attrs.get("schema") == SCHEMA
            and f.attrs.get("config") == self.config_json
            and int(f.attrs.get("root_seed", -1)) == self.seed
            and "next_source" in f.attrs
            and [s.decode() if isinstance(s, bytes) else s for s in f["sources"][...]]
            == self.sources
        )
        if not same:
            f.close()
            return False
        self.file = f
        self.next_source = int(f.attrs["next_source"])
        self.next_sample = int(f.attrs["next_sample"])
        self.pairs = int(f.attrs["n_done"])
        self.skipped = json.loads(f.attrs["skipped"])
        for name in _PER_SAMPLE:  # drop anything written after the last checkpoint
            f[name].resize(self.pairs, axis=0)
        return True

    def _create(self) -> None:
        f = self.file = h5py.File(self.temporary, "w")
        p, k = self.config.patch, self.config.kernel_size
        for name in ("sharp", "blurred"):
            f.create_dataset(name, (0, p, p, 3), np.uint8, maxshape=(None, p, p, 3),
                             chunks=(1, p, p, 3))  # fmt: skip
        f.create_dataset("kernel", (0, k, k), np.float32, maxshape=(None, k, k),
                         chunks=(1, k, k), compression="gzip", shuffle=True)  # fmt: skip
        for name, dtype, tail in (("method", np.uint8, ()), ("seed", np.uint64, ()),
                                  ("source", np.int32, ()), ("origin", np.int32, (2,)),
                                  ("noise", np.float32, (2,))):  # fmt: skip
            f.create_dataset(name, (0, *tail), dtype, maxshape=(None, *tail),
                             chunks=(4096, *tail))  # fmt: skip
        f.create_dataset("sources", data=self.sources, dtype=h5py.string_dtype())
        f.attrs["schema"] = SCHEMA
        f.attrs["blurgen_version"] = blurgen.__version__
        f.attrs["config"] = self.config_json
        f.attrs["root_seed"] = self.seed
        f.attrs["complete"] = False
        self._checkpoint()

    def write(self, results: list[SourceSamples]) -> None:
        """Append the samples of consecutive sources, then record the progress durably."""
        f = self.file
        for result in results:
            if result.skipped:
                if result.first == 0:  # once per source, not per slice
                    path = self.sources[result.source]
                    self.skipped.append({"path": path, "reason": result.skipped})
                continue
            count = len(result.arrays["sharp"])
            for name in _PER_SAMPLE:
                f[name].resize(self.pairs + count, axis=0)
                f[name][self.pairs :] = result.arrays[name]
            self.pairs += count
        if results:
            last = results[-1]
            finished = last.stop == self.config.per_image
            self.next_source = last.source + 1 if finished else last.source
            self.next_sample = 0 if finished else last.stop
        self._checkpoint()

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
        f.flush()
        self.finished = True


def verify_pairs(path: str | os.PathLike) -> tuple[dict, list[str]]:
    """Check a pairs file against the schema.

    Returns:
        ``(info, problems)``: a summary (schema, pairs, sources, skipped, patch, kernel size,
        config, seed, version, complete) and a list of problems, empty when all is well.
    """
    problems: list[str] = []
    with open_hdf5(path) as f:
        attrs = dict(f.attrs)
        if attrs.get("schema") != SCHEMA:
            return {"schema": attrs.get("schema")}, [f"not a {SCHEMA} file"]
        missing = [name for name in (*_PER_SAMPLE, "sources") if name not in f]
        if missing:
            return {"schema": SCHEMA}, [f"missing datasets: {', '.join(missing)}"]
        n = len(f["sharp"])
        info = {
            "schema": SCHEMA,
            "pairs": n,
            "sources": len(f["sources"]),
            "skipped": json.loads(attrs.get("skipped", "[]")),
            "patch": f["sharp"].shape[1],
            "kernel_size": f["kernel"].shape[1],
            "config": json.loads(attrs.get("config", "{}")),
            "root_seed": int(attrs.get("root_seed", -1)),
            "blurgen_version": str(attrs.get("blurgen_version")),
            "complete": bool(attrs.get("complete")),
        }
        if not info["complete"]:
            problems.append("the complete flag is not set: the file was not finished")
        for name in _PER_SAMPLE:
            if len(f[name]) != n:
                problems.append(f"'{name}' has {len(f[name])} rows, 'sharp' has {n}")
        if f["blurred"].shape != f["sharp"].shape or f["sharp"].shape[1:3] != (info["patch"],) * 2:
            problems.append(f"sharp {f['sharp'].shape} and blurred {f['blurred'].shape} differ")
        source = f["source"][...]
        if n and (source.min() < 0 or source.max() >= info["sources"]):
            problems.append("source indices out of range")
        method = f["method"][...]
        sums = f["kernel"][...].sum(axis=(1, 2), dtype=np.float64) if n else np.zeros(0)
        bad = ~np.where(method == METHODS["bgan"], np.abs(sums) < 1e-6, np.abs(sums - 1) < 1e-5)
        if bad.any():
            problems.append(f"{int(bad.sum())} kernels do not sum to 1 (or 0 for learned blur)")
        expected = info["config"].get("per_image")
        if expected and n and np.any(f["seed"][...] >= expected):
            problems.append("sample seeds out of range")
    return info, problems


def open_pairs(path: str | os.PathLike) -> h5py.File:
    """Open a pairs file for reading, or raise ValueError saying what it is not."""
    f = open_hdf5(path)
    if f.attrs.get("schema") != SCHEMA:
        f.close()
        raise ValueError(f"'{path}' is not a {SCHEMA} file")
    return f
