"""Six-degree-of-freedom camera shake: random rotations and translations of a pinhole camera over
the exposure, the homographies they induce on a fronto-parallel scene, and the spatially
varying point-spread functions (kernel fields) they make.

The camera turns by (pitch, yaw, roll) radians about its x, y and optical axes and moves by
(tx, ty, tz) metres, seen from a plane at ``depth`` metres. A pose maps the sharp image (the
view from the exposure's mean pose) to the view at time t by the plane-induced homography
``H_t = K (R_t + t_t n^T / depth) K^-1 H_mean^-1`` with n = (0, 0, 1); the blurred image is the
mean over the exposure of the sharp image warped by each ``H_t``, the T recorded poses and
poses interpolated between them (so that no pixel jumps more than half a px). A point source at
x then spreads over ``H_t x``: its kernel has an equal weight at offset ``H_t x - x`` for each
pose, drawn with bilinear weights.

With a rolling shutter (``readout`` r > 0, the delay between the first row's exposure and the
last's, as a fraction of the exposure), the trajectory spans the exposure and the readout, and a
row of the sensor at v (0 at the top row, 1 at the bottom) integrates the window
``[v r / (1 + r), v r / (1 + r) + 1 / (1 + r)]`` of it: straight lines lean under a pan, and the
blur changes from top to bottom. It is rendered in bands of rows thin enough that no pixel moves
more than half a pixel between neighbouring bands' windows.

Each degree of freedom's velocity is a random walk with inertia (an AR(1) process); their
speeds relative to each other are the model's (rotation dominates hand-held shake, Koehler et
al. 2012); the whole trajectory is then scaled so that the largest displacement of any pixel of
the crop, along either axis, is a drawn fraction of the kernel's reach. So blur extents match
kernel blur of the same ``kernel_size``, and a crop of P + K - 1 px leaves a valid P x P
centre, whose every pixel's path stays inside the crop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .psf import splat_points

# The displacement is measured at the crop's corners, edge midpoints and centre: a
# homography's displacement field is nearly affine over a crop, so its largest value is at a
# corner; the reach keeps one px of margin for the bilinear weights.
REACH_MARGIN_PX = 1
# Exposures are sampled densely enough that no pixel moves more than this between two
# samples (the recorded poses are 32 by default; a 30 px path would leave gaps, and the blur
# would show separate copies of the image instead of a streak).
MAX_GAP_PX = 0.5
# Scalings of a trajectory tried to fit its extent: each is exact for an affine field; a few
# more steps absorb the perspective terms, to within a thousandth of the extent (0.05 px at
# K=101, within the reach's margin).
FIT_ROUNDS = 8
FIT_PRECISION = 1e-3
# The longest readout, in exposures: a phone's sensor reads out in about 1/30 s, 33 exposures of
# 1/1000 s.
MAX_READOUT = 64.0


@dataclass(frozen=True)
class CameraModel:
    """Parameters of the random 6-DoF camera-shake model.

    Attributes:
        steps: time samples T over the exposure (>= 2).
        inertia: how much of each step's velocity carries over to the next, in [0, 1).
        speeds: relative speeds of (pitch, yaw, roll, tx, ty, tz), with rotations in radians
            and translations in units of the scene's depth; only their ratios matter, since
            the trajectory is scaled to its drawn extent.
        extent: range of the largest displacement of any pixel of the crop, as fractions of
            the kernel's reach (``kernel_size // 2 - 1`` px), drawn uniformly; in (0, 1].
        focal: range of the focal length in units of the photo's longer side, drawn
            uniformly (0.7 to 2: 25 to 70 mm on a full-frame camera).
        depth: range of the scene's depth in metres, drawn uniformly (it scales the recorded
            translations, not the image: a plane's view depends on translation over depth).
        readout: range of the rolling shutter's readout time as a fraction of the exposure,
            drawn uniformly (0: a global shutter, drawing nothing).
    """

    steps: int = 32
    inertia: float = 0.8
    speeds: tuple[float, ...] = (1.0, 1.0, 1.0, 0.2, 0.2, 0.05)
    extent: tuple[float, float] = (0.05, 0.5)
    focal: tuple[float, float] = (0.7, 2.0)
    depth: tuple[float, float] = (0.5, 5.0)
    readout: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 2:
            raise ValueError(f"steps must be a whole number >= 2, got {self.steps!r}")
        if not 0 <= self.inertia < 1:
            raise ValueError(f"inertia must be in [0, 1), got {self.inertia!r}")
        speeds = tuple(float(s) for s in self.speeds)
        if len(speeds) != 6 or min(speeds) < 0 or max(speeds) == 0:
            raise ValueError(f"speeds must be 6 non-negative numbers, not all 0, got {speeds!r}")
        object.__setattr__(self, "speeds", speeds)
        for name, low_bound in (("extent", 0.0), ("focal", 0.0), ("depth", 0.0)):
            low, high = (float(v) for v in getattr(self, name))
            if not low_bound < low <= high or (name == "extent" and high > 1):
                raise ValueError(f"{name} must be a range LOW <= HIGH of positive numbers"
                                 f"{' up to 1' if name == 'extent' else ''}, got "
                                 f"{getattr(self, name)!r}")  # fmt: skip
            object.__setattr__(self, name, (low, high))
        low, high = (float(v) for v in np.broadcast_to(self.readout, 2))
        if not 0 <= low <= high <= MAX_READOUT:
            raise ValueError(f"readout must be a range 0 <= LOW <= HIGH <= {MAX_READOUT:g}, got "
                             f"{self.readout!r}")  # fmt: skip
        object.__setattr__(self, "readout", (low, high))


@dataclass(frozen=True)
class CameraShake:
    """One drawn shake, in the frame of a crop.

    Attributes:
        trajectory: (T, 6) float64 poses (pitch, yaw, roll in radians; tx, ty, tz in
            metres), one per time step.
        intrinsics: (f, cx, cy): focal length and principal point in px, in the crop's
            coordinates (x right, y down, the top-left pixel's centre at (0, 0)).
        depth: the scene plane's distance, metres.
        readout: the rolling shutter's readout time as a fraction of the exposure (0: global).
        rows: ``(v0, dv)``: the crop's row y sits at ``v0 + dv * y`` on the sensor (0 at its
            top row, 1 at its bottom; dv < 0 for a crop flipped top to bottom).
    """

    trajectory: np.ndarray
    intrinsics: tuple[float, float, float]
    depth: float
    readout: float = 0.0
    rows: tuple[float, float] = (0.0, 0.0)
    # The homographies by (shape, gap), None for the recorded poses': a sample's are wanted
    # for its fit, its kernel and its blur.
    _dense: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def homographies(
        self, shape: tuple[int, int] | None = None, gap: float = MAX_GAP_PX
    ) -> np.ndarray:
        """(T', 3, 3) float64 maps from the sharp view's pixels to each sampled pose's.

        Args:
            shape: (height, width) of the image they will warp: between recorded poses,
                as many evenly spaced ones are added (the same number between each two;
                poses interpolated linearly) as keep every pixel within ``gap`` px of where
                the previous pose put it. None: the T recorded poses only.
            gap: px (a finer one makes references for the renders).
        """
        key = None if shape is None else (tuple(shape), gap)
        if key not in self._dense:
            if shape is None:
                self._dense[key] = self._maps(self.trajectory)
            else:
                times, _ = self._sampling(shape, gap)
                self._dense[key] = self._maps(self._poses(times))
        return self._dense[key]

    def bands(self, shape: tuple[int, int]) -> list[tuple[int, int, np.ndarray]]:
        """The rows of an image of ``shape`` in bands, each with the homographies of its
        window of the exposure: ``[(first_row, stop_row, (T', 3, 3))]``; one band of every
        row (:meth:`homographies`) for a global shutter.

        Bands are thin enough that no pixel moves more than MAX_GAP_PX between neighbouring
        bands' windows; each window is sampled as densely as :meth:`homographies` samples the
        whole exposure.
        """
        if self.readout == 0:
            return [(0, shape[0], self.homographies(shape))]
        times, speed = self._sampling(shape)
        shift_per_row = abs(self.rows[1]) * self.readout / (1 + self.readout) * times[-1]
        rows = max(1, int(MAX_GAP_PX / max(speed * shift_per_row, 1e-12)))
        bands = []
        for first in range(0, shape[0], rows):
            stop = min(shape[0], first + rows)
            window = self._window(times, (first + stop - 1) / 2)
            bands.append((first, stop, self._maps(self._poses(window))))
        return bands

    def _sampling(
        self, shape: tuple[int, int], gap: float = MAX_GAP_PX
    ) -> tuple[np.ndarray, float]:
        """Sample times over the whole trajectory (in steps; at the recorded poses, and as many
        evenly between each two as keep every pixel within ``gap`` px of the previous
        sample's place) and the pixels' largest speed, px a step."""
        steps = len(self.trajectory)
        moved = project(self.homographies(), crop_probes(*shape))
        speed = float(np.abs(np.diff(moved, axis=0)).max())
        between = max(1, int(np.ceil(speed / gap)))
        return np.linspace(0, steps - 1, (steps - 1) * between + 1), speed

    def _window(self, times: np.ndarray, row: float) -> np.ndarray:
        """The sample times of crop row ``row``'s window (as many as a global shutter's
        samples of a 1 / (1 + r) share of the exposure, at least 2)."""
        v = self.rows[0] + self.rows[1] * row
        span = times[-1]
        start = v * self.readout / (1 + self.readout) * span
        count = max(2, int(np.ceil((len(times) - 1) / (1 + self.readout))) + 1)
        return np.linspace(start, start + span / (1 + self.readout), count)

    def _poses(self, times: np.ndarray) -> np.ndarray:
        """The poses (P, 6) at times (P,) in steps, interpolated linearly."""
        steps = np.arange(len(self.trajectory))
        return np.stack([np.interp(times, steps, dof) for dof in self.trajectory.T], 1)

    def _maps(self, poses: np.ndarray) -> np.ndarray:
        """The homographies (P, 3, 3) of poses (P, 6), relative to the mean pose."""
        k, k_inv = _camera_matrices(*self.intrinsics)
        poses = np.concatenate([poses, self.trajectory.mean(axis=0)[None]])
        # The plane n = (0, 0, 1): translation over depth enters the third column only.
        views = rotation_matrix(poses[:, :3])
        views[:, :, 2] += poses[:, 3:] / self.depth
        maps = k @ views @ k_inv
        return maps[:-1] @ np.linalg.inv(maps[-1])

    def displacements(self, points: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Where points (M, 2) as (x, y) px move at each sampled pose (see
        :meth:`homographies`; with a rolling shutter, at the samples of each point's row's
        window, which needs ``shape``): (T', M, 2) offsets, px."""
        if self.readout == 0 or shape is None:
            return project(self.homographies(shape), points) - points
        times, _ = self._sampling(shape)
        moved = [project(self._maps(self._poses(self._window(times, point[1]))), point[None])
                 for point in points]  # fmt: skip
        return np.concatenate(moved, axis=1) - points


@functools.lru_cache(maxsize=64)
def _camera_matrices(f: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """The camera matrix of intrinsics and its inverse (read-only): a sample's fit and render
    want them several times."""
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    matrices = k, np.linalg.inv(k)
    for matrix in matrices:
        matrix.setflags(write=False)
    return matrices


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """The rotations (..., 3, 3) of rotation vectors (..., 3), (pitch, yaw, roll) in radians
    (Rodrigues)."""
    angles = np.asarray(angles, np.float64)
    theta = np.sqrt(np.add.reduce(angles * angles, axis=-1))[..., None, None]
    x, y, z = angles[..., 0], angles[..., 1], angles[..., 2]
    # The cross-product matrix of the rotation vector; its powers over theta give the axis's.
    cross = np.zeros((*angles.shape[:-1], 3, 3))
    cross[..., 0, 1], cross[..., 0, 2], cross[..., 1, 2] = -z, y, -x
    cross[..., 1, 0], cross[..., 2, 0], cross[..., 2, 1] = z, -y, x
    # The fit and the renders call this a few times a sample, on a few dozen poses: the limits
    # at theta = 0 are filled in only where there is one.
    zero = theta == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        sine = np.sin(theta) / theta
        versine = (1 - np.cos(theta)) / theta**2
    if zero.any():
        sine, versine = np.where(zero, 1.0, sine), np.where(zero, 0.5, versine)
    return np.eye(3) + sine * cross + versine * cross @ cross


def project(homographies: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (M, 2) as (x, y) mapped by each of (T, 3, 3) homographies: (T, M, 2)."""
    lifted = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    mapped = np.tensordot(homographies, lifted, axes=([2], [1]))  # (T, 3, M): one BLAS call
    return (mapped[:, :2] / mapped[:, 2:]).transpose(0, 2, 1)


def crop_probes(height: int, width: int) -> np.ndarray:
    """The crop's corners, edge midpoints and centre (9, 2) as (x, y) px."""
    xs, ys = (0, (width - 1) / 2, width - 1), (0, (height - 1) / 2, height - 1)
    return np.array([(x, y) for y in ys for x in xs], np.float64)


@dataclass(frozen=True)
class ShakeDraw:
    """The random part of a shake, before it is fitted to a crop (see :func:`fit_shake`).

    Attributes:
        trajectory: (T, 6) poses at the model's relative speeds (translations in units of
            the depth), before scaling.
        extent: fraction of the kernel's reach that the largest displacement will be.
        focal: focal length in units of the photo's longer side.
        depth: the scene plane's distance, metres.
    """

    trajectory: np.ndarray
    extent: float
    focal: float
    depth: float
    readout: float = 0.0


def draw_shake(rng: np.random.Generator, model: CameraModel) -> ShakeDraw:
    """Draw a shake's random part: 6 T normals (the velocities' shocks), then the extent,
    the focal length and the depth (three uniforms), and with a rolling shutter its readout
    (one more)."""
    shocks = rng.standard_normal((model.steps, 6))
    velocity = np.empty_like(shocks)
    velocity[0] = shocks[0]
    keep = model.inertia
    for t in range(1, model.steps):
        velocity[t] = keep * velocity[t - 1] + np.sqrt(1 - keep**2) * shocks[t]
    trajectory = np.cumsum(velocity * np.array(model.speeds), axis=0)
    extent, focal, depth = rng.random(3)
    low, high = model.readout
    return ShakeDraw(
        trajectory,
        float(model.extent[0] + extent * (model.extent[1] - model.extent[0])),
        float(model.focal[0] + focal * (model.focal[1] - model.focal[0])),
        float(model.depth[0] + depth * (model.depth[1] - model.depth[0])),
        float(low + rng.random() * (high - low)) if high > 0 else 0.0,
    )


def fit_shake(
    draw: ShakeDraw,
    kernel_size: int,
    crop: tuple[int, int],
    photo: tuple[int, int],
    origin: tuple[int, int],
    flips: tuple[bool, bool] = (False, False),
) -> CameraShake:
    """A drawn shake in the frame of a crop, scaled so that no pixel of the crop moves more
    than ``draw.extent * (kernel_size // 2 - 1)`` px from where the mean pose puts it.

    The principal point is the photo's centre, so that a crop far from it is blurred as that
    part of the photo would be (roll moves it along circles about the photo's centre).

    Args:
        draw: the random part.
        kernel_size: K.
        crop: (height, width) of the crop, px.
        photo: (height, width) of the whole photo, px.
        origin: (y, x) of the crop's top-left corner in the photo.
        flips: (horizontal, vertical) mirrorings of the crop: the principal point is
            mirrored with it.
    """
    cx, cy = (photo[1] - 1) / 2 - origin[1], (photo[0] - 1) / 2 - origin[0]
    if flips[0]:
        cx = crop[1] - 1 - cx
    if flips[1]:
        cy = crop[0] - 1 - cy
    dv = 1 / max(1, photo[0] - 1)
    rows = ((origin[0] + crop[0] - 1) * dv, -dv) if flips[1] else (origin[0] * dv, dv)
    rows = rows if draw.readout else (0.0, 0.0)
    intrinsics = (draw.focal * max(photo), float(cx), float(cy))
    target = draw.extent * (kernel_size // 2 - REACH_MARGIN_PX)
    probes = crop_probes(*crop)
    trajectory = draw.trajectory.copy()
    trajectory[:, 3:] *= draw.depth  # units of the depth -> metres
    # Every row's window is part of the whole trajectory, bounded so.
    shake = CameraShake(trajectory, intrinsics, draw.depth, draw.readout, rows)
    for _ in range(FIT_ROUNDS):
        largest = float(np.abs(shake.displacements(probes)).max())
        if largest == 0 or abs(largest - target) <= FIT_PRECISION * target:
            break  # the shake keeps the maps just made: its render wants them too
        shake = CameraShake(shake.trajectory * (target / largest), intrinsics, draw.depth,
                            draw.readout, rows)  # fmt: skip
    return shake


def kernel_field(
    shake: CameraShake,
    points: np.ndarray,
    kernel_size: int,
    shape: tuple[int, int] | None = None,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The point-spread functions of point sources at ``points`` (M, 2) as (x, y) px.

    Each kernel holds 1/T' at offset ``H_t x - x`` for each sampled pose (those of
    ``shake.homographies(shape)``: pass the shape of the image the blur is rendered on),
    drawn with bilinear weights, indexed [dy, dx] from the top left as blurgen's kernels are
    (the blurred image takes ``kernel[c + d] * sharp[p - d]``). Offsets beyond the kernel are
    clipped to its edge.

    Returns:
        (M, K, K) float32, each summing to 1: ``out`` where it is given (an (M, K, K)
        float32 array, written in place, which saves a copy of a large field).
    """
    offsets = shake.displacements(points, shape).transpose(1, 0, 2)  # (M, T', 2): (dx, dy)
    count, steps = offsets.shape[:2]
    # splat_points takes coordinates from the grid's corner, short of its last pixel.
    grid = np.clip(offsets + kernel_size // 2, 0, np.nextafter(kernel_size - 1, 0))
    kernels = splat_points(grid[..., 0].ravel(), grid[..., 1].ravel(),
                           np.full(count, steps), kernel_size)  # fmt: skip
    if out is None:
        return kernels.astype(np.float32)
    out[...] = kernels
    return out


def field_points(height: int, width: int, grid: int) -> np.ndarray:
    """The centres of a ``grid`` x ``grid`` division of an image (grid * grid, 2) as (x, y)
    px, row by row."""
    ys = (np.arange(grid) + 0.5) * height / grid - 0.5
    xs = (np.arange(grid) + 0.5) * width / grid - 0.5
    return np.array([(x, y) for y in ys for x in xs], np.float64)
