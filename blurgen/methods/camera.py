"""6-DoF camera shake: rotations and translations of the camera over the exposure, whose blur
varies across the image (a mean of the image warped by each pose)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from blurgen.backend import get_xp
from blurgen.forward import valid_offset
from blurgen.kernels.camera import (
    CameraModel,
    CameraShake,
    draw_shake,
    field_points,
    fit_shake,
    kernel_field,
)
from blurgen.schema import PACKED, Column
from blurgen.settings import Parameter, Setting

from .base import BlurMethod

# Side of the grid of point-spread functions recorded for each camera-shake sample.
FIELD_GRID = 4
# Runs of poses that differ by translations to within this many px over the patch (the poses'
# own spacing) are rendered as one convolution and one warp (blurgen.forward.warp_blur): 2.3-2.7x
# as fast as a warp per pose. Against warps ten times as dense, 8-bit pairs differ by 0.31-0.35
# levels on average (a warp per pose: 0.07-0.09), from the runs' second bilinear interpolation
# (bench/camera.py); a pure translation renders exactly.
RENDER_TOLERANCE_PX = 0.5


class CameraShakeBlur(BlurMethod):
    """A random 6-DoF shake fitted to each crop; the record keeps the shake
    (:class:`~blurgen.kernels.camera.CameraShake`), the kernel column the point-spread function
    at the patch's centre."""

    name = "camera"
    title = "camera shake"
    code = 3
    help = ("6-DoF camera shake (rotations and translations of the camera: blur that varies "
            "across the patch; --kernel-size bounds its reach, --camera-* its model)")  # fmt: skip
    section = "camera"
    kernel_note = "the point-spread function at the patch's centre"
    share = Parameter(0.0, 1.0, help="share of 6-DoF camera shake (--blur camera)")
    calibration = {
        "rolling_shutter": Parameter(
            0.0,
            2.0,
            help="camera shake's rolling-shutter readout, in exposures (drawn from 0 to it)",
        )
    }
    # Fitted only when asked, and its model's parameters with it: a camera sample renders 1.3 to
    # 1.6 times as slowly as a kernel one (bench/camera.py), and on the fitted preset's settings
    # it measured no closer to the real photos (docs/benchmarks.md).
    share_fitted = False
    settings = (
        Setting("camera_steps", "camera: recorded poses over the exposure [32].", kind="int",
                minimum=2),
        Setting("camera_speeds", "camera: relative speeds of pitch, yaw, roll (radians) and x, "
                "y, z translation (depths) [1,1,1,0.2,0.2,0.05].", kind="floats",
                metavar="P,Y,R,X,Y,Z"),
        Setting("camera_extent", "camera: the largest motion of a pixel, as fractions of the "
                "kernel's reach (K // 2 - 1 px) [0.05,0.5].", kind="pair", metavar="LOW,HIGH"),
        Setting("camera_focal", "camera: focal length in units of the photo's longer side "
                "[0.7,2].", kind="pair", metavar="LOW,HIGH"),
        Setting("rolling_shutter", "camera: a rolling shutter's readout time (the first row's "
                "exposure to the last's) as a fraction of the exposure, drawn from this range: "
                "each row blurs over its own part of the shake, so lines lean under a pan [0: "
                "a global shutter].", kind="range", metavar="LOW,HIGH"),
    )  # fmt: skip

    def default_section(self) -> CameraModel:
        return CameraModel()

    def calibrated(self, config, values, size) -> CameraModel:
        if "rolling_shutter" not in values:
            return config.camera
        return replace(config.camera, readout=(0.0, float(values["rolling_shutter"])))

    def documented_section(self) -> CameraModel:
        return CameraModel(readout=(0.0, 1.0))

    def section_from_settings(self, values: dict[str, Any]) -> CameraModel:
        fields = {"rolling_shutter": "readout"}
        given = {fields.get(name, name.removeprefix("camera_")): v
                 for name, v in values.items() if v is not None}  # fmt: skip
        return CameraModel(**given)

    def section_to_dict(self, config) -> dict:
        if self.name not in config.methods():
            return {}
        values = asdict(config.camera)
        if not config.camera.readout[1]:  # as files made before rolling shutters record it
            del values["readout"]
        return {
            self.section: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        }

    def section_from_dict(self, value: Any) -> CameraModel:
        return CameraModel(**(value or {}))  # it makes lists tuples

    def settings_of(self, config) -> dict:
        camera = config.camera
        return {"camera_steps": camera.steps,
                **{f"camera_{name}": ",".join(f"{v:.4g}" for v in getattr(camera, name))
                   for name in ("speeds", "extent", "focal")},
                "rolling_shutter": ",".join(f"{v:.4g}" for v in camera.readout)}  # fmt: skip

    def crop_reason(self, config) -> str:
        k = config.kernel_size
        return f"with camera shake within {k} px (--kernel-size) need {config.crop} px"

    def draw(self, rngs, config, device):
        return [draw_shake(rng, config.camera) for rng in rngs]

    def place(self, drawn, config, side, photo, origin, flips, params):
        size = config.kernel_size
        shake = fit_shake(drawn, size, side, photo, origin, flips)
        centre = np.array([[(side[1] - 1) / 2, (side[0] - 1) / 2]])
        return shake, params, kernel_field(shake, centre, size, side)[0]

    def render(self, crop, sharp, kernel, record, degradation, learned, dtype):
        bands = record.drawn.bands(crop.shape[:2])
        blurred = degradation.render_warped(crop, bands, kernel.shape[-1], record.params,
                                            dtype=dtype, tolerance=RENDER_TOLERANCE_PX)  # fmt: skip
        return get_xp(crop).asarray(blurred)

    def columns(self, config) -> dict[str, Column]:
        steps, g, k = config.camera.steps, FIELD_GRID, config.kernel_size
        return {
            "camera_trajectory": Column(np.float64, (steps, 6), "the shake's poses over the "
                                        "exposure (--camera-steps): pitch, yaw, roll (rad), tx, "
                                        "ty, tz (m)",
                                        {"chunks": (256, steps, 6)}),
            "camera_intrinsics": Column(np.float64, (3,), "focal length, principal point x, y "
                                        "(px, in the crop after its flips)", {"chunks": (256, 3)}),
            "camera_depth": Column(np.float64, (), "the scene plane's distance (m)",
                                   {"chunks": (256,)}),
            **({"camera_readout": Column(np.float64, (3,), "with --rolling-shutter: the "
                                         "readout (exposures), and the sensor row (0 top, 1 "
                                         "bottom) of the crop's row 0 and its step a row",
                                         {"chunks": (256, 3)})}
               if config.camera.readout[1] else {}),
            "kernel_field": Column(np.float32, (g, g, k, k), f"point-spread functions at the "
                                   f"centres of a {g} x {g} grid over the patch, row by row; "
                                   "gzip + shuffle", {"chunks": (1, g, g, k, k), **PACKED}),
        }  # fmt: skip

    def column_values(self, records, config, crop) -> dict[str, np.ndarray]:
        """Shakes (zeros for other samples) and their point-spread functions on a
        FIELD_GRID x FIELD_GRID grid over the sharp images (the centres of its cells, row by
        row)."""
        count, steps = len(records), config.camera.steps
        trajectory = np.zeros((count, steps, 6))
        intrinsics = np.zeros((count, 3))
        depth = np.zeros(count)
        for k, record in enumerate(records):
            if record.method == self.name:
                trajectory[k] = record.drawn.trajectory
                intrinsics[k] = record.drawn.intrinsics
                depth[k] = record.drawn.depth
        fields = kernel_fields(records, crop, config)
        values = {"camera_trajectory": trajectory, "camera_intrinsics": intrinsics,
                  "camera_depth": depth, "kernel_field": fields}  # fmt: skip
        if config.camera.readout[1]:
            values["camera_readout"] = np.array([
                (r.drawn.readout, *r.drawn.rows) if r.method == self.name else (0, 0, 0)
                for r in records], np.float64).reshape(count, 3)  # fmt: skip
        return values

    def read(self, f, row) -> CameraShake:
        focal, cx, cy = (float(v) for v in f["camera_intrinsics"][row])
        readout, v0, dv = f["camera_readout"][row] if "camera_readout" in f else (0.0, 0.0, 0.0)
        return CameraShake(f["camera_trajectory"][row], (focal, cx, cy),
                           float(f["camera_depth"][row]), float(readout),
                           (float(v0), float(dv)))  # fmt: skip

    def shown_kernels(self, record, kernel, config, shape) -> tuple[np.ndarray, int]:
        """The point-spread functions on the FIELD_GRID grid, in rows of FIELD_GRID."""
        field = kernel_fields([record], shape, config)[0]
        return field.reshape(-1, config.kernel_size, config.kernel_size), FIELD_GRID

    def report(self, record, config) -> dict:
        shake = record.drawn
        return {"camera": {"trajectory": shake.trajectory.tolist(),
                           "intrinsics": list(shake.intrinsics), "depth": shake.depth,
                           **({"readout": shake.readout, "rows": list(shake.rows)}
                              if shake.readout else {})}}  # fmt: skip


def kernel_fields(records: Sequence[Any], crop: tuple[int, int], config: Any) -> np.ndarray:
    """The point-spread functions of camera-shake samples on a FIELD_GRID x FIELD_GRID grid
    over their sharp images, zeros for other samples.

    Args:
        records: the samples' records.
        crop: (height, width) of the crops, px.
        config: the samples' config (its kernel size and boundary place the sharp image).

    Returns:
        (N, FIELD_GRID, FIELD_GRID, K, K) float32, each kernel as
        :func:`blurgen.kernels.camera.kernel_field` makes it.
    """
    size = config.kernel_size
    fields = np.zeros((len(records), FIELD_GRID, FIELD_GRID, size, size), np.float32)
    (height, width), offset = crop, 0
    if config.degradation.boundary == "valid":
        height, width, offset = height - size + 1, width - size + 1, valid_offset(size)
    points = field_points(height, width, FIELD_GRID) + offset
    for k, record in enumerate(records):
        if isinstance(record.drawn, CameraShake):
            kernel_field(record.drawn, points, size, crop, out=fields[k].reshape(-1, size, size))
    return fields
