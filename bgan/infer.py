"""Using trained networks: blur sharp images with a BGAN, deblur with a DBGAN.

Both load a training checkpoint (``checkpoints/latest.pt``) or the generator alone that every
run writes beside its checkpoints (``generator.pt``: weights and their configuration, a few MB,
nothing to resume with). ``builtin:NAME`` names a generator shipped with blurgen
(:data:`BUILTIN`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blurgen.color import as_unit_float
from blurgen.methods.learned import BUILTIN_PREFIX

from .files import read_torch_file
from .nets import KernelBlurGenerator, blur_generator, deblur_generator

KINDS = {"bgan": "a BGAN", "dbgan": "a deblurring (DBGAN)"}
# Pixels of whole images that go through the generator in one call, with their noise when it is
# drawn here (blur_seeded): 4 patches of 256 px. A job's learned samples (up to 128) once went
# in one call with all their noise (11 floats a pixel with sensor noise), and make-dataset's
# peak memory grew with the dataset: 1.1, 2.0, 3.1 GB for 32, 128, 512 pairs.
WHOLE_IMAGE_PIXELS = 1 << 18
# Generators shipped in the package, by name (see docs/benchmarks.md for how each was trained).
WEIGHTS = Path(__file__).resolve().parent / "weights"
BUILTIN = {"lai2016": WEIGHTS / "bgan-lai2016.pt"}


def resolve(path: str | os.PathLike) -> Path:
    """The file of a checkpoint given by path or as ``builtin:NAME``.

    Raises:
        ValueError: an unknown builtin name.
    """
    text = str(path)
    if not text.startswith(BUILTIN_PREFIX):
        return Path(path)
    name = text[len(BUILTIN_PREFIX) :]
    if name not in BUILTIN:
        raise ValueError(f"no builtin generator {name!r}; there are: {', '.join(BUILTIN)}")
    return BUILTIN[name]


# Networks by checkpoint kind, and what a checkpoint whose generator names no arch meant: the
# resnet, for BGANs from before noise maps with the paper's vector.
NETWORKS = {"bgan": blur_generator, "dbgan": deblur_generator}
LEGACY_CONFIG = {"bgan": {"arch": "resnet", "noise": "vector"}, "dbgan": {"arch": "resnet"}}


def load_generator(path: str | os.PathLike, kind: str) -> torch.nn.Module:
    """The generator of ``kind`` (``"bgan"`` or ``"dbgan"``) in a training checkpoint, or in
    its exported ``generator.pt``; ``path`` may be ``builtin:NAME``.

    Raises:
        FileNotFoundError: no such file. ValueError: unreadable, or not a checkpoint of that
            kind.
    """
    path = resolve(path)
    state = read_torch_file(path, "checkpoint")
    if not isinstance(state, dict) or state.get("kind") not in (kind, f"{kind}-generator"):
        raise ValueError(f"'{path}' is not {KINDS[kind]} checkpoint")
    config = state["generator_config"]
    if "arch" not in config:
        config = {**LEGACY_CONFIG[kind], **config}
    generator = NETWORKS[kind](**config)
    generator.load_state_dict(state["generator"])
    return generator


class BlurGAN:
    """A trained blur generator.

    Example:
        >>> gan = BlurGAN.load("run/checkpoints/latest.pt")          # doctest: +SKIP
        >>> blurred = gan.blur(sharp, seed=3)                        # doctest: +SKIP
    """

    def __init__(self, generator: torch.nn.Module, device: str = "cpu", tile: int = 512) -> None:
        self.generator = generator.to(device).eval()
        self.device = torch.device(device)
        if tile <= 4 * generator.reach:
            raise ValueError(f"tile must be over {4 * generator.reach} px for this network "
                             f"(four times its reach), got {tile}")  # fmt: skip
        self.tile = tile

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> BlurGAN:
        """The generator of a BGAN training checkpoint or ``generator.pt`` (or
        ``builtin:NAME``).

        Raises:
            FileNotFoundError, ValueError: no such file, or not a BGAN checkpoint.
        """
        return cls(load_generator(path, "bgan"), device)

    def noise(self, seeds: Sequence[Any], height: int, width: int) -> np.ndarray:
        """The generator's noise for images of H x W px, one per seed: (N, *noise_shape)
        float32 standard normal, drawn in float64 from ``default_rng(seed)`` and rounded (the
        generator computes in float32)."""
        shape = self.generator.noise_shape(height, width)
        z = np.empty((len(seeds), *shape), np.float32)
        for k, seed in enumerate(seeds):
            z[k] = np.random.default_rng(seed).standard_normal(shape)
        return z

    def images_per_call(self, height: int, width: int) -> int:
        """How many images of H x W px go through the generator at once (at least one)."""
        return max(1, WHOLE_IMAGE_PIXELS // (height * width))

    @torch.no_grad()
    def blur(self, sharp: np.ndarray, seed: int = 0) -> np.ndarray:
        """Blur sharp images; image ``i`` gets its noise from ``default_rng([seed, i])``.

        Args:
            sharp: (H, W, 3) or (N, H, W, 3) RGB: float in [0, 1], or uint8 / uint16 (scaled
                to [0, 1]).
            seed: non-negative integer.

        Returns:
            float32 array of the same shape, in [0, 1].
        """
        images = np.asarray(sharp)
        single = images.ndim == 3
        batch = images[None] if single else images
        result = self.blur_seeded(batch, [[seed, i] for i in range(len(batch))])
        return result[0] if single else result

    @torch.no_grad()
    def blur_seeded(self, sharp: np.ndarray, seeds: Sequence[Any]) -> np.ndarray:
        """Blur (N, H, W, 3) images (float in [0, 1], or uint8 / uint16, scaled), image ``i``
        with the noise of ``seeds[i]`` (:meth:`noise`): :meth:`blur_with` that noise, drawn
        for :meth:`images_per_call` images at a time, so memory does not grow with N.

        Returns:
            float32 (N, H, W, 3) in [0, 1].
        """
        as_unit_float(sharp[:0])  # refuses other integer types before any work
        count, height, width = sharp.shape[:3]
        if len(seeds) != count:
            raise ValueError(f"{count} images need {count} noise seeds, got {len(seeds)}")
        out = np.empty((count, height, width, 3), np.float32)
        group = self.images_per_call(height, width)
        for i in range(0, count, group):
            z = self.noise(seeds[i : i + group], height, width)
            out[i : i + group] = self.blur_with(sharp[i : i + group], z)
        return out

    @torch.no_grad()
    def blur_with(self, sharp: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Blur (N, H, W, 3) images (float in [0, 1], or uint8 / uint16, scaled) with given
        noise z (N, *noise_shape(H, W)); float32 (N, H, W, 3) in [0, 1].

        A resnet generator runs on images larger than ``tile`` px in overlapping tiles that
        overlap by twice the network's reach, so the result equals running on the whole image
        while memory stays bounded (the network's features are 32-64 channels per pixel). A
        kernel generator's kernels depend on all of an image's noise, so it takes whole
        images, :meth:`images_per_call` at a time (its blur bounds its own memory). The noise
        of all N images is given at once: for many images, :meth:`blur_seeded` draws it a
        call at a time."""
        as_unit_float(sharp[:0])  # refuses other integer types before any work
        count, height, width = sharp.shape[:3]
        out = np.empty((count, height, width, 3), np.float32)
        z = np.asarray(z)
        if isinstance(self.generator, KernelBlurGenerator):
            group = self.images_per_call(height, width)
            for i in range(0, count, group):
                out[i : i + group] = self._run(sharp[i : i + group], z[i : i + group])
            return out
        step, reach = self.generator.scale, self.generator.reach
        for y0, y1, (a, b) in _cell_spans(height, self.tile, reach, step):
            for x0, x1, (c, d) in _cell_spans(width, self.tile, reach, step):
                noise = z if z.ndim == 2 else z[:, :, y0:y1, x0:x1]
                result = self._run(sharp[:, y0:y1, x0:x1], noise)
                out[:, y0 + a : y0 + b, x0 + c : x0 + d] = result[:, a:b, c:d]
        return out

    def _run(self, sharp: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The generator on (N, H, W, 3) images and their noise: float32 (N, H, W, 3)."""
        images = np.ascontiguousarray(as_unit_float(sharp), np.float32)
        result = self.generator(
            torch.from_numpy(images).permute(0, 3, 1, 2).to(self.device),
            torch.as_tensor(z, dtype=torch.float32, device=self.device),
        )
        return result.permute(0, 2, 3, 1).float().cpu().numpy()


class BganBlur:
    """A picklable learned blur for dataset workers: loads its checkpoint on first use (once,
    whatever the number of threads calling it).

    Calling it with (N, P, P, 3) float patches in [0, 1] and (N,) noise seeds returns the
    blurred patches, float32 in [0, 1] (the noise of patch i drawn from ``default_rng(seed i)``,
    see :meth:`BlurGAN.noise`).
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        self.path, self.device = str(path), device
        self._gan: BlurGAN | None = None
        self._loading = threading.Lock()
        if not resolve(path).is_file():
            raise FileNotFoundError(f"BGAN checkpoint '{resolve(path)}' not found")

    def __getstate__(self) -> dict:
        # Workers reload the checkpoint rather than receive the network.
        return {"path": self.path, "device": self.device, "_gan": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _loading=threading.Lock())

    def __call__(self, patches: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        with self._loading:
            if self._gan is None:
                self._gan = BlurGAN.load(self.path, self.device)
        return self._gan.blur_seeded(patches, [int(s) for s in seeds])


class Deblurrer:
    """A trained deblurring generator, applied in overlapping tiles so memory stays bounded.

    Each tile contributes only its centre (``overlap // 2`` px are dropped on sides that touch
    another tile), so the result equals running on the whole image whenever the network's
    receptive field is under ``overlap // 2`` px, and stays close otherwise.

    Args:
        generator: a deblurring generator (:func:`~blurgen.bgan.nets.deblur_generator`).
        device: ``"cpu"`` or ``"cuda"``.
        tile: tile side in pixels. overlap: pixels shared by neighbouring tiles (even, < tile);
            by default about half the tile (even), at most 64.
    """

    def __init__(self, generator: torch.nn.Module, device: str = "cpu", tile: int = 512,
                 overlap: int | None = None) -> None:  # fmt: skip
        if overlap is None:
            overlap = min(64, tile // 4 * 2)
        if not 0 <= overlap < tile or overlap % 2:
            raise ValueError(f"overlap must be even and smaller than the tile, got {overlap}")
        self.generator = generator.to(device).eval()
        self.device, self.tile, self.overlap = torch.device(device), tile, overlap

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu", **tiling: int | None) -> Deblurrer:
        """The generator of a deblurring checkpoint (``kind`` ``"dbgan"``)."""
        return cls(load_generator(path, "dbgan"), device, **tiling)

    @torch.no_grad()
    def deblur(self, image: np.ndarray) -> np.ndarray:
        """Deblur one (H, W, 3) image: float in [0, 1], or uint8 / uint16 (scaled to [0, 1],
        tile by tile). Returns float32 (H, W, 3) in [0, 1]."""
        as_unit_float(image[:0])  # refuses other integer types before any work
        height, width = image.shape[:2]
        out = np.empty((height, width, 3), np.float32)
        for y0, y1, keep_y in _spans(height, self.tile, self.overlap):
            for x0, x1, keep_x in _spans(width, self.tile, self.overlap):
                tile = as_unit_float(image[y0:y1, x0:x1])
                tile = torch.from_numpy(np.ascontiguousarray(tile, np.float32))
                result = self.generator(tile.permute(2, 0, 1)[None].to(self.device))
                result = result[0].permute(1, 2, 0).float().cpu().numpy()
                (a, b), (c, d) = keep_y, keep_x
                out[y0 + a : y0 + b, x0 + c : x0 + d] = result[a:b, c:d]
        return out


def _cell_spans(
    length: int, tile: int, reach: int, step: int
) -> list[tuple[int, int, tuple[int, int]]]:
    """:func:`_spans` for a network that works on ``step`` x ``step`` cells: tiles start on
    the cells' grid, so each sees the cells the whole image would, and keep what lies at least
    ``reach`` px from a neighbour's side."""
    units = -(-length // step)
    spans = []
    for start, stop, (keep_from, keep_to) in _spans(units, tile // step, 2 * -(-reach // step)):
        begin = start * step
        spans.append((begin, min(stop * step, length),
                      (keep_from * step, min(keep_to * step, length - begin))))  # fmt: skip
    return spans


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, tuple[int, int]]]:
    """Tile spans ``(start, stop, (keep_from, keep_to))`` covering ``range(length)`` once.

    Kept regions drop ``overlap // 2`` px where a tile meets a neighbour, and meet exactly.
    """
    tile = min(tile, length)
    if tile == length:
        return [(0, length, (0, length))]
    starts = list(range(0, length - tile, tile - overlap)) + [length - tile]
    spans = []
    for k, start in enumerate(starts):
        keep_from = 0 if k == 0 else (starts[k - 1] + tile + start) // 2 - start
        keep_to = tile if k == len(starts) - 1 else (start + tile + starts[k + 1]) // 2 - start
        spans.append((start, start + tile, (keep_from, keep_to)))
    return spans
