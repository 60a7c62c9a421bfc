"""What a blur method is: one class holding its config section, settings, draw, render and file
columns. :mod:`blurgen.methods` registers the methods; the synthesiser (:mod:`blurgen.sample`),
the file (:mod:`blurgen.h5`), the command line and the docs go through the registry and never
test which method a sample uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from blurgen.backend import get_xp, to_numpy, xp_for_device
from blurgen.color import as_uint, as_unit_float
from blurgen.forward import valid_offset
from blurgen.schema import Column
from blurgen.settings import Parameter, Setting

if TYPE_CHECKING:
    import h5py

    from blurgen.degradation import Degradation, DegradationParams
    from blurgen.sample import SampleConfig, SampleRecord

# A learned blur: (N, H, W, 3) float images in [0, 1] and (N,) noise seeds -> blurred.
LearnedBlur = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Job:
    """What a method's :meth:`BlurMethod.render_job` works with: one job's samples of the
    methods that share that render, and where their pairs go.

    Attributes:
        rows: the samples' rows in the job.
        photos: their photos (:class:`blurgen.io.Photo`), whose crops :meth:`crop` cuts.
        side: the crops' side, px.
        records, kernels: their records and (K, K) kernels (on ``device``); ``render_job``
            may replace a record whose draw it settles while rendering (a video's window,
            moved on from a too fast one), and the pair's file row keeps the replacement.
        config: the samples' config.
        device: ``"cpu"`` or ``"cuda"``.
        learned: the learned blur, where a method needs one.
        turn: makes what is held while working on a GPU (a few jobs at a time; a no-op on
            the CPU).
        sharp, blurred: the job's (N, P, P, 3) uint8 arrays; ``render_job`` fills its rows.
    """

    rows: list[int]
    photos: list[Any]
    side: int
    records: list[SampleRecord]
    kernels: list[Any]
    config: SampleConfig
    device: str
    learned: LearnedBlur | None
    turn: Callable[[], contextlib.AbstractContextManager]
    sharp: np.ndarray
    blurred: np.ndarray

    def crop(self, k: int) -> np.ndarray:
        """Sample ``k``'s crop as its photo stores it (uint8, uint16 or float32), before
        flips; cut when asked for, so that it is still in the cache when it is rendered."""
        return self.photos[k].region(*self.records[k].origin, self.side, self.side)

    def dtype(self, k: int) -> np.dtype:
        """The dtype of sample ``k``'s crop, without cutting it."""
        return self.photos[k].pixels.dtype

    def part(self, keep: Sequence[int]) -> Job:
        """The samples ``keep`` (positions in this job) of the job."""
        return replace(self, rows=[self.rows[k] for k in keep],
                       photos=[self.photos[k] for k in keep],
                       records=[self.records[k] for k in keep],
                       kernels=[self.kernels[k] for k in keep])  # fmt: skip


class BlurMethod:
    """A way of making blur. Subclasses set the class attributes and override what differs.

    Attributes:
        name: as users write it (``--blur NAME``, ``--mix NAME=W``) and records hold it.
        code: the file's ``method`` column value; never reused.
        title: what its samples are, in a few words ("motion blur"), for messages.
        help: what it is, for ``--blur``'s help and the docs.
        section: the name of its config section (a :class:`~blurgen.sample.SampleConfig`
            field, and a ``to_dict`` key), or None if it has none.
        settings: its command-line and config-file settings (they set its section).
        has_kernel: whether its samples' ``kernel`` column holds a kernel summing to 1 (a
            learned blur's is zeros).
        convolves: whether its blur is exactly its kernel convolved with the image (what the
            BGAN's physics pretraining needs).
        learned: whether it renders with a learned blur (``learned=``).
        draws_kernel: whether :meth:`draw` draws the kernel (kernels given by the caller, from
            a bank, replace those draws).
        kernel_note: what its kernel is, where it is not simply the blur's (for the docs).
        calibration: the parameters of its model that ``blurgen calibrate`` fits (applied by
            :meth:`calibrated`).
        share: the range of its share of the samples when ``blurgen calibrate`` fits it (the
            first registered method takes what the others leave), or None.
        share_fitted: whether its share is fitted unless the user names what to fit.
        source: the kind of source it blurs: ``"photo"`` (drawn by ``blur`` or ``mix``), or
            another (``"video"``), whose samples all use it (and which it alone blurs) when
            its config section is set.
    """

    name: ClassVar[str]
    code: ClassVar[int]
    title: ClassVar[str]
    help: ClassVar[str]
    section: ClassVar[str | None] = None
    settings: ClassVar[tuple[Setting, ...]] = ()
    has_kernel: ClassVar[bool] = True
    convolves: ClassVar[bool] = False
    learned: ClassVar[bool] = False
    draws_kernel: ClassVar[bool] = False
    kernel_note: ClassVar[str] = ""
    calibration: ClassVar[dict[str, Parameter]] = {}
    share: ClassVar[Parameter | None] = None
    share_fitted: ClassVar[bool] = True
    source: ClassVar[str] = "photo"

    # -- config ---------------------------------------------------------------------------

    def default_section(self) -> Any:
        """The section's default value."""
        return None

    def documented_section(self) -> Any:
        """A section with every option that adds file columns on, for the format's table."""
        return self.used_section(self.default_section())

    def section_from_settings(self, values: dict[str, Any]) -> Any:
        """The section from its settings' parsed values (None where not given)."""
        return self.default_section()

    def section_to_dict(self, config: SampleConfig) -> dict:
        """The section as ``to_dict`` writes it: ``{section: value}``, or ``{}`` to leave it
        out (as a section the config does not use is)."""
        return {}

    def section_from_dict(self, value: Any) -> Any:
        """The inverse of :meth:`section_to_dict`'s value."""
        return self.default_section()

    def settings_of(self, config: SampleConfig) -> dict:
        """The section's settings as a preset file writes them (``{}`` if unused)."""
        return {}

    def used_section(self, value: Any) -> Any:
        """The section of a config that uses the method, defaults filled in (a checkpoint
        named, for example)."""
        return value

    def calibrated(self, config: SampleConfig, values: dict[str, float], size: int) -> Any:
        """The section with the :attr:`calibration` parameters in ``values`` applied, for
        kernels of ``size`` px."""
        return getattr(config, self.section) if self.section else None

    def crop_reason(self, config: Any) -> str:
        """Why a sample needs a crop of ``config.crop`` px, ending a too-small message."""
        return f"with {config.kernel_size} px kernels need {config.crop} px"

    def load(self, config: SampleConfig, device: str) -> LearnedBlur | None:
        """For a method that renders with a learned blur: load it, to run on ``device``."""
        return None

    # -- draw -----------------------------------------------------------------------------

    def draw(self, rngs: Sequence[np.random.Generator], config: SampleConfig, device: str) -> Any:
        """The method's first draws for each of its samples, one generator each, before the
        crop's: returns (N, K, K) kernels on ``device`` where :attr:`draws_kernel`, else a
        list of what :meth:`place` needs (or None)."""
        return [None] * len(rngs)

    def place(
        self, drawn: Any, config: SampleConfig, side: tuple[int, int], photo: tuple[int, int],
        origin: tuple[int, int], flips: tuple[bool, bool], params: DegradationParams,
    ) -> tuple[Any, DegradationParams, np.ndarray | None]:  # fmt: skip
        """Fit a sample's draw to its crop, once the crop is drawn (``photo``: the source's
        ``(height, width)``, and for a video its frame count third): returns what the record
        keeps (:attr:`SampleRecord.drawn`), the degradation's parameters the sample uses, and
        its (K, K) kernel if the method makes it here (None to keep the drawn one)."""
        return None, params, None

    # -- render ---------------------------------------------------------------------------

    def render(
        self, crop: Any, sharp: Any, kernel: Any, record: SampleRecord,
        degradation: Degradation, learned: LearnedBlur | None, dtype: Any,
    ) -> Any:  # fmt: skip
        """One sample's blurred image; deterministic.

        Args:
            crop: (H, W, 3) crop after its flips, NumPy or CuPy, in the photo's dtype.
            sharp: its aligned sharp image (the crop, or its valid centre).
            kernel: (K, K) float32 kernel on the crop's device.
            record: the sample's record.
            degradation: the forward model.
            learned: the learned blur, for a method that needs one.
            dtype: ``np.float32`` in [0, 1], or ``np.uint8`` (a hint: a method may return
                float32).
        """
        raise NotImplementedError

    def render_job(self, job: Job) -> None:
        """Render a job's samples into ``job.sharp`` and ``job.blurred`` (8 bits), one at a
        time on ``job.device``. A method that renders faster in batches overrides it; methods
        sharing an override share its batches."""
        xp = xp_for_device(job.device)
        for k, (r, kernel, record) in enumerate(zip(job.rows, job.kernels, job.records,
                                                    strict=True)):  # fmt: skip
            crop = job.crop(k)
            with job.turn():
                crop, sharp = oriented(xp.asarray(crop), job.config.kernel_size, record,
                                       job.config.degradation)  # fmt: skip
                blurred = self.render(crop, sharp, kernel, record, job.config.degradation,
                                      job.learned, np.uint8)  # fmt: skip
                job.sharp[r], job.blurred[r] = to_uint8(sharp), to_uint8(blurred)

    # -- file -----------------------------------------------------------------------------

    def columns(self, config: SampleConfig) -> dict[str, Column]:
        """The file columns the method adds to files whose config uses it."""
        return {}

    def column_values(
        self, records: Sequence[SampleRecord], config: SampleConfig, crop: tuple[int, int]
    ) -> dict[str, np.ndarray]:
        """Its columns' values for a job's records (all of them, zeros for other methods')."""
        return {}

    def read(self, f: h5py.File, row: int) -> Any:
        """What :meth:`place` kept for the sample in row ``row`` of an open file."""
        return None

    # -- pictures and reports -------------------------------------------------------------

    def shown_kernels(
        self, record: SampleRecord, kernel: np.ndarray, config: SampleConfig,
        shape: tuple[int, int],
    ) -> tuple[np.ndarray, int] | None:  # fmt: skip
        """The kernels a picture of a sample shows, (M, K, K), and how many to a row; None for
        none. ``shape``: the blurred image's (height, width)."""
        return kernel[None], 1

    def report(self, record: SampleRecord, config: SampleConfig) -> dict:
        """What a report of a blurred image says of its blur besides its record's params."""
        return {}


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


def to_uint8(image: Any) -> np.ndarray:
    """An image (NumPy or CuPy) as uint8 on the host: float in [0, 1] rounded, uint16 scaled
    and rounded, uint8 as it is."""
    image = to_numpy(image)
    if image.dtype == np.uint8:
        return image
    return as_uint(as_unit_float(image))
