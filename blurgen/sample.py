"""The synthesiser: every random choice of a sample drawn into one plain record, then rendered.

A sample of a photo draws everything from one generator, :func:`sample_rng`, keyed by the root
seed, a fingerprint of the photo's bytes and the sample's index, in this order: its blur method
(one uniform, only when mixing methods), the method's own draws (a kernel, a shake, nothing for
a learned blur), the crop's top-left corner, two flips, then the degradation's parameters and a
noise seed. :meth:`Synthesiser.draw` turns generators into :class:`SampleRecord` records and
kernels; :meth:`Synthesiser.render` turns a record, its kernel and the photo's crop into the
pair, with no randomness of its own, so a stored record and kernel rebuild their pair exactly;
:meth:`Synthesiser.make` does both for a batch of samples of photos, as datasets hold them.
What differs between blur methods lives in their modules (:mod:`blurgen.methods`).

Keying by the photo's content, not its position in a list, means that two datasets made from
different photos never share kernels, even under the same seed, and that a dataset depends on
its sources, config and seed only.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, make_dataclass
from typing import Any

import numpy as np

from blurgen import methods as registry
from blurgen.backend import to_numpy, xp_for_device
from blurgen.kernels.motion import check_size

from .degradation import Degradation, DegradationParams
from .methods.base import BlurMethod, Job, LearnedBlur, oriented, to_uint8
from .video import KIND as VIDEO

__all__ = ["SampleConfig", "SampleRecord", "Synthesiser", "sample_rng", "oriented", "to_uint8",
           "LearnedBlur"]  # fmt: skip


class _SampleConfigMethods:
    """The behaviour of :class:`SampleConfig` (its fields are made from the registry)."""

    def __post_init__(self) -> None:
        check_size(self.kernel_size)
        if self.blur not in registry.drawn_names():
            raise ValueError(f"blur must be one of {', '.join(registry.drawn_names())}, "
                             f"got {self.blur!r}")  # fmt: skip
        mix = tuple((str(m), float(w)) for m, w in self.mix)
        object.__setattr__(self, "mix", mix)
        for method, weight in mix:
            if method not in registry.drawn_names() or not weight >= 0:
                raise ValueError(f"mix entries are METHOD=WEIGHT with a method of "
                                 f"{registry.drawn_names()}, got {method}={weight}")  # fmt: skip
        if mix and sum(w for _, w in mix) <= 0:
            raise ValueError(f"mix weights must not all be zero, got {mix!r}")
        for method in self.blur_methods():
            if method.section:
                value = method.used_section(getattr(self, method.section))
                object.__setattr__(self, method.section, value)

    def to_dict(self) -> dict:
        """JSON-serialisable config of what is used: each method's section as the method
        writes it (unused ones left out or null), and ``blur`` left out when ``mix`` draws the
        methods."""
        sections = [m.section for m in registry.methods() if m.section]
        values = {name: value for name, value in asdict(self).items() if name not in sections}
        values["mix"] = [list(pair) for pair in self.mix]
        values["degradation"] = self.degradation.to_dict()
        if self.mix:
            del values["blur"]
        for method in registry.methods():
            if method.section:
                values.update(method.section_to_dict(self))
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Any:
        """The inverse of :meth:`to_dict` (as files record it, and ``--dry-run --json``
        prints it)."""
        values = dict(values)
        for method in registry.methods():
            if method.section:
                values[method.section] = method.section_from_dict(values.pop(method.section, None))
        values["mix"] = tuple(tuple(pair) for pair in values.pop("mix", ()))
        values["degradation"] = Degradation.from_dict(values.pop("degradation"))
        return cls(**values)

    def sample_config(self, **changes: Any) -> Any:
        """A plain :class:`SampleConfig` of this config's fields (a dataset's without its patch
        and count), with ``changes``."""
        names = [f.name for f in fields(SampleConfig)]
        return SampleConfig(**{**{name: getattr(self, name) for name in names}, **changes})

    def methods(self) -> list[str]:
        """The blur methods samples may use: those ``blur`` or ``mix`` draw for photos, then
        those of other sources whose section is set (``video``)."""
        drawn = [m for m, w in self.mix if w > 0] if self.mix else [self.blur]
        others = [m.name for m in registry.methods()
                  if m.source != "photo" and getattr(self, m.section) is not None]  # fmt: skip
        return drawn + others

    def blur_methods(self) -> list[BlurMethod]:
        """The methods samples may use, in registration order."""
        used = self.methods()
        return [m for m in registry.methods() if m.name in used]

    def draw_method(self, rng: np.random.Generator) -> str:
        """A sample's method: ``blur``, or one drawn from ``mix`` (one uniform)."""
        if not self.mix:
            return self.blur
        weights = np.array([w for _, w in self.mix])
        u = rng.random() * weights.sum()
        return self.mix[
            min(int(np.searchsorted(np.cumsum(weights), u, side="right")), len(weights) - 1)
        ][0]


# The fields a SampleConfig has whatever the methods; each method with a section adds its own
# after them (MotionModel ``motion``, CameraModel ``camera``, the checkpoint ``bgan``, ...).
SampleConfig = make_dataclass(
    "SampleConfig",
    [
        ("kernel_size", int, field(default=31)),
        ("blur", str, field(default=registry.names()[0])),
        ("mix", tuple, field(default=())),
        ("flips", bool, field(default=True)),
        *[
            (m.section, Any, field(default_factory=m.default_section))
            for m in registry.methods()
            if m.section
        ],
        ("degradation", Degradation, field(default_factory=Degradation)),
    ],  # fmt: skip
    bases=(_SampleConfigMethods,),
    frozen=True,
)
SampleConfig.__module__ = __name__
SampleConfig.__doc__ = """How one sample is blurred: methods, their models, flips, degradation.

    Attributes:
        kernel_size: side K of the blur kernels in pixels (>= 3); for camera shake, its reach
            (no pixel moves more than ``kernel_size // 2 - 1`` px).
        blur: the method of every sample, a name of :func:`blurgen.methods.names`.
        mix: ``(method, weight)`` pairs; when given, each sample draws its method with these
            probabilities (normalised) instead of using ``blur``.
        flips: random horizontal and vertical flips.
        degradation: the forward model.

    and a section for each method that has one (:mod:`blurgen.methods`): ``motion`` (the
    trajectory model, :class:`~blurgen.kernels.MotionModel`; its path length defaults to 60/64
    of ``kernel_size``), ``camera`` (the 6-DoF shake model,
    :class:`~blurgen.kernels.camera.CameraModel`) and ``bgan`` (the checkpoint of learned
    blur, by default the one shipped with blurgen; the generator itself is passed to the
    renderer).
    """


@dataclass(frozen=True)
class SampleRecord:
    """Every random choice of one sample except its kernel (stored beside it).

    Attributes:
        method: the name of its blur method.
        origin: ``(y, x)`` top-left corner of the crop in the photo, before flips.
        flips: ``(horizontal, vertical)``: mirror the crop left-right, then top-bottom.
        params: the degradation's values (a method may use only some: a learned blur only
            ``noise_seed``, which seeds the generator's noise vector).
        drawn: what the method drew besides the kernel, fitted to the crop (a camera shake,
            in the frame of its flipped crop), or None.
    """

    method: str
    origin: tuple[int, int]
    flips: tuple[bool, bool]
    params: DegradationParams
    drawn: Any = None


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


def source_size(source: Any) -> tuple[int, ...]:
    """What :meth:`Synthesiser.draw` takes of a source: a photo's ``(height, width)``, a
    video's ``(height, width, frames)``."""
    frames = getattr(source, "frames", None)
    return tuple(source.size) if frames is None else (*source.size, frames)


@dataclass
class Pairs:
    """A batch of samples as :meth:`Synthesiser.make` makes them.

    Attributes:
        records: a record per sample.
        kernels: (N, K, K) float32 kernels on the host.
        sharp, blurred: (N, S, S, 3) uint8 RGB, aligned pixel for pixel.
        columns: the file's columns of the methods in use (:meth:`Synthesiser.columns`).
    """

    records: list[SampleRecord]
    kernels: np.ndarray
    sharp: np.ndarray
    blurred: np.ndarray
    columns: dict[str, np.ndarray]


class Synthesiser:
    """Draws and renders samples under one config; every consumer of samples goes through it
    (datasets, Ray shards, regenerate, calibrate, the transform, the BGAN's pretraining,
    ``blurgen blur``).

    Args:
        config: methods, their models, flips, degradation.
        learned: the learned blur, for a config whose methods need one.
        device: where kernels are made and the forward model runs (``"cpu"`` or ``"cuda"``;
            the randomness stays on the host).
        turn: makes what is held while a job works on a GPU (to bound the jobs on it at
            once); by default nothing.
    """

    def __init__(
        self, config: Any, learned: LearnedBlur | None = None, device: str = "cpu",
        turn: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:  # fmt: skip
        self.config = config
        self.learned = learned
        self.device = device
        self.turn = turn

    def draw(
        self,
        rngs: Sequence[np.random.Generator],
        sizes: Sequence[tuple[int, int]],
        crop: int | None,
        kernels: Any = None,
    ) -> tuple[list[SampleRecord], Any]:
        """Draw the records and kernels of a batch of samples, one generator each.

        Args:
            rngs: one generator per sample (see :func:`sample_rng`).
            sizes: ``(height, width)`` of each sample's photo; for a sample of a video,
                ``(height, width, frames)``: it uses the method that reads videos.
            crop: side of the square crop each sample takes; None for the whole photo
                (origin (0, 0), no flips).
            kernels: (N, K, K) kernels to use instead of drawing them (a bank's, for
                example), for the methods that draw kernels.

        Returns:
            ``(records, kernels)``: a record per sample and their (N, K, K) float32 kernels on
            the device (zeros for a method without one; for camera shake, the point-spread
            function at the centre of the sharp patch).
        """
        config = self.config
        video = registry.for_source(VIDEO) if any(len(s) == 3 for s in sizes) else None
        if video is not None and video.name not in config.methods():
            raise ValueError(f"video sources need the config's {video.section} section")
        names = [video.name if len(size) == 3 else config.draw_method(rng)
                 for rng, size in zip(rngs, sizes, strict=True)]  # fmt: skip
        xp = xp_for_device(self.device)
        given = kernels is not None
        if not given:
            kernels = xp.zeros((len(rngs), config.kernel_size, config.kernel_size), xp.float32)
        drawn: list[Any] = [None] * len(rngs)
        with self.turn():
            for method in config.blur_methods():
                chosen = [k for k, name in enumerate(names) if name == method.name]
                if not chosen or (given and method.draws_kernel):
                    continue
                made = method.draw([rngs[k] for k in chosen], config, self.device)
                if method.draws_kernel:
                    kernels[xp.asarray(chosen)] = made
                else:
                    for k, item in zip(chosen, made, strict=True):
                        drawn[k] = item
        records = []
        for k, (rng, name, size) in enumerate(zip(rngs, names, sizes, strict=True)):
            height, width = size[:2]
            side = (height, width) if crop is None else (crop, crop)
            y = int(rng.integers(0, height - side[0] + 1))
            x = int(rng.integers(0, width - side[1] + 1))
            flip = rng.random(2) < 0.5
            flipping = config.flips and crop is not None
            flips = (bool(flip[0]), bool(flip[1])) if flipping else (False, False)
            params = config.degradation.sample(rng)
            kept, params, kernel = registry.get(name).place(
                drawn[k], config, side, tuple(size), (y, x), flips, params
            )
            if kernel is not None:
                kernels[k] = xp.asarray(kernel)
            records.append(SampleRecord(name, (y, x), flips, params, kept))
        return records, kernels

    def render(
        self, crop: Any, kernel: Any, record: SampleRecord, *, dtype: Any = np.float32
    ) -> tuple[Any, Any]:
        """The pair a record makes from its crop; deterministic.

        Args:
            crop: (H, W, 3) sRGB crop at the record's origin, before flips, NumPy or CuPy:
                float32 in [0, 1], or uint8 / uint16 as the file stores it (the same pair).
            kernel: (K, K) float32 kernel on the same device.
            record: the sample's record.
            dtype: of the blurred image: ``np.float32`` in [0, 1], or ``np.uint8`` (the same
                values rounded, without a float copy; a method may still return float32).

        Returns:
            ``(sharp, blurred)``: aligned pixel for pixel, the sharp one in the crop's dtype;
            with a ``"valid"`` boundary the sharp one is the crop's centre of
            (H - K + 1, W - K + 1).
        """
        degradation = self.config.degradation
        crop, sharp = oriented(crop, kernel.shape[-1], record, degradation)
        method = registry.get(record.method)
        return sharp, method.render(crop, sharp, kernel, record, degradation, self.learned,
                                    dtype)  # fmt: skip

    def replay(self, source: Any, kernel: np.ndarray, record: SampleRecord, crop: int) -> tuple:
        """The pair of a stored record, rendered as :meth:`make` rendered it (for
        ``regenerate``).

        Args:
            source: its photo or video (:class:`blurgen.io.Photo`, :class:`blurgen.video.Video`).
            kernel: its (K, K) kernel as stored.
            record: its record.
            crop: side of the square crops.

        Returns:
            ``(sharp, blurred)``: uint8 RGB on the host.
        """
        config = self.config
        side = crop - config.kernel_size + 1 if config.degradation.boundary == "valid" else crop
        sharp = np.empty((1, side, side, 3), np.uint8)
        blurred = np.empty_like(sharp)
        kernel = xp_for_device(self.device).asarray(kernel)
        registry.get(record.method).render_job(Job([0], [source], crop, [record], [kernel],
                                                   config, self.device, self.learned,
                                                   self.turn, sharp, blurred))  # fmt: skip
        return sharp[0], blurred[0]

    def make(self, photos: Sequence[Any], rngs: Sequence[np.random.Generator], crop: int) -> Pairs:
        """Draw and render a batch of samples, sample ``r`` cut from ``photos[r]``
        (:class:`blurgen.io.Photo`) with ``rngs[r]``; the pairs as a dataset holds them.

        Args:
            photos: each sample's photo (at least ``crop`` px a side).
            rngs: each sample's generator.
            crop: side of the square crops.
        """
        config = self.config
        records, kernels = self.draw(rngs, [source_size(photo) for photo in photos], crop)
        side = crop - config.kernel_size + 1 if config.degradation.boundary == "valid" else crop
        sharp = np.empty((len(records), side, side, 3), np.uint8)
        blurred = np.empty_like(sharp)
        # Methods that share a render share its batches (trajectories and lines, on a GPU).
        groups: dict[Any, list[int]] = {}
        for r, record in enumerate(records):
            render = type(registry.get(record.method)).render_job
            groups.setdefault(render, []).append(r)
        for rows in groups.values():
            method = registry.get(records[rows[0]].method)
            job = Job(rows, [photos[r] for r in rows], crop, [records[r] for r in rows],
                      [kernels[r] for r in rows], config, self.device, self.learned, self.turn,
                      sharp, blurred)  # fmt: skip
            method.render_job(job)
            for r, record in zip(rows, job.records, strict=True):
                records[r] = record  # a method may settle a draw as it renders (a window)
        # From a GPU in one transfer, not one for each source.
        kernels = to_numpy(kernels)
        return Pairs(records, kernels, sharp, blurred, self.columns(records, (crop, crop)))

    def columns(self, records: Sequence[SampleRecord], crop: tuple[int, int]) -> dict:
        """The columns of the methods in use for ``records`` (crops of ``crop`` px)."""
        columns: dict[str, np.ndarray] = {}
        for method in self.config.blur_methods():
            columns.update(method.column_values(records, self.config, crop))
        return columns
