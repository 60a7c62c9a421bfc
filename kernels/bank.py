"""Kernel banks: many kernels in one HDF5 file, written resumably, and their preview grids.

Schema ``blurgen-kernels/1``: dataset ``kernels`` (N, K, K) float32, gzip level 1 (kernels are
mostly zeros; level 1 writes twice as fast as level 4 and is no larger); root attributes
``schema``, ``config`` (JSON: family, n, size and the family's parameters), ``seed`` and
``blurgen_version``. Kernel ``i`` depends only on the config, the seed
and ``i``, so an interrupted bank is resumed from its ``.partial`` file and ends identical.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

import blurgen
from blurgen.backend import to_numpy
from blurgen.io import (
    check_output_path,
    deflated_chunk,
    interrupt_between_steps,
    open_hdf5,
    partial_path,
    write_png,
)
from blurgen.parallel import ordered_map

from .linear import linear_kernels
from .motion import check_size, motion_kernels
from .trajectory import MotionModel

SCHEMA = "blurgen-kernels/1"
FAMILIES = ("motion", "linear")
# Kernels per HDF5 chunk: small enough that reading one kernel decompresses little.
_H5_CHUNK = 16
# Kernels are mostly zeros; level 1 writes twice as fast as level 4 and is no larger.
_GZIP_LEVEL = 1


@dataclass(frozen=True)
class BankConfig:
    """What a bank contains; with the seed it determines every kernel.

    Attributes:
        family: ``"motion"`` (random trajectories) or ``"linear"`` (straight lines).
        n: number of kernels.
        size: kernel size K in pixels.
        params: the family's parameters: :class:`~blurgen.kernels.MotionModel` fields for
            ``motion``; ``length`` and ``angle`` for ``linear``.
    """

    family: str
    n: int
    size: int
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown kernel family {self.family!r}; choose one of {FAMILIES}")
        if int(self.n) != self.n or self.n < 1:
            raise ValueError(f"a bank needs at least one kernel, got n={self.n!r}")
        check_size(self.size)
        if self.family == "motion":
            MotionModel(**self.params)

    def to_json(self) -> str:
        """The config as JSON, with the motion model fully resolved (defaults included)."""
        params = self.params
        if self.family == "motion":
            params = MotionModel(**self.params).resolved(self.size)
        return json.dumps(
            {"family": self.family, "n": self.n, "size": self.size, "params": params},
            sort_keys=True,
        )


def generate(
    config: BankConfig, seed: int, start: int, count: int, device: str = "cpu"
) -> np.ndarray:
    """Kernels ``start .. start + count - 1`` of a bank, as a (count, K, K) float32 NumPy array."""
    make = motion_kernels if config.family == "motion" else linear_kernels
    kernels = make(count, config.size, seed=seed, start=start, device=device, **config.params)
    return to_numpy(kernels)


def _compressed_chunks(
    config: BankConfig, seed: int, start: int, count: int, device: str = "cpu"
) -> list[bytes]:
    """Kernels ``start .. start + count - 1`` as the deflated bytes of their HDF5 chunks.

    Compressing where the kernels are made lets worker processes share the work and send back
    a few hundred bytes per kernel instead of ``4 K^2``. ``start`` is a multiple of the chunk.
    """
    kernels = generate(config, seed, start, count, device)
    rows = _chunk_rows(config)
    chunks = []
    for first in range(0, count, rows):
        block = np.zeros((rows, config.size, config.size), np.float32)
        # HDF5 stores the last, partial chunk at full size too.
        part = kernels[first : first + rows]
        block[: len(part)] = part
        chunks.append(deflated_chunk(block, _GZIP_LEVEL))
    return chunks


def write_bank(
    path: str | os.PathLike,
    config: BankConfig,
    seed: int = 0,
    *,
    device: str = "cpu",
    chunk: int = 4096,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate a bank into ``path``, resuming an interrupted run of the same config and seed.

    The kernels go to ``<path>.partial`` in chunks, each flushed with the count done so far; the
    file is renamed to ``path`` only when complete. After Ctrl-C or a crash, calling again with
    the same arguments continues where the partial file ends.

    Args:
        path: output ``.h5`` file.
        config: family, count, size and parameters.
        seed: root seed.
        device: ``"cpu"`` or ``"cuda"`` for generation.
        chunk: kernels generated per step, rounded up to a multiple of the HDF5 chunk (16
            kernels); bounds memory: ``chunk * K * K * 4`` bytes and the generator's working
            arrays, per worker.
        workers: processes generating chunks in parallel on the CPU (the file is written by
            this process, in order). The bank does not depend on it.
        overwrite: replace an existing file at ``path``; without it an existing file is an error.
        progress: called with the number of kernels added after each chunk.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        FileNotFoundError, PermissionError: the output folder is missing or read-only.
    """
    path = check_output_path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"'{path}' already exists; pass --overwrite to replace it")
    temporary = partial_path(path)
    config_json = config.to_json()
    done = resumable_count(path, config, seed)
    mode = "a" if done else "w"
    with h5py.File(temporary, mode) as f:
        if not done:
            f.create_dataset(
                "kernels",
                shape=(config.n, config.size, config.size),
                dtype=np.float32,
                chunks=(_chunk_rows(config), config.size, config.size),
                compression="gzip",
                compression_opts=_GZIP_LEVEL,
            )
            f.attrs["schema"] = SCHEMA
            f.attrs["config"] = config_json
            f.attrs["seed"] = int(seed)
            f.attrs["blurgen_version"] = blurgen.__version__
            f.attrs["n_done"] = 0
        elif progress is not None:
            progress(done)
        dataset = f["kernels"]
        rows = _chunk_rows(config)
        chunk = -(-chunk // rows) * rows
        steps = [(start, min(chunk, config.n - start)) for start in range(done, config.n, chunk)]
        try:
            with interrupt_between_steps() as check_interrupt:
                for start, count, compressed in _generate_chunks(
                    config, seed, steps, device, workers
                ):
                    for j, data in enumerate(compressed):
                        dataset.id.write_direct_chunk((start + j * rows, 0, 0), data)
                    f.attrs["n_done"] = start + count
                    f.flush()
                    if progress is not None:
                        progress(count)
                    check_interrupt()
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"{int(f.attrs['n_done'])} of {config.n} kernels are in '{temporary}'; "
                "run the same command again to resume"
            ) from None
        del f.attrs["n_done"]
    os.replace(temporary, path)
    return path


def _chunk_rows(config: BankConfig) -> int:
    """Kernels per HDF5 chunk of a bank (a chunk may not exceed the dataset)."""
    return min(_H5_CHUNK, config.n)


def _generate_chunks(
    config: BankConfig, seed: int, steps: list[tuple[int, int]], device: str, workers: int
) -> Iterator[tuple[int, int, list[bytes]]]:
    """``(start, count, compressed HDF5 chunks)`` for each ``(start, count)`` step, in order."""
    jobs = [(config, seed, start, count, device) for start, count in steps]
    parallel = workers if device == "cpu" and len(steps) > 1 else 1
    for (start, count), compressed in zip(
        steps, ordered_map(_compressed_chunks, jobs, parallel), strict=True
    ):
        yield start, count, compressed


def resumable_count(path: str | os.PathLike, config: BankConfig, seed: int) -> int:
    """Kernels already in the partial file of a bank at ``path`` with this config and seed.

    Returns 0 when there is none, or when it belongs to another config or seed, or cannot be
    read: :func:`write_bank` then starts afresh.
    """
    temporary = partial_path(path)
    if not temporary.exists():
        return 0
    try:
        with h5py.File(temporary, "r") as f:
            same = (
                f.attrs.get("schema") == SCHEMA
                and f.attrs.get("config") == config.to_json()
                and int(f.attrs.get("seed", -1)) == int(seed)
            )
            return int(f.attrs.get("n_done", 0)) if same else 0
    except OSError:
        # A partial file a crash left unreadable holds nothing worth keeping.
        return 0


def read_bank(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Load a kernel bank.

    Returns:
        ``(kernels, info)``: (N, K, K) float32 kernels and a dict with ``schema``, ``config``
        (parsed JSON), ``seed`` and ``blurgen_version``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5, is damaged, or is not a complete
            ``blurgen-kernels/1`` bank.
    """
    with open_hdf5(path) as f:
        schema = f.attrs.get("schema")
        if schema != SCHEMA or "kernels" not in f:
            raise ValueError(f"'{path}' is not a blurgen kernel bank (schema {schema!r})")
        kernels = f["kernels"][...]
        info = {
            "schema": schema,
            "config": json.loads(f.attrs["config"]),
            "seed": int(f.attrs["seed"]),
            "blurgen_version": str(f.attrs["blurgen_version"]),
        }
    return kernels, info


def kernel_grid(kernels: np.ndarray, columns: int = 8, cell: int = 96, gap: int = 2) -> np.ndarray:
    """A picture of kernels side by side, for people to look at.

    Each kernel is scaled to its own maximum and shown with a square-root tone curve (faint
    trails stay visible) in the inferno colour map, enlarged to ``cell`` px without smoothing.

    Args:
        kernels: (N, K, K) non-negative kernels.
        columns: kernels per row.
        cell: size in pixels of each enlarged kernel.
        gap: pixels between kernels.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    kernels = np.asarray(kernels, np.float32)
    n = len(kernels)
    if n == 0:
        raise ValueError("no kernels to show")
    columns = min(columns, n)
    rows = -(-n // columns)
    peak = kernels.reshape(n, -1).max(axis=1)
    toned = np.sqrt(kernels / np.where(peak > 0, peak, 1)[:, None, None])
    grey = np.round(toned * 255).astype(np.uint8)
    step = cell + gap
    canvas = np.full((rows * step + gap, columns * step + gap, 3), 40, np.uint8)
    for i, k in enumerate(grey):
        tile = cv2.resize(k, (cell, cell), interpolation=cv2.INTER_NEAREST)
        rgb = cv2.cvtColor(cv2.applyColorMap(tile, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        r, c = divmod(i, columns)
        canvas[gap + r * step : gap + r * step + cell, gap + c * step : gap + c * step + cell] = rgb
    return canvas


def save_preview(path: str | os.PathLike, kernels: np.ndarray, columns: int = 8) -> Path:
    """Write :func:`kernel_grid` of ``kernels`` to a PNG file, atomically."""
    return write_png(path, kernel_grid(kernels, columns=columns))
