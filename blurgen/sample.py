"""Draw, then render: every random choice of a sample as one plain record, and the pair it makes.

A sample of a photo draws everything from one generator, :func:`sample_rng`, keyed by the root
seed, a fingerprint of the photo's bytes and the sample's index, in this order: its blur method
(one uniform, only when mixing methods), its kernel (trajectory or line; nothing for a learned
blur), the crop's top-left corner, two flips, then the degradation's parameters and a noise seed.
:func:`draw_samples` turns generators into :class:`SampleRecord` records and kernels;
:func:`render_sample` turns a record, its kernel and the photo's crop into the pair, with no
randomness of its own, so a stored record and kernel rebuild their pair exactly.

Keying by the photo's content, not its position in a list, means that two datasets made from
different photos never share kernels, even under the same seed, and that a dataset depends on
its sources, config and seed only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from blurgen.backend import get_xp, to_numpy, xp_for_device
from blurgen.kernels import MotionModel, linear_kernels_from, motion_kernels_from
from blurgen.kernels.camera import (
    CameraModel,
    CameraShake,
    draw_shake,
    field_points,
    fit_shake,
    kernel_field,
)
from blurgen.kernels.motion import check_size

from .color import as_uint, as_unit_float
from .degradation import Degradation, DegradationParams
from .forward import valid_offset

BLURS = ("motion", "linear", "bgan", "camera")
KERNEL_BLURS = ("motion", "linear")
# Side of the grid of point-spread functions recorded for each camera-shake sample.
FIELD_GRID = 4
# Checkpoints shipped with blurgen are named, not given by path: ``builtin:NAME``.
BUILTIN_PREFIX = "builtin:"
DEFAULT_BGAN = BUILTIN_PREFIX + "lai2016"
# A learned blur: (N, H, W, 3) float images in [0, 1] and (N,) noise seeds -> blurred.
LearnedBlur = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Pixels of sharp images a job hands its learned blur at once (4 patches of 256 px, as many as
# the BGAN takes in a call): they and their blurred images are float32, so a job of 128 patches
# in one call held 300 MB of them.
LEARNED_BATCH_PIXELS = 1 << 18


@dataclass(frozen=True)
class SampleConfig:
    """How one sample is blurred: the methods, the kernel model, flips and the degradation.

    Attributes:
        kernel_size: side K of the blur kernels in pixels (>= 3).
        blur: ``"motion"`` (camera-shake kernels), ``"linear"`` (straight streaks),
            ``"bgan"`` (a trained blur generator: no kernel, no added noise) or ``"camera"``
            (6-DoF camera shake: rotations and translations over the exposure, blur that
            varies across the image; no pixel moves more than ``kernel_size // 2 - 1`` px).
        mix: ``(method, weight)`` pairs; when given, each sample draws its method with these
            probabilities (normalised) instead of using ``blur``.
        bgan: the BGAN checkpoint used for ``"bgan"`` samples, by default (None) the one
            shipped with blurgen, :data:`DEFAULT_BGAN` (recorded; the generator itself
            is passed to the renderer).
        flips: random horizontal and vertical flips.
        motion: the camera-shake model of ``"motion"`` samples (exposure fractions, path
            length, ...); its path length defaults to 60/64 of ``kernel_size``.
        camera: the 6-DoF shake model of ``"camera"`` samples.
        degradation: the forward model.
    """

    kernel_size: int = 31
    blur: str = "motion"
    mix: tuple[tuple[str, float], ...] = ()
    bgan: str | None = None
    flips: bool = True
    motion: MotionModel = field(default_factory=MotionModel)
    camera: CameraModel = field(default_factory=CameraModel)
    degradation: Degradation = field(default_factory=Degradation)

    def __post_init__(self) -> None:
        check_size(self.kernel_size)
        if self.blur not in BLURS:
            raise ValueError(f"blur must be one of {', '.join(BLURS)}, got {self.blur!r}")
        mix = tuple((str(m), float(w)) for m, w in self.mix)
        object.__setattr__(self, "mix", mix)
        for method, weight in mix:
            if method not in BLURS or not weight >= 0:
                raise ValueError(f"mix entries are METHOD=WEIGHT with a method of {BLURS}, "
                                 f"got {method}={weight}")  # fmt: skip
        if mix and sum(w for _, w in mix) <= 0:
            raise ValueError(f"mix weights must not all be zero, got {mix!r}")
        if "bgan" in self.methods() and not self.bgan:
            object.__setattr__(self, "bgan", DEFAULT_BGAN)

    def to_dict(self) -> dict:
        """JSON-serialisable config of what is used: the kernel model resolved, unused models
        left out, and ``blur`` left out when ``mix`` draws the methods."""
        values = asdict(self)
        values["mix"] = [list(pair) for pair in self.mix]
        if self.mix:
            del values["blur"]
        if "motion" in self.methods():
            values["motion"] = self.motion.resolved(self.kernel_size)
        else:
            del values["motion"]
        if "camera" in self.methods():
            values["camera"] = {k: list(v) if isinstance(v, tuple) else v
                                for k, v in values["camera"].items()}  # fmt: skip
        else:
            del values["camera"]
        return values

    def methods(self) -> list[str]:
        """The blur methods samples may use."""
        return [m for m, w in self.mix if w > 0] if self.mix else [self.blur]

    def draw_method(self, rng: np.random.Generator) -> str:
        """A sample's method: ``blur``, or one drawn from ``mix`` (one uniform)."""
        if not self.mix:
            return self.blur
        weights = np.array([w for _, w in self.mix])
        u = rng.random() * weights.sum()
        return self.mix[
            min(int(np.searchsorted(np.cumsum(weights), u, side="right")), len(weights) - 1)
        ][0]


@dataclass(frozen=True)
class SampleRecord:
    """Every random choice of one sample except its kernel (stored beside it).

    Attributes:
        method: ``"motion"``, ``"linear"``, ``"bgan"`` or ``"camera"``.
        origin: ``(y, x)`` top-left corner of the crop in the photo, before flips.
        flips: ``(horizontal, vertical)``: mirror the crop left-right, then top-bottom.
        params: the degradation's values; for a learned blur only ``noise_seed``, which seeds
            the generator's noise vector, is used (the rest are left at their defaults).
        shake: a ``"camera"`` sample's shake, in the frame of its flipped crop.
    """

    method: str
    origin: tuple[int, int]
    flips: tuple[bool, bool]
    params: DegradationParams
    shake: CameraShake | None = None


def sample_rng(root_seed: int, fingerprint: str, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of the photo whose bytes have ``fingerprint``.

    Args:
        root_seed: the job's seed (>= 0).
        fingerprint: the photo's :func:`blurgen.io.file_fingerprint`.
        index: the sample's number among the photo's samples (>= 0).
    """
    key = f"blurgen-sample/{int(root_seed)}/{fingerprint}/{int(index)}".encode()
    return np.random.default_rng(
        int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "little")
    )


def draw_samples(
    rngs: Sequence[np.random.Generator],
    sizes: Sequence[tuple[int, int]],
    config: SampleConfig,
    crop: int | None,
    *,
    device: str = "cpu",
    kernels: Any = None,
) -> tuple[list[SampleRecord], Any]:
    """Draw the records and kernels of a batch of samples, one generator each.

    Args:
        rngs: one generator per sample (see :func:`sample_rng`).
        sizes: ``(height, width)`` of each sample's photo.
        config: methods, kernel model, flips, degradation.
        crop: side of the square crop each sample takes; None for the whole photo (origin
            (0, 0), no flips).
        device: where kernels are made (``"cpu"`` or ``"cuda"``; the randomness stays on the
            host).
        kernels: (N, K, K) kernels to use instead of drawing them (a bank's, for example).

    Returns:
        ``(records, kernels)``: a record per sample and their (N, K, K) float32 kernels on
        ``device`` (zeros for learned blur; for camera shake, the point-spread function at the
        centre of the sharp patch).
    """
    methods = [config.draw_method(rng) for rng in rngs]
    # A shake is drawn where a kernel would be, and fitted to its crop once that is drawn.
    shakes = {k: draw_shake(rngs[k], config.camera) for k, m in enumerate(methods)
              if m == "camera"}  # fmt: skip
    xp = xp_for_device(device)
    size = config.kernel_size
    if kernels is None:
        kernels = xp.zeros((len(rngs), size, size), xp.float32)
        for method in KERNEL_BLURS:
            chosen = [k for k, m in enumerate(methods) if m == method]
            if not chosen:
                continue
            group = [rngs[k] for k in chosen]
            if method == "motion":
                drawn = motion_kernels_from(group, size, config.motion, device=device)
            else:
                drawn = linear_kernels_from(group, size, device=device)
            kernels[xp.asarray(chosen)] = drawn
    records = []
    for k, (rng, method, (height, width)) in enumerate(zip(rngs, methods, sizes, strict=True)):
        side = (height, width) if crop is None else (crop, crop)
        y = int(rng.integers(0, height - side[0] + 1))
        x = int(rng.integers(0, width - side[1] + 1))
        flip = rng.random(2) < 0.5
        flipping = config.flips and crop is not None
        flips = (bool(flip[0]), bool(flip[1])) if flipping else (False, False)
        params = config.degradation.sample(rng)
        shake = None
        if method == "camera":
            shake = fit_shake(shakes[k], size, side, (height, width), (y, x), flips)
            centre = np.array([[(side[1] - 1) / 2, (side[0] - 1) / 2]])
            kernels[k] = xp.asarray(kernel_field(shake, centre, size, side)[0])
        elif method not in KERNEL_BLURS:
            params = DegradationParams(noise_seed=params.noise_seed)
        records.append(SampleRecord(method, (y, x), flips, params, shake))
    return records, kernels


def camera_fields(
    records: Sequence[SampleRecord], crop: tuple[int, int], config: SampleConfig
) -> np.ndarray:
    """The point-spread functions of camera-shake samples on a FIELD_GRID x FIELD_GRID grid
    over their sharp images (the centres of its cells, row by row), zeros for other samples.

    Args:
        records: the samples' records.
        crop: (height, width) of the crops, px.
        config: the samples' config (its kernel size and boundary place the sharp image).

    Returns:
        (N, FIELD_GRID, FIELD_GRID, K, K) float32, each kernel as :func:`blurgen.kernels.
        camera.kernel_field` makes it.
    """
    size = config.kernel_size
    fields = np.zeros((len(records), FIELD_GRID, FIELD_GRID, size, size), np.float32)
    (height, width), offset = crop, 0
    if config.degradation.boundary == "valid":
        height, width, offset = height - size + 1, width - size + 1, valid_offset(size)
    points = field_points(height, width, FIELD_GRID) + offset
    for k, record in enumerate(records):
        if record.shake is not None:
            field = kernel_field(record.shake, points, size, crop)
            fields[k] = field.reshape(fields.shape[1:])
    return fields


def render_sample(
    crop: Any,
    kernel: Any,
    record: SampleRecord,
    degradation: Degradation,
    learned: LearnedBlur | None = None,
    *,
    dtype: Any = np.float32,
) -> tuple[Any, Any]:
    """The pair a record makes from its crop; deterministic.

    Args:
        crop: (H, W, 3) sRGB crop at the record's origin, before flips, NumPy or CuPy:
            float32 in [0, 1], or uint8 / uint16 as the file stores it (the same pair).
        kernel: (K, K) float32 kernel on the same device (ignored for learned blur).
        record: the sample's record.
        degradation: the forward model (its ``boundary`` decides the output's size).
        learned: the learned blur, for ``"bgan"`` records.
        dtype: of the kernel-blurred image: ``np.float32`` in [0, 1], or ``np.uint8`` (the
            same values rounded, without a float copy; see :meth:`Degradation.render`).

    Returns:
        ``(sharp, blurred)``: aligned pixel for pixel, the sharp one in the crop's dtype, the
        blurred one in ``dtype`` (float32 for learned blur); with a ``"valid"`` boundary the
        sharp one is the crop's centre of (H - K + 1, W - K + 1).
    """
    size = kernel.shape[-1]
    crop, sharp = oriented(crop, size, record, degradation)
    if record.method in KERNEL_BLURS:
        return sharp, degradation.render(crop, kernel, record.params, dtype=dtype)
    if record.method == "camera":
        homographies = record.shake.homographies(crop.shape[:2])
        blurred = degradation.render_warped(crop, homographies, size, record.params, dtype=dtype)
        return sharp, get_xp(crop).asarray(blurred)
    return sharp, render_learned([as_unit_float(sharp)], [record], learned)[0]


def oriented(
    crop: Any, size: int, record: SampleRecord, degradation: Degradation
) -> tuple[Any, Any]:
    """A record's crop after its flips (contiguous), and the sharp image: the crop itself, or
    with a ``"valid"`` boundary its centre that a ``size`` px kernel leaves."""
    horizontal, vertical = record.flips
    xp = get_xp(crop)
    if xp is np and (horizontal or vertical) and crop.ndim == 3 and crop.shape[2] in (3, 4):
        # OpenCV's flip: the same pixels, several times as fast as copying a reversed view.
        code = -1 if horizontal and vertical else int(horizontal)
        crop = cv2.flip(np.ascontiguousarray(crop), code)
    else:
        if horizontal:
            crop = crop[:, ::-1]
        if vertical:
            crop = crop[::-1]
    crop = xp.ascontiguousarray(crop)
    if degradation.boundary != "valid":
        return crop, crop
    o = valid_offset(size)
    return crop, crop[o : o + crop.shape[0] - size + 1, o : o + crop.shape[1] - size + 1]


def render_learned(
    sharp: Sequence[Any], records: Sequence[SampleRecord], learned: LearnedBlur | None
) -> list[Any]:
    """The learned blur of sharp images of one size (float32 (H, W, 3), NumPy or CuPy), each
    with its record's noise seed, in one batch; float32 on the images' device."""
    if learned is None:
        raise ValueError("a sample blurred by a BGAN needs the generator (learned=)")
    xp = get_xp(sharp[0])
    seeds = np.array([record.params.noise_seed for record in records], np.uint64)
    blurred = learned(np.stack([to_numpy(image) for image in sharp]), seeds)
    return [xp.asarray(image, dtype=xp.float32) for image in blurred]


def to_uint8(image: Any) -> np.ndarray:
    """An image (NumPy or CuPy) as uint8 on the host: float in [0, 1] rounded, uint16 scaled
    and rounded, uint8 as it is."""
    image = to_numpy(image)
    if image.dtype == np.uint8:
        return image
    return as_uint(as_unit_float(image))
