"""What the trainers load: the deblur trainer's batches by step, drawn from pairs (files, a
:class:`blurgen.torch.PairsDataset`, or made on the fly, a :class:`blurgen.torch.SyntheticPairs`),
and BGAN's random patches of photos."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from blurgen.torch import AugmentedPairs


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
        pairs: AugmentedPairs,
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
        items = self.pairs.items([int(chosen[k]) for k in self.share],
                                 [np.random.default_rng([self.seed, step, k])
                                  for k in self.share])  # fmt: skip
        return (torch.stack([item["blurred"] for item in items]),
                torch.stack([item["sharp"] for item in items]))  # fmt: skip


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
