"""PyTorch Datasets of blurred/sharp pairs, for the deblur trainer and anyone's training code:
:class:`PairsDataset` reads the pairs files that ``blurgen make-dataset`` writes, and
:class:`SyntheticPairs` makes the same pairs on the fly, in DataLoader workers. Their items are
alike, so training on files and on the fly differ only in where the pairs live.

This module imports torch (``import blurgen`` does not, so the rest of blurgen works without
it).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from . import presets
from .h5 import open_pairs
from .io import Photo, open_hdf5
from .methods.base import LearnedBlur
from .pipeline import check_learned, expand_sources, open_source, unusable, with_sources
from .sample import Synthesiser, sample_rng
from .video import Video

# Decoded photos a SyntheticPairs keeps per process: consecutive items of a source (and a
# shuffled epoch's repeats) skip decoding again; a 12-megapixel photo is 36 MB.
PHOTOS_KEPT = 4


class AugmentedPairs(Dataset):
    """The items and augmentations both Datasets share: a random crop, flips and transposes,
    the same for both images of a pair.

    Indexing draws the augmentations from torch's generator, which DataLoader seeds per worker,
    so runs are reproducible under ``torch.manual_seed``; :meth:`item` takes them from a given
    NumPy generator instead.

    Args:
        side: the pairs' side, px.
        crop: side of a random crop taken from both images at the same place; None for the
            whole patch.
        flip: random horizontal and vertical flips.
        transpose: random transposes (rows and columns swapped); with ``flip``, each pair is
            seen in all 8 orientations of the square (its four 90° rotations and their
            mirrors), each as likely. blurgen's patches are square.

    Items are dicts: ``blurred`` and ``sharp`` as float32 (3, H, W) tensors in [0, 1], and
    ``index``, the pair's position.
    """

    def __init__(self, side: int, crop: int | None, flip: bool, transpose: bool) -> None:
        if crop is not None and crop > side:
            raise ValueError(f"crop {crop} is larger than the {side} px patches")
        self.side = side
        self.crop = crop
        self.flip = flip
        self.transpose = transpose

    def __len__(self) -> int:
        raise NotImplementedError

    def window(self, index: int, rows: slice, columns: slice) -> tuple[np.ndarray, np.ndarray]:
        """Part of pair ``index``: ``(blurred, sharp)``, (h, w, 3) uint8."""
        raise NotImplementedError

    def side_of(self, index: int) -> int:
        """The side of pair ``index``, px."""
        return self.side

    def __getitem__(self, index: int) -> dict:
        return self.item(index, _torch_rng())

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """A DataLoader's batch at once (PyTorch asks for it where a Dataset has this
        method): the items of :meth:`items`, their augmentations drawn as indexing draws
        them."""
        return self.items(indices, [_torch_rng() for _ in indices])

    def items(self, indices: Sequence[int], rngs: Sequence[np.random.Generator]) -> list[dict]:
        """The items ``indices``, each augmented as its generator draws (as :meth:`item`);
        a Dataset that makes several pairs faster than one at a time overrides it."""
        return [self.item(int(index), rng) for index, rng in zip(indices, rngs, strict=True)]

    def item(self, index: int, rng: np.random.Generator) -> dict:
        """Pair ``index`` (an item as described above), cropped, flipped and transposed as
        ``rng`` draws."""
        if not 0 <= index < len(self):
            raise IndexError(f"pair {index} out of range for {len(self)} pairs")
        if self.crop is None:
            rows = columns = slice(None)
        else:
            y, x = (int(v) for v in rng.integers(0, self.side_of(index) - self.crop + 1, 2))
            rows, columns = slice(y, y + self.crop), slice(x, x + self.crop)
        blurred, sharp = self.window(index, rows, columns)
        horizontal, vertical, transpose = rng.random(3) < 0.5
        if self.flip and horizontal:
            blurred, sharp = blurred[:, ::-1], sharp[:, ::-1]
        if self.flip and vertical:
            blurred, sharp = blurred[::-1], sharp[::-1]
        if self.transpose and transpose:
            blurred, sharp = blurred.transpose(1, 0, 2), sharp.transpose(1, 0, 2)
        return {"blurred": _tensor(blurred), "sharp": _tensor(sharp), "index": index}


class PairsDataset(AugmentedPairs):
    """Blurred/sharp pairs from one or more pairs files (``blurgen-pairs/1`` to ``/4``).

    Files are opened lazily, once per process, so the dataset works in DataLoader workers
    (each opens its own handles); only a crop's pixels are read.

    Args:
        paths: pairs files, concatenated in order.
        crop, flip, transpose: as :class:`AugmentedPairs`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        crop: int | None = None,
        flip: bool = False,
        transpose: bool = False,
    ) -> None:
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise ValueError("PairsDataset needs at least one pairs file")
        lengths, sides = [], set()
        for path in self.paths:
            with open_pairs(path) as f:
                if not f.attrs.get("complete"):
                    raise ValueError(f"'{path}' is not complete (an interrupted run?)")
                lengths.append(len(f["sharp"]))
                sides.add(f["sharp"].shape[1])
        super().__init__(min(sides), crop, flip, transpose)
        self.ends = np.cumsum(lengths)
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self.ends[-1])

    def sources(self) -> np.ndarray:
        """(N, 2) int64: each pair's file (its position in ``paths``) and source image index in
        that file, for splitting by photo."""
        columns = []
        for number, path in enumerate(self.paths):
            with open_pairs(path) as f:
                source = f["source"][...].astype(np.int64)
            columns.append(np.stack([np.full_like(source, number), source], axis=1))
        return np.concatenate(columns)

    def __getstate__(self) -> dict:
        # Open HDF5 handles cannot cross into worker processes; each reopens its own.
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def _file(self, number: int) -> h5py.File:
        if os.getpid() != self._pid:  # a forked worker: the parent's handles are not ours
            self._handles, self._pid = {}, os.getpid()
        if number not in self._handles:
            self._handles[number] = open_hdf5(self.paths[number])
        return self._handles[number]

    def _row(self, index: int) -> tuple[h5py.File, int]:
        number = int(np.searchsorted(self.ends, index, side="right"))
        return self._file(number), index - (int(self.ends[number - 1]) if number else 0)

    def side_of(self, index: int) -> int:
        return self._row(index)[0]["sharp"].shape[1]

    def window(self, index: int, rows: slice, columns: slice) -> tuple[np.ndarray, np.ndarray]:
        # Only the window is read from the file.
        f, row = self._row(index)
        return f["blurred"][row, rows, columns], f["sharp"][row, rows, columns]


class SyntheticPairs(AugmentedPairs):
    """Pairs made on the fly from sharp photos: item ``i`` is the pair that
    ``blurgen make-dataset`` writes as pair ``i`` for the same sources, config and seed
    (sample ``i % per_image`` of source ``i // per_image``), byte for byte, before its
    augmentations.

    Each item is synthesised where it is asked for (in a DataLoader's workers), from its
    source's bytes, the config and the seed alone; nothing is written. A source that
    make-dataset would skip (unreadable, smaller than a crop) is an error naming it when one of
    its items is asked for: skipping it would renumber the pairs after it.

    Args:
        sources: image or video files, folders or ``.txt`` lists (see
            :func:`blurgen.pipeline.expand_sources`).
        preset: the preset the config starts from (a shipped name, ``"none"`` or a YAML file;
            see :func:`blurgen.presets.load`), unless ``config`` is given.
        patch, per_image, **settings: make-dataset settings over the preset's (by name, as
            its flags take them: ``read="0,0.01"``, ``kernel_size=51``).
        config: a :class:`~blurgen.pipeline.DatasetConfig` to use instead of a preset.
        seed: the root seed.
        crop, flip, transpose: as :class:`AugmentedPairs`.
        learned: the learned blur, for a config that draws one (by default its checkpoint,
            loaded on the CPU).
    """

    def __init__(
        self,
        sources: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        preset: str | os.PathLike = "camera-shake",
        patch: int | None = None,
        per_image: int | None = None,
        config: Any = None,
        seed: int = 0,
        crop: int | None = None,
        flip: bool = False,
        transpose: bool = False,
        learned: LearnedBlur | None = None,
        **settings: Any,
    ) -> None:
        if config is None:
            given = {"patch": patch, "per_image": per_image, **settings}
            config = presets.load(preset, **{k: v for k, v in given.items() if v is not None})
        elif patch is not None or per_image is not None or settings:
            raise ValueError("give a config, or a preset and settings, not both")
        items = [sources] if isinstance(sources, (str, os.PathLike)) else sources
        self.paths = [str(path) for path in expand_sources(items)]
        if not self.paths:
            raise ValueError(f"no images in {', '.join(map(str, items))}")
        config = with_sources(config, self.paths)
        super().__init__(config.patch, crop, flip, transpose)
        self.config = config
        self.seed = int(seed)
        if learned is None:
            learned = next((m.load(config, "cpu") for m in config.blur_methods() if m.learned),
                           None)  # fmt: skip
        check_learned(config, learned)
        self.synthesiser = Synthesiser(config, learned)
        self._photos: OrderedDict[str, Photo | Video] = OrderedDict()
        # Pairs made together for a batch (see items), until its items are cut from them.
        self._ready: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.paths) * self.config.per_image

    def sources(self) -> np.ndarray:
        """(N, 2) int64: 0 (one "file") and each pair's source image, for splitting by photo."""
        source = np.arange(len(self)) // self.config.per_image
        return np.stack([np.zeros_like(source), source], axis=1)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_photos"], state["_ready"] = OrderedDict(), {}
        return state

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` as the file holds it: ``(sharp, blurred)``, (P, P, 3) uint8 RGB.

        Raises:
            ValueError: its source cannot be used (the message names it and says why).
        """
        return self.pairs([index])[0]

    def pairs(self, indices: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Several pairs, as :meth:`pair`, made together: their kernels are drawn in batches
        (a trajectory kernel alone costs several times its share of a batch), the samples of
        at most :data:`PHOTOS_KEPT` photos at a time."""
        for index in indices:
            if not 0 <= index < len(self):
                raise IndexError(f"pair {index} out of range for {len(self)} pairs")
        wanted = {int(index): divmod(int(index), self.config.per_image) for index in indices}
        sources = sorted({source for source, _ in wanted.values()})
        made: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for first in range(0, len(sources), PHOTOS_KEPT):
            group = set(sources[first : first + PHOTOS_KEPT])
            chosen = [index for index, (source, _) in wanted.items() if source in group]
            photos = [self._photo(self.paths[wanted[index][0]]) for index in chosen]
            rngs = [sample_rng(self.seed, photo.fingerprint, wanted[index][1])
                    for photo, index in zip(photos, chosen, strict=True)]  # fmt: skip
            pairs = self.synthesiser.make(photos, rngs, self.config.crop)
            made.update({index: (pairs.sharp[k], pairs.blurred[k])
                         for k, index in enumerate(chosen)})  # fmt: skip
        return [made[int(index)] for index in indices]

    def items(self, indices: Sequence[int], rngs: Sequence[np.random.Generator]) -> list[dict]:
        self._ready = dict(zip(map(int, indices), self.pairs(indices), strict=True))
        try:
            return super().items(indices, rngs)
        finally:
            self._ready = {}

    def window(self, index: int, rows: slice, columns: slice) -> tuple[np.ndarray, np.ndarray]:
        sharp, blurred = self._ready[index] if index in self._ready else self.pair(index)
        return blurred[rows, columns], sharp[rows, columns]

    def _photo(self, path: str) -> Photo | Video:
        """The decoded photo (or opened video) at ``path``, from the last few a process
        opened."""
        if path in self._photos:
            self._photos.move_to_end(path)
            return self._photos[path]
        photo = open_source(path)
        reason = unusable(path, photo, self.config)
        if reason:
            raise ValueError(reason)
        self._photos[path] = photo
        while len(self._photos) > PHOTOS_KEPT:
            self._photos.popitem(last=False)
        return photo


def _torch_rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's (which DataLoader seeds per worker)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


def _tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 to a (3, H, W) float32 tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
