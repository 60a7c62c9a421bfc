"""A column of the pairs file, as whoever owns it declares it: the synthesiser's own columns
(:mod:`blurgen.h5`), the degradation's (:mod:`blurgen.degradation`) and each blur method's
(:mod:`blurgen.methods`). The writer lays files out from them, and the docs' table of the
format is made from them (:func:`blurgen.h5.schema_table`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Columns stored compressed, a chunk a row: shuffled, then deflated at this level (h5py's gzip
# default, given explicitly since blurgen.h5.deflate_rows compresses rows beforehand to match).
DEFLATE_LEVEL = 4
PACKED = {"compression": "gzip", "compression_opts": DEFLATE_LEVEL, "shuffle": True}
# Rows to a chunk of a small per-sample column.
COLUMN_CHUNK_ROWS = 4096


@dataclass(frozen=True)
class Column:
    """One per-sample dataset of a pairs file.

    Attributes:
        dtype: its NumPy dtype.
        shape: its shape after the first axis (N, one row a sample).
        notes: what it holds, for the docs (units, order, what zeros mean).
        options: h5py's creation options (chunks, compression); by default chunks of
            :data:`COLUMN_CHUNK_ROWS` rows.
    """

    dtype: np.dtype
    shape: tuple[int, ...]
    notes: str
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        if "chunks" not in self.options:
            options = {"chunks": (COLUMN_CHUNK_ROWS, *self.shape), **self.options}
            object.__setattr__(self, "options", options)

    @property
    def compressed(self) -> bool:
        """Whether the file compresses it (a chunk a row; see :data:`PACKED`)."""
        return "compression" in self.options

    @property
    def row_bytes(self) -> int:
        """Bytes of one row, uncompressed."""
        return self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
