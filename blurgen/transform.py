"""Params, then apply: draw a blur once, then apply it to an image and to its targets.

As in albumentations (``get_params``, then ``apply``) and kornia (parameters generated, then
applied, and reused for masks): :meth:`BlurTransform.draw` draws every random choice of a blur
into a :class:`BlurRecord` (the kernel or shake, the highlight boost, the noise seed, the JPEG
quality...), and :meth:`BlurTransform.apply` renders it with no randomness of its own, on the
image (the whole degradation) or on a label map (the same geometry, nothing else).

Example::

    t = BlurTransform.from_preset("camera-shake")
    record = t.draw(0, image.shape[:2])
    blurred = t.apply(image, record)            # same size and dtype as image
    labels = t.apply(mask, record, target="mask")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import presets
from .backend import check_device, to_numpy, xp_for_device
from .color import as_uint, as_unit_float
from .forward import valid_offset
from .methods.base import LearnedBlur, to_uint8
from .sample import SampleConfig, SampleRecord, Synthesiser

TARGETS = ("image", "mask")


@dataclass(frozen=True)
class BlurRecord:
    """Every random choice of one blur of an image of ``shape``.

    Attributes:
        sample: the method, the degradation's values and what the method drew (a camera
            shake); its origin is (0, 0) and it has no flips (a transform takes the image as
            it is given).
        kernel: (K, K) float32 kernel on the host (the point-spread function at the centre for
            camera shake; zeros for learned blur).
        shape: (height, width) of the images it applies to, px.
    """

    sample: SampleRecord
    kernel: np.ndarray
    shape: tuple[int, int]

    @property
    def method(self) -> str:
        """The blur method's name."""
        return self.sample.method


class BlurTransform:
    """One config's blur as a transform: :meth:`draw`, then :meth:`apply`.

    Args:
        config: a :class:`~blurgen.sample.SampleConfig` or
            :class:`~blurgen.pipeline.DatasetConfig` (its patch and count are not used; nor
            are its flips: crops and flips are the caller's, before the blur).
        boundary: how the blur treats the image's borders: ``"reflect"`` (the default) and
            ``"wrap"`` keep the size, so the input is its own aligned sharp target;
            ``"valid"`` keeps only pixels whose whole neighbourhood is inside (K - 1 px
            smaller; ``apply(sharp, record, target="mask")`` cuts the aligned sharp target);
            None keeps the config's.
        learned: the learned blur for a config that draws one (by default its checkpoint,
            loaded on ``device``).
        device: ``"cpu"`` or ``"cuda"`` (kernels and convolutions; the randomness stays on
            the host, so the same seed gives the same blur).
    """

    def __init__(
        self, config: Any, *, boundary: str | None = "reflect",
        learned: LearnedBlur | None = None, device: str = "cpu",
    ) -> None:  # fmt: skip
        degradation = config.degradation
        if boundary is not None:
            degradation = replace(degradation, boundary=boundary)
        self.config = config.sample_config(flips=False, degradation=degradation)
        self.device = check_device(device)
        if learned is None:
            learned = next((m.load(self.config, device) for m in self.config.blur_methods()
                            if m.learned), None)  # fmt: skip
        self.synthesiser = Synthesiser(self.config, learned, self.device)

    @classmethod
    def from_preset(cls, name_or_path: str | os.PathLike, **options: Any) -> BlurTransform:
        """The transform of a shipped preset (``"camera-shake"``, ``"deblurgan"``,
        ``"none"``) or of a YAML or JSON file of settings (see :func:`blurgen.presets.load`);
        ``options`` as for the constructor."""
        return cls(presets.load(name_or_path), **options)

    @classmethod
    def from_dict(cls, values: dict, **options: Any) -> BlurTransform:
        """The transform of a config as ``to_dict`` writes it (a pairs file's ``config``
        attribute); ``options`` as for the constructor."""
        keys = {"patch", "per_image"}
        return cls(SampleConfig.from_dict({k: v for k, v in values.items() if k not in keys}),
                   **options)  # fmt: skip

    def draw(self, seed_or_rng: int | np.random.Generator, shape: tuple[int, int]) -> BlurRecord:
        """Draw every random choice of a blur of an image of ``shape`` (height, width).

        Args:
            seed_or_rng: a seed (>= 0) or a NumPy generator (advanced by the draws).
            shape: the image's (height, width), px.
        """
        rng = (seed_or_rng if isinstance(seed_or_rng, np.random.Generator)
               else np.random.default_rng(seed_or_rng))  # fmt: skip
        shape = (int(shape[0]), int(shape[1]))
        (record,), kernels = self.synthesiser.draw([rng], [shape], None)
        return BlurRecord(record, np.asarray(to_numpy(kernels[0]), np.float32), shape)

    def apply(self, image: np.ndarray, record: BlurRecord, target: str = "image") -> np.ndarray:
        """Apply a drawn blur.

        Args:
            image: for ``target="image"``, (H, W, 3) RGB, uint8, uint16 or float in [0, 1]
                (sRGB-encoded, as photos are stored); for ``target="mask"``, (H, W) or
                (H, W, C) of any dtype (labels, flow, depth).
            record: from :meth:`draw` for this (H, W).
            target: ``"image"``: the whole degradation (blur, noise, saturation, 8-bit
                rounding, JPEG, as the config says); ``"mask"``: the same geometry only, the
                values untouched (no blur, no noise, labels stay labels).

        Returns:
            The same dtype as ``image``: as large, or with the ``"valid"`` boundary K - 1 px
            smaller, cut from the centre.
        """
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if tuple(image.shape[:2]) != record.shape:
            raise ValueError(f"the record was drawn for {record.shape[0]}x{record.shape[1]} px "
                             f"images, got {image.shape[0]}x{image.shape[1]}")  # fmt: skip
        size = record.kernel.shape[-1]
        if target == "mask":
            if self.config.degradation.boundary != "valid":
                return image.copy()
            o, (height, width) = valid_offset(size), record.shape
            return image[o : o + height - size + 1, o : o + width - size + 1].copy()
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"images are (H, W, 3) RGB, got shape {image.shape}")
        kind = np.dtype(image.dtype)
        if kind not in (np.uint8, np.uint16) and kind.kind != "f":
            raise ValueError(f"images are uint8, uint16 or float in [0, 1], got {kind}")
        kernel = xp_for_device(self.device).asarray(record.kernel)
        wanted = np.uint8 if kind == np.uint8 else np.float32
        blurred = to_numpy(self.synthesiser.render(image, kernel, record.sample, dtype=wanted)[1])
        if kind == np.uint8:
            return to_uint8(blurred)
        blurred = as_unit_float(blurred)
        return as_uint(blurred, 16) if kind == np.uint16 else blurred.astype(kind, copy=False)
