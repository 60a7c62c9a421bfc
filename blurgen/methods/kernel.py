"""Blur by one kernel per sample: random camera-shake trajectories, and straight lines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from blurgen.backend import get_xp
from blurgen.kernels import MotionModel, linear_kernels_from, motion_kernels_from
from blurgen.kernels.trajectory import DEFAULT_EXPL, PATH_LENGTH_PER_PX
from blurgen.settings import Parameter, Setting

from .base import BlurMethod, Job, oriented


class KernelBlur(BlurMethod):
    """A blur that is its kernel convolved with the image, in linear light."""

    draws_kernel = True
    convolves = True

    def render(self, crop, sharp, kernel, record, degradation, learned, dtype):  # noqa: D102
        return degradation.render(crop, kernel, record.params, dtype=dtype)

    def render_job(self, job: Job) -> None:
        """On a GPU, the job's 8-bit crops in one batch (:meth:`Degradation.render_batch`; see
        :func:`in_batches`), where a pair at a time would spend its time launching kernels and
        moving data; on the CPU one at a time, which is faster (measured: 2.1 ms a pair against
        2.9-3.6 ms in batches of 4-16 of 319 px by 64 px kernels)."""
        config = job.config
        batched = [k for k in range(len(job.rows)) if in_batches(job.device, job.dtype(k), config)]
        alone = [k for k in range(len(job.rows)) if k not in set(batched)]
        if alone:
            super().render_job(job.part(alone))
        if not batched:
            return
        crops = []
        for k in batched:
            crop, job.sharp[job.rows[k]] = oriented(job.crop(k), config.kernel_size,
                                                    job.records[k], config.degradation)  # fmt: skip
            crops.append(crop)
        xp = get_xp(job.kernels[0])
        kernels = xp.stack([job.kernels[k] for k in batched])
        params = [job.records[k].params for k in batched]
        rows = [job.rows[k] for k in batched]
        job.blurred[rows] = config.degradation.render_batch(np.stack(crops), kernels, params,
                                                            job.turn())  # fmt: skip


def in_batches(device: str, dtype: np.dtype, config: Any) -> bool:
    """Whether a sample whose crop is of ``dtype`` is rendered with the rest of its job in one
    batch: on a GPU, for 8-bit crops, the ``"valid"`` boundary and a degradation that batches
    (see :attr:`Degradation.batchable`)."""
    degradation = config.degradation
    return (device != "cpu" and dtype == np.uint8 and degradation.boundary == "valid"
            and degradation.batchable)  # fmt: skip


class TrajectoryBlur(KernelBlur):
    """Camera-shake kernels integrated along random trajectories (DeblurGAN's model)."""

    name = "motion"
    title = "motion blur"
    code = 0
    help = "random camera-shake kernels (trajectories; --iters, --max-len, --expl, --fractions)"
    section = "motion"
    settings = (
        Setting("iters", "motion: points per trajectory [2000].", kind="int", minimum=2),
        Setting("max_len", "motion: path length of the whole exposure in px [60/64 of the "
                "kernel size].", kind="float"),
        Setting("expl", "motion: explosiveness values, one drawn per kernel "
                "[0.003,0.005,0.007,0.008,0.009,0.01].", kind="floats"),
        Setting("fractions", "motion: exposure fractions, one drawn per kernel [0.1,0.5,1]; 1 "
                "alone gives every kernel the full path length.", kind="floats"),
    )  # fmt: skip
    calibration = {
        "path": Parameter(0.2, 1.0, help="path length as a share of DeblurGAN's 60/64 of the side"),
        "min_fraction": Parameter(0.05, 1.0, help="shortest exposure fraction (of three, to 1)"),
        "expl_scale": Parameter(0.1, 3.0, help="factor on DeblurGAN's explosiveness values"),
    }

    def default_section(self) -> MotionModel:
        return MotionModel()

    def calibrated(self, config, values, size) -> MotionModel:
        motion = config.motion
        if "path" in values:
            motion = replace(motion, max_len=values["path"] * PATH_LENGTH_PER_PX * size)
        if "min_fraction" in values:
            low = values["min_fraction"]
            motion = replace(motion, fractions=(low, (low + 1) / 2, 1.0))
        if "expl_scale" in values:
            scale = values["expl_scale"]
            motion = replace(motion, expl=tuple(min(1.0, e * scale) for e in DEFAULT_EXPL))
        return motion

    def section_from_settings(self, values: dict[str, Any]) -> MotionModel:
        return MotionModel(**{name: v for name, v in values.items() if v is not None})

    def section_to_dict(self, config) -> dict:
        if self.name not in config.methods():
            return {}
        return {self.section: config.motion.resolved(config.kernel_size)}

    def section_from_dict(self, value: Any) -> MotionModel:
        return MotionModel(**value) if value is not None else MotionModel()

    def settings_of(self, config) -> dict:
        motion = config.motion
        return {
            "max_len": round(motion.path_length(config.kernel_size), 3),
            "fractions": ",".join(f"{v:.4g}" for v in motion.fractions),
            "expl": ",".join(f"{v:.4g}" for v in motion.expl),
        }

    def draw(self, rngs, config, device):
        return motion_kernels_from(rngs, config.kernel_size, config.motion, device=device)


class LineBlur(KernelBlur):
    """Straight streaks of random length and angle."""

    name = "linear"
    title = "straight streaks"
    code = 1
    help = "straight streaks"
    share = Parameter(0.0, 0.6, help="share of straight-line kernels")

    def draw(self, rngs, config, device):
        return linear_kernels_from(rngs, config.kernel_size, device=device)
