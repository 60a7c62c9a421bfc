"""A camera's image signal processor around the blur: the noise lands on the RAW mosaic, and the
image is demosaiced, colour-corrected and tone-mapped as a camera does it.

The chain (after Brooks et al., "Unprocessing images for learned raw denoising", CVPR 2019, and
Rim et al., "Realistic blur synthesis for learning image deblurring" (RSBlur), ECCV 2022):
the sharp sRGB image is decoded to linear light (the degradation's own curve) and blurred there;
then, per sample, its linear RGB goes to the camera's RGB (:attr:`Isp.rgb_to_camera`) and is
divided by the white-balance gains; it saturates at 1, is sampled on a Bayer mosaic of one of
the four phases, and gets shot and read noise on the mosaic (saturated sites none); the gains
are applied again, the mosaic demosaiced (OpenCV's edge-aware, VNG or bilinear, or
Malvar-He-Cutler's gradient-corrected linear filters), the colours
brought back to linear RGB and encoded by the tone curve; an optional unsharp mask sharpens it
as cameras do; 8 bits and JPEG (OpenCV's, 4:2:0 chroma) follow as without the ISP.

A camera profile is a preset (``blurgen/presets/*.yaml``) that sets ``isp`` and the matrix,
gains and noise of a camera; see :data:`DEFAULT_XYZ_TO_CAMERA` for where the default matrix
comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .settings import Setting, as_flags

# The linear sRGB (D65) to CIE XYZ matrix.
RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])  # fmt: skip
# XYZ to camera RGB, the mean of the four cameras of the Darmstadt Noise Dataset (a Sony A7R, an
# Olympus E-M10, a Sony RX100 IV and a Huawei Nexus 6P phone), whose matrices Brooks et al.
# publish in their unprocessing code; a generic camera.
DEFAULT_XYZ_TO_CAMERA = (0.75308, -0.20548, -0.09172, -0.4856, 1.33955, 0.17165, -0.0966, 0.18368,
                         0.6052)  # fmt: skip
# Bayer phases: the 2x2 tile from the top left, and OpenCV's name for it (OpenCV names a
# pattern by the second row's second and third pixels).
PHASES = ("RGGB", "BGGR", "GRBG", "GBRG")
_OPENCV = {"RGGB": "BG", "BGGR": "RG", "GRBG": "GB", "GBRG": "GR"}
DEMOSAICS = ("ea", "vng", "bilinear", "malvar")
_CODES = {"ea": "COLOR_Bayer{}2RGB_EA", "vng": "COLOR_Bayer{}2RGB_VNG",
          "bilinear": "COLOR_Bayer{}2RGB"}  # fmt: skip
# Malvar, He and Cutler's filters ("High-quality linear interpolation for demosaicing of
# Bayer-patterned color images", ICASSP 2004), times 8: bilinear interpolation corrected by the
# Laplacian of the site's own colour. Green at a red or blue site; red (blue) at a green site
# whose row holds red (blue) sites, and at one whose column does; red at a blue site (and blue at
# a red one).
_MALVAR = {
    "green": [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0],
              [0, 0, -1, 0, 0]],
    "row": [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0],
            [0, 0, 0.5, 0, 0]],
    "column": [[0, 0, -1, 0, 0], [0, -1, 4, -1, 0], [0.5, 0, 5, 0, 0.5], [0, -1, 4, -1, 0],
               [0, 0, -1, 0, 0]],
    "across": [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0],
               [0, 0, -1.5, 0, 0]],
}  # fmt: skip

ISP_SETTINGS = (
    Setting("isp", "Run a camera's image signal processor around the blur: noise on the RAW "
            "mosaic, demosaicing, colour matrix, tone curve (see --isp-*).", kind="switch",
            default=False),
    Setting("isp_matrix", "isp: XYZ to camera RGB, 9 numbers row by row [the mean of the "
            "Darmstadt Noise Dataset's four cameras].", kind="floats", metavar="M11,...,M33"),
    Setting("isp_red_gain", "isp: white-balance gain of red, drawn from this range [1.9,2.4].",
            kind="pair", metavar="LOW,HIGH"),
    Setting("isp_blue_gain", "isp: white-balance gain of blue, drawn from this range "
            "[1.5,1.9].", kind="pair", metavar="LOW,HIGH"),
    Setting("isp_demosaic", "isp: the demosaicing: OpenCV's edge-aware (ea), VNG (on 8 bits) "
            "or bilinear, or Malvar-He-Cutler's gradient-corrected linear filters (malvar) [ea].",
            kind="choice", choices=DEMOSAICS),
    Setting("sharpen", "isp: in-camera sharpening, an unsharp mask whose amount is drawn from "
            "this range [none].", kind="pair", metavar="LOW,HIGH"),
    Setting("sharpen_radius", "isp: the unsharp mask's Gaussian sigma in px, drawn from this "
            "range [0.5,1.5].", kind="pair", metavar="LOW,HIGH"),
)  # fmt: skip


@dataclass(frozen=True)
class Isp:
    """A camera's processing, as ranges to draw from.

    Attributes:
        xyz_to_camera: the camera's XYZ to RGB matrix, 9 numbers row by row.
        red_gain, blue_gain: ranges of the white-balance gains (green's is 1).
        demosaic: ``"ea"``, ``"vng"``, ``"bilinear"`` or ``"malvar"``.
        sharpen: range of the unsharp mask's amount, or None for no sharpening.
        sharpen_radius: range of its Gaussian sigma, px.
    """

    xyz_to_camera: tuple[float, ...] = DEFAULT_XYZ_TO_CAMERA
    red_gain: tuple[float, float] = (1.9, 2.4)
    blue_gain: tuple[float, float] = (1.5, 1.9)
    demosaic: str = "ea"
    sharpen: tuple[float, float] | None = None
    sharpen_radius: tuple[float, float] = (0.5, 1.5)

    def __post_init__(self) -> None:
        matrix = tuple(float(v) for v in np.ravel(self.xyz_to_camera))
        if len(matrix) != 9 or abs(np.linalg.det(np.reshape(matrix, (3, 3)))) < 1e-6:
            raise ValueError(f"xyz_to_camera must be 9 numbers of an invertible matrix, got "
                             f"{self.xyz_to_camera!r}")  # fmt: skip
        object.__setattr__(self, "xyz_to_camera", matrix)
        if self.demosaic not in DEMOSAICS:
            raise ValueError(f"demosaic must be one of {', '.join(DEMOSAICS)}, got "
                             f"{self.demosaic!r}")  # fmt: skip
        for name, lowest in (("red_gain", 0.1), ("blue_gain", 0.1), ("sharpen", 0.0),
                             ("sharpen_radius", 0.1)):  # fmt: skip
            value = getattr(self, name)
            if value is None:
                continue
            low, high = (float(v) for v in value)
            if not lowest <= low <= high:
                raise ValueError(f"{name} must be a range {lowest:g} <= LOW <= HIGH, got {value!r}")
            object.__setattr__(self, name, (low, high))

    @property
    def rgb_to_camera(self) -> np.ndarray:
        """(3, 3) linear sRGB to camera RGB, each row scaled to sum to 1 so that white stays
        white before the white balance (as Brooks et al. do)."""
        matrix = np.reshape(self.xyz_to_camera, (3, 3)) @ RGB_TO_XYZ
        return matrix / matrix.sum(axis=1, keepdims=True)

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> Isp | None:
        """The ISP of :data:`ISP_SETTINGS`' parsed values, None when ``isp`` is off."""
        if not values.get("isp"):
            return None
        names = {"isp_matrix": "xyz_to_camera", "isp_red_gain": "red_gain",
                 "isp_blue_gain": "blue_gain", "isp_demosaic": "demosaic", "sharpen": "sharpen",
                 "sharpen_radius": "sharpen_radius"}  # fmt: skip
        try:
            return cls(**{field: values[name] for name, field in names.items()
                          if values.get(name) is not None})  # fmt: skip
        except ValueError as exc:  # named as the user wrote it
            raise ValueError(as_flags(str(exc), {f: n for n, f in names.items()})) from None

    def settings_of(self) -> dict:
        """Its settings as a preset file writes them."""

        def listed(values: Any) -> str | None:
            return None if values is None else ",".join(f"{v:.6g}" for v in values)

        return {"isp": True, "isp_matrix": listed(self.xyz_to_camera),
                "isp_red_gain": listed(self.red_gain), "isp_blue_gain": listed(self.blue_gain),
                "isp_demosaic": self.demosaic, "sharpen": listed(self.sharpen),
                "sharpen_radius": listed(self.sharpen_radius)}  # fmt: skip

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A sample's draws: five uniforms (the two gains, the phase, the sharpening's amount
        and radius), always, so that later draws line up whatever the settings."""
        u = rng.random(5)
        sharpen = None
        if self.sharpen is not None:
            sharpen = (_between(self.sharpen, u[3]), _between(self.sharpen_radius, u[4]))
        return {"gains": (_between(self.red_gain, u[0]), _between(self.blue_gain, u[1])),
                "bayer": min(3, int(u[2] * 4)), "sharpen": sharpen}  # fmt: skip

    def develop(
        self, light: np.ndarray, gains: tuple[float, float], bayer: int,
        sharpen: tuple[float, float] | None, noise: Any, encode: Any,
    ) -> np.ndarray:  # fmt: skip
        """The camera's image of blurred linear light.

        Args:
            light: (H, W, 3) float32 linear sRGB light (it may exceed 1: boosted highlights).
            gains: the red and blue white-balance gains.
            bayer: the mosaic's phase, an index into :data:`PHASES`.
            sharpen: the unsharp mask's (amount, sigma px), or None.
            noise: a function adding the sample's shot and read noise to the (H, W, 1) mosaic
                (identity without noise).
            encode: the tone curve, linear [0, 1] to encoded.

        Returns:
            (H, W, 3) float32 encoded values in [0, 1].
        """
        to_camera = self.rgb_to_camera.astype(np.float32)
        white = np.array([gains[0], 1.0, gains[1]], np.float32)
        camera = np.clip((light @ to_camera.T) / white, 0, 1)
        red, blue = _sites(bayer)
        mosaic = camera[..., 1].copy()
        mosaic[red[0] :: 2, red[1] :: 2] = camera[red[0] :: 2, red[1] :: 2, 0]
        mosaic[blue[0] :: 2, blue[1] :: 2] = camera[blue[0] :: 2, blue[1] :: 2, 2]
        saturated = mosaic >= 1
        noisy = noise(mosaic[..., None])[..., 0]
        mosaic = np.where(saturated, mosaic, noisy)
        gain = np.ones_like(mosaic)
        gain[red[0] :: 2, red[1] :: 2] = gains[0]
        gain[blue[0] :: 2, blue[1] :: 2] = gains[1]
        camera = self._demosaic(np.clip(mosaic * gain, 0, 1), bayer)
        rgb = np.clip(camera @ np.linalg.inv(to_camera).T.astype(np.float32), 0, 1)
        encoded = encode(rgb)
        if sharpen is not None:
            amount, sigma = sharpen
            smooth = cv2.GaussianBlur(encoded, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            encoded = np.clip(encoded + amount * (encoded - smooth), 0, 1)
        return encoded.astype(np.float32, copy=False)

    def _demosaic(self, mosaic: np.ndarray, bayer: int) -> np.ndarray:
        """(H, W) float mosaic in [0, 1] to (H, W, 3) float32 camera RGB."""
        if self.demosaic == "malvar":
            return np.clip(malvar_demosaic(mosaic, bayer), 0, 1)
        code = getattr(cv2, _CODES[self.demosaic].format(_OPENCV[PHASES[bayer]]))
        # OpenCV demosaics integers: 16 bits keep the noise's detail; VNG takes 8 only.
        top = 255 if self.demosaic == "vng" else 65535
        kind = np.uint8 if top == 255 else np.uint16
        image = np.rint(mosaic * top).astype(kind)
        return cv2.cvtColor(image, code).astype(np.float32) / top


def malvar_demosaic(mosaic: np.ndarray, bayer: int) -> np.ndarray:
    """Malvar-He-Cutler demosaicing of a Bayer mosaic, in float.

    Args:
        mosaic: (H, W) float mosaic (H, W >= 5).
        bayer: its phase, an index into :data:`PHASES`.

    Returns:
        (H, W, 3) float32 RGB, unclipped (the filters overshoot at edges); beyond the borders
        the mosaic is mirrored about its edge pixels, which keeps each site's colour.
    """
    mosaic = np.ascontiguousarray(mosaic, dtype=np.float32)
    # Symmetric kernels: filter2D's correlation is their convolution.
    filtered = {name: cv2.filter2D(mosaic, cv2.CV_32F, np.array(taps, np.float32) / 8,
                                   borderType=cv2.BORDER_REFLECT_101)
                for name, taps in _MALVAR.items()}  # fmt: skip
    (ry, rx), (by, bx) = _sites(bayer)
    rgb = np.empty((*mosaic.shape, 3), np.float32)
    for channel, (y, x), (oy, ox) in ((0, (ry, rx), (by, bx)), (2, (by, bx), (ry, rx))):
        out = rgb[..., channel]
        out[y::2, x::2] = mosaic[y::2, x::2]
        out[oy::2, ox::2] = filtered["across"][oy::2, ox::2]
        # The green sites in this colour's rows, and in its columns.
        out[y::2, 1 - x :: 2] = filtered["row"][y::2, 1 - x :: 2]
        out[1 - y :: 2, x::2] = filtered["column"][1 - y :: 2, x::2]
    green = filtered["green"].copy()
    green[1 - ry :: 2, rx::2] = mosaic[1 - ry :: 2, rx::2]  # green sites: its own
    green[ry::2, 1 - rx :: 2] = mosaic[ry::2, 1 - rx :: 2]
    rgb[..., 1] = green
    return rgb


def _sites(bayer: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (row, column) offsets of the red and blue sites of a phase's 2x2 tile."""
    tile = PHASES[bayer]
    red, blue = tile.index("R"), tile.index("B")
    return divmod(red, 2), divmod(blue, 2)


def _between(bounds: tuple[float, float], u: float) -> float:
    low, high = bounds
    return float(low + u * (high - low))
