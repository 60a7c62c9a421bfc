"""Torch datasets over blurgen files, for the deblur trainer and anyone's training code."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from blurgen.h5 import open_pairs
from blurgen.io import open_hdf5


class PairsDataset(Dataset):
    """Blurred/sharp pairs from one or more pairs files (``blurgen-pairs/1`` or ``/2``).

    Files are opened lazily, once per process, so the dataset works in DataLoader workers
    (each opens its own handles). Indexing draws the augmentations from torch's generator,
    which DataLoader seeds per worker, so runs are reproducible under ``torch.manual_seed``;
    :meth:`item` takes them from a given NumPy generator instead.

    Args:
        paths: pairs files, concatenated in order.
        crop: side of a random crop taken from both images at the same place; None for the
            whole patch.
        flip: random horizontal and vertical flips, the same for both images.
        transpose: random transposes (rows and columns swapped), the same for both images;
            with ``flip``, each pair is seen in all 8 orientations of the square (its four 90°
            rotations and their mirrors), each as likely. blurgen's patches are square.

    Items are dicts: ``blurred`` and ``sharp`` as float32 (3, H, W) tensors in [0, 1], and
    ``index``, the pair's position in the concatenation.
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
        if crop is not None and crop > min(sides):
            raise ValueError(f"crop {crop} is larger than the {min(sides)} px patches")
        self.crop = crop
        self.flip = flip
        self.transpose = transpose
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

    def __getitem__(self, index: int) -> dict:
        seed = int(torch.randint(0, 2**62, ()))
        return self.item(index, np.random.default_rng(seed))

    def item(self, index: int, rng: np.random.Generator) -> dict:
        """Pair ``index`` (an item as described above), cropped, flipped and transposed as
        ``rng`` draws."""
        if not 0 <= index < len(self):
            raise IndexError(f"pair {index} out of range for {len(self)} pairs")
        number = int(np.searchsorted(self.ends, index, side="right"))
        row = index - (int(self.ends[number - 1]) if number else 0)
        f = self._file(number)
        if self.crop is None:
            blurred, sharp = f["blurred"][row], f["sharp"][row]
        else:
            # Only the crop is read from the file.
            y, x = (int(v) for v in rng.integers(0, f["sharp"].shape[1] - self.crop + 1, 2))
            window = np.s_[row, y : y + self.crop, x : x + self.crop]
            blurred, sharp = f["blurred"][window], f["sharp"][window]
        horizontal, vertical, transpose = rng.random(3) < 0.5
        if self.flip and horizontal:
            blurred, sharp = blurred[:, ::-1], sharp[:, ::-1]
        if self.flip and vertical:
            blurred, sharp = blurred[::-1], sharp[::-1]
        if self.transpose and transpose:
            blurred, sharp = blurred.transpose(1, 0, 2), sharp.transpose(1, 0, 2)
        return {"blurred": _tensor(blurred), "sharp": _tensor(sharp), "index": index}


class StepBatches(Dataset):
    """Training batches by step, for a DataLoader: item ``step`` is that step's batch.

    Step ``s`` draws its pairs (with replacement, from ``index``) from
    ``default_rng([seed, s])`` and the crop, flips and transpose of its k-th pair from
    ``default_rng([seed, s, k])``, so a batch depends on the seed and the step alone: not on
    the number of workers that load it, nor on where a run was resumed, nor on how many
    training processes share it (each loads only its ``share``).

    Args:
        pairs: the dataset, with its augmentation settings.
        index: the pairs to draw from (positions in ``pairs``).
        batch: pairs per step, over all training processes.
        seed: the run's seed.
        share: the items this process loads (all by default).

    Items are ``(blurred, sharp)``, float32 (len(share), 3, H, W) tensors in [0, 1].
    """

    def __init__(
        self,
        pairs: PairsDataset,
        index: np.ndarray,
        batch: int,
        seed: int,
        share: slice | None = None,
    ) -> None:
        if len(index) == 0:
            raise ValueError("no pairs to train on")
        self.pairs, self.index, self.batch, self.seed = pairs, np.asarray(index), batch, seed
        self.share = range(batch)[share or slice(None)]

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = np.random.default_rng([self.seed, step]).choice(self.index, size=self.batch)
        items = [self.pairs.item(int(chosen[k]), np.random.default_rng([self.seed, step, k]))
                 for k in self.share]  # fmt: skip
        return (torch.stack([item["blurred"] for item in items]),
                torch.stack([item["sharp"] for item in items]))  # fmt: skip


def _tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 to a (3, H, W) float32 tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)


class ImagePatches:
    """Random patches from a folder of photos, for unpaired training (held in memory).

    Images that cannot be read (damaged, truncated), or are smaller than a patch, are skipped
    with a warning naming them, or stop with ValueError when ``strict``. Crops and flips come
    from the generator passed to :meth:`sample`.

    Args:
        folder: a folder (searched recursively), an image file, or a ``.txt`` list of paths.
        patch: side of the square patches in pixels.
        strict: stop at the first unusable image.
    """

    def __init__(self, folder: str | os.PathLike, patch: int, strict: bool = False) -> None:
        from blurgen.io import read_image
        from blurgen.pipeline import expand_sources

        self.patch = patch
        self.strict = strict
        self.images: list[np.ndarray] = []
        self.skipped: list[str] = []
        for path in expand_sources([folder]):
            try:
                image = read_image(path)
            except (OSError, ValueError) as exc:
                self._skip(str(exc))
                continue
            if min(image.shape[:2]) < patch:
                self._skip(f"'{path}': smaller than a {patch} px patch {image.shape[:2]}")
                continue
            self.images.append(image)
        if not self.images:
            raise ValueError(f"no usable images of at least {patch} px in '{folder}'")

    def _skip(self, reason: str) -> None:
        if self.strict:
            raise ValueError(f"{reason} (stopped: --strict)")
        self.skipped.append(reason)
        logging.getLogger("blurgen").warning("skipped %s", reason)

    def sample(self, count: int, rng: np.random.Generator) -> torch.Tensor:
        """(count, 3, patch, patch) float32 tensor in [0, 1]: random images, crops and flips."""
        out = np.empty((count, self.patch, self.patch, 3), np.float32)
        for k in range(count):
            image = self.images[int(rng.integers(len(self.images)))]
            y = int(rng.integers(image.shape[0] - self.patch + 1))
            x = int(rng.integers(image.shape[1] - self.patch + 1))
            crop = image[y : y + self.patch, x : x + self.patch]
            flips = rng.random(2) < 0.5
            crop = crop[:, ::-1] if flips[0] else crop
            out[k] = crop[::-1] if flips[1] else crop
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
