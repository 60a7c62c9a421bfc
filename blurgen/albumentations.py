"""blurgen's blur as an albumentations 2.x transform, for pipelines that make blurred/sharp pairs.

:class:`CameraShake` blurs ``image`` and leaves the sharp original, given as an extra image
target, as it is; placed after the flips and crops, both come out aligned pixel for pixel::

    import albumentations as A
    from blurgen.albumentations import CameraShake

    pairs = A.Compose(
        [A.HorizontalFlip(), A.RandomCrop(256, 256), CameraShake(p=1)],
        additional_targets={"sharp": "image"},
        seed=0,
    )
    out = pairs(image=photo, sharp=photo, mask=labels)
    out["image"], out["sharp"], out["mask"]     # blurred, sharp, labels: aligned, same size

An optional extra: ``pip install "blurgen[albumentations]"``. Importing :mod:`blurgen` does not
import albumentations; importing this module does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    import albumentations as A
    from albumentations.core.type_definitions import Targets
except ImportError as exc:
    raise ImportError(
        'blurgen.albumentations needs albumentations 2.x: pip install "blurgen[albumentations]"'
    ) from exc

from .transform import BlurRecord, BlurTransform

if int(A.__version__.split(".")[0]) != 2:
    # 1.x draws from the global random state and dispatches targets differently.
    raise ImportError(f"blurgen.albumentations needs albumentations 2.x, found {A.__version__}: "
                      'pip install "blurgen[albumentations]"')  # fmt: skip

__all__ = ["CameraShake"]

DEFAULT_PRESET = "camera-shake"
# Boundaries that keep the image's size: albumentations checks that every target of a call has
# one (H, W), and the sharp target keeps its size.
BOUNDARIES = ("reflect", "wrap")
# What an additional target may be declared as and still be left alone: the sharp original.
IMAGE_TARGETS = ("image", "images")


class CameraShake(A.DualTransform):
    """A blur of blurgen (a preset's or a config's), drawn once per call, on ``image`` only.

    Every call draws one :class:`~blurgen.transform.BlurRecord` for the image's (H, W) from
    the transform's own generator (``self.random_generator``, which ``A.Compose(seed=...)``
    seeds), and applies it:

    - ``image``: the whole degradation (blur, noise, JPEG... as the config says), as
      :meth:`BlurTransform.apply <blurgen.transform.BlurTransform.apply>` gives it;
    - ``images``: the same record on each image of the batch;
    - ``mask``, ``masks`` and additional targets declared as ``"mask"``: the same geometry,
      values untouched (``target="mask"``): labels stay labels;
    - additional targets declared as ``"image"`` or ``"images"`` (``{"sharp": "image"}``):
      left as they are, the sharp originals of the blurred image;
    - bboxes and keypoints are not targets: the blur moves no pixel, so they pass through.

    The record of the last call is ``get_applied_params()["record"]`` (and in
    ``applied_transforms`` with ``A.Compose(..., save_applied_params=True)``).

    Args:
        preset: a shipped preset's name (``"camera-shake"``, ``"deblurgan"``, ``"none"``) or a
            YAML or JSON file of settings (see :func:`blurgen.presets.load`).
        config: instead of ``preset``, a :class:`~blurgen.sample.SampleConfig` or
            :class:`~blurgen.pipeline.DatasetConfig`, or its ``to_dict()`` (a pairs file's
            ``config`` attribute).
        boundary: ``"reflect"`` or ``"wrap"``: how the blur treats the image's borders; both
            keep the size, as albumentations pipelines need.
        p: probability of blurring, in [0, 1].

    Targets:
        image, images, mask, masks

    Image types:
        (H, W, 3) RGB, uint8, uint16 or float in [0, 1]; the output has the input's shape and
        dtype. H and W are at least the config's kernel size (101 px for ``"camera-shake"``).

    Note:
        albumentations 2.0 copies the generator into each DataLoader worker as it is, so
        workers draw the same blurs unless each reseeds its copy, e.g. with
        ``worker_init_fn=lambda i: get_worker_info().dataset.transform.set_random_seed(seed +
        i)`` (``torch.utils.data.get_worker_info``; ``transform`` the dataset's Compose).
    """

    _targets = (Targets.IMAGE, Targets.MASK)

    def __init__(
        self, preset: str | os.PathLike | None = DEFAULT_PRESET, *, config: Any = None,
        boundary: str = "reflect", p: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__(p=p)  # which checks p (albumentations' InitSchema)
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {', '.join(BOUNDARIES)} (albumentations "
                             f"targets keep their size), got {boundary!r}")  # fmt: skip
        # The config is kept as the dict A.to_dict writes, and the blur is built from that
        # dict, so that A.save writes JSON or YAML and A.from_dict builds the same blur.
        if config is None:
            if preset is None:
                raise ValueError("give a preset or a config")
            self.transform = BlurTransform.from_preset(preset, boundary=boundary)
            self.preset, self.config = os.fspath(preset), None
        elif preset not in (None, DEFAULT_PRESET):
            raise ValueError(f"give a preset or a config, not both (got preset {preset!r})")
        else:
            values = config if isinstance(config, dict) else config.to_dict()
            self.transform = BlurTransform.from_dict(values, boundary=boundary)
            self.preset, self.config = None, values
        self.boundary = boundary

    @property
    def targets(self) -> dict[str, Callable[..., Any]]:
        """The targets' functions: image(s) blurred, mask(s) given the geometry."""
        return {
            "image": self.apply,
            "images": self.apply_to_images,
            "mask": self.apply_to_mask,
            "masks": self.apply_to_masks,
        }

    def add_targets(self, additional_targets: dict[str, str]) -> None:
        """Take the additional targets of ``A.Compose``; those declared as ``"image"`` or
        ``"images"`` are left out, so they pass through unchanged: they are the sharp images
        that the blurred ``image`` is paired with."""
        super().add_targets({k: v for k, v in additional_targets.items()
                             if v not in IMAGE_TARGETS})  # fmt: skip

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]
                                     ) -> dict[str, Any]:  # fmt: skip
        """Draw the call's one record, for the (H, W) that albumentations read from ``image``
        (or the first of ``images``) into ``params["shape"]``."""
        return {"record": self.transform.draw(self.random_generator, params["shape"][:2])}

    def apply(self, img: np.ndarray, record: BlurRecord, **params: Any) -> np.ndarray:
        """The blurred image: (H, W, 3), the input's dtype."""
        return self.transform.apply(img, record)

    def apply_to_mask(self, mask: np.ndarray, record: BlurRecord, **params: Any) -> np.ndarray:
        """The mask with the blur's geometry, values untouched: (H, W) or (H, W, C), its
        dtype."""
        return self.transform.apply(mask, record, target="mask")

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """The arguments that ``A.to_dict`` records (besides ``p``)."""
        return ("preset", "config", "boundary")
