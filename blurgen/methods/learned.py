"""Learned blur: a trained BGAN generator blurs the sharp image; no kernel, no added noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from blurgen.backend import get_xp, to_numpy, xp_for_device
from blurgen.color import as_unit_float
from blurgen.settings import Setting

from .base import BlurMethod, Job, oriented, to_uint8

# Checkpoints shipped with blurgen are named, not given by path: ``builtin:NAME``.
BUILTIN_PREFIX = "builtin:"
DEFAULT_BGAN = BUILTIN_PREFIX + "lai2016"
# Pixels of sharp images a job hands its learned blur at once (4 patches of 256 px, as many as
# the BGAN takes in a call): they and their blurred images are float32, so a job of 128 patches
# in one call held 300 MB of them.
LEARNED_BATCH_PIXELS = 1 << 18


class BganMethod(BlurMethod):
    """A BGAN's blur of the sharp image; the record keeps only the noise seed that seeds the
    generator's noise, the section names the checkpoint (the generator itself is passed to
    the renderer as ``learned``)."""

    name = "bgan"
    title = "learned blur"
    code = 2
    help = "a trained BGAN (--bgan): learned blur, no kernel, no added noise"
    section = "bgan"
    settings = (
        Setting("bgan", "BGAN for --blur bgan or a --mix that draws bgan: a checkpoint or "
                "generator.pt from train-bgan, or builtin:NAME; by default the one shipped with "
                f"blurgen ({DEFAULT_BGAN}, trained on real camera-shake photos). It runs on "
                "--device, a few of a job's samples at a time.", metavar="CHECKPOINT"),
    )  # fmt: skip
    has_kernel = False
    learned = True

    def section_from_settings(self, values: dict[str, Any]) -> str | None:
        return values["bgan"]

    def section_to_dict(self, config) -> dict:
        # Written whether used or not (null then), as files have always recorded it.
        return {self.section: config.bgan}

    def section_from_dict(self, value: Any) -> str | None:
        return value

    def used_section(self, value: str | None) -> str:
        return value or DEFAULT_BGAN

    def crop_reason(self, config) -> str:
        # A learned blur reads the patch alone, but its samples are cut as every method's are:
        # the patch with a border of K - 1 px.
        k = config.kernel_size
        return (f"need {config.crop} px: each is the centre of a crop with a {k - 1} px border "
                f"from --kernel-size {k}, which the BGAN does not use (a smaller --kernel-size "
                "takes smaller photos)")  # fmt: skip

    def place(self, drawn, config, side, photo, origin, flips, params):
        return None, type(params)(noise_seed=params.noise_seed), None

    def render(self, crop, sharp, kernel, record, degradation, learned, dtype):
        return render_learned([as_unit_float(sharp)], [record], learned)[0]

    def render_job(self, job: Job) -> None:
        """The job's samples in batches of LEARNED_BATCH_PIXELS pixels."""
        xp = xp_for_device(job.device)
        centres = {}
        for k, (r, record) in enumerate(zip(job.rows, job.records, strict=True)):
            crop = job.crop(k)
            with job.turn():
                centre = oriented(xp.asarray(crop), job.config.kernel_size, record,
                                  job.config.degradation)[1]  # fmt: skip
                centres[r] = xp.ascontiguousarray(centre)  # as float once its turn comes
                job.sharp[r] = to_uint8(centre)
        records = dict(zip(job.rows, job.records, strict=True))
        step = max(1, LEARNED_BATCH_PIXELS // (job.sharp.shape[1] * job.sharp.shape[2]))
        for rows in (job.rows[k : k + step] for k in range(0, len(job.rows), step)):
            with job.turn():
                images = render_learned([as_unit_float(centres.pop(r)) for r in rows],
                                        [records[r] for r in rows], job.learned)  # fmt: skip
                for r, image in zip(rows, images, strict=True):
                    job.blurred[r] = to_uint8(image)

    def load(self, config, device: str) -> Any:
        """The generator of the config's checkpoint, on ``device`` (a torch device)."""
        from blurgen.backend import check_torch_device
        from blurgen.bgan.infer import BganBlur

        return BganBlur(config.bgan, check_torch_device(device))

    def shown_kernels(self, record, kernel, config, shape) -> None:
        return None

    def report(self, record, config) -> dict:
        return {"bgan": config.bgan}


def render_learned(sharp: list[Any], records: list[Any], learned: Any) -> list[Any]:
    """The learned blur of sharp images of one size (float32 (H, W, 3), NumPy or CuPy), each
    with its record's noise seed, in one batch; float32 on the images' device."""
    if learned is None:
        raise ValueError("a sample blurred by a BGAN needs the generator (learned=)")
    xp = get_xp(sharp[0])
    seeds = np.array([record.params.noise_seed for record in records], np.uint64)
    blurred = learned(np.stack([to_numpy(image) for image in sharp]), seeds)
    return [xp.asarray(image, dtype=xp.float32) for image in blurred]
