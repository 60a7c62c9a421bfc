"""Random camera-shake trajectories after Boracchi & Foi (2012), vectorised over a batch.

A particle starts at the origin with a random heading and takes ``iters - 1`` steps of fixed length
``max_len / (iters - 1)``. At each step its velocity receives

* a Gaussian perturbation ``expl * gaussian_shake * (g_re + i g_im) * step``,
* an inertial pull toward the origin ``-expl * centripetal * x * step``,
* with probability ``prob_big_shake * expl``, an abrupt near-reversal ``2 v exp(i(pi + d))`` with
  ``d ~ U(-0.5, 0.5)``,

and is then renormalised to the step length. ``gaussian_shake``, ``centripetal`` and
``prob_big_shake`` are drawn per trajectory from ``U(0, bound)``; ``expl`` and the exposure fraction
from small sets. This is the parameterisation DeblurGAN uses.

All randomness is drawn on the host from one NumPy generator per trajectory
(:func:`draw_trajectories`), into a :class:`TrajectoryDraws` record; integrating the record is
deterministic. That is why the NumPy and CuPy backends agree, and why trajectory ``i`` does not
depend on which batch it was drawn in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

DEFAULT_EXPL = (0.003, 0.005, 0.007, 0.008, 0.009, 0.01)
DEFAULT_FRACTIONS = (0.1, 0.5, 1.0)
# DeblurGAN's trajectories are 60 px long on a 64 px canvas; other sizes keep that proportion.
PATH_LENGTH_PER_PX = 60.0 / 64.0
# Time steps integrated between stores: the (steps x batch) working block stays in cache.
_TIME_BLOCK = 64


@dataclass(frozen=True)
class MotionModel:
    """Parameters of the random-trajectory camera-shake model.

    Attributes:
        iters: points on the trajectory over the whole exposure (>= 2).
        max_len: path length of the whole exposure in pixels; ``None`` means ``60/64 * size``
            (60 px for 64 px kernels).
        expl: "explosiveness" values; one is drawn per trajectory. Scales the random
            perturbations and the chance of a big shake. Each in (0, 1].
        fractions: exposure fractions; one is drawn per trajectory and the kernel integrates
            only that first part of the path. Each in (0, 1].
        gaussian_shake: upper bound of the per-trajectory Gaussian shake amplitude (>= 0).
        centripetal: upper bound of the per-trajectory pull toward the origin (>= 0).
        prob_big_shake: upper bound of the per-trajectory big-shake probability factor, in [0, 1].
    """

    iters: int = 2000
    max_len: float | None = None
    expl: tuple[float, ...] = DEFAULT_EXPL
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    gaussian_shake: float = 10.0
    centripetal: float = 0.7
    prob_big_shake: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "expl", tuple(float(e) for e in self.expl))
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if int(self.iters) != self.iters or self.iters < 2:
            raise ValueError(f"iters must be an integer >= 2, got {self.iters!r}")
        object.__setattr__(self, "iters", int(self.iters))
        if self.max_len is not None and not (math.isfinite(self.max_len) and self.max_len > 0):
            raise ValueError(f"max_len must be a positive number of pixels, got {self.max_len!r}")
        _check_set("expl", self.expl)
        _check_set("fractions", self.fractions)
        for name in ("gaussian_shake", "centripetal"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.prob_big_shake <= 1:
            raise ValueError(f"prob_big_shake must be in [0, 1], got {self.prob_big_shake!r}")

    def path_length(self, size: int) -> float:
        """Path length in pixels of the whole exposure for kernels of ``size`` px."""
        return self.max_len if self.max_len is not None else PATH_LENGTH_PER_PX * size

    def resolved(self, size: int) -> dict:
        """JSON-serialisable parameters with ``max_len`` resolved for ``size``."""
        params = asdict(self)
        params["max_len"] = self.path_length(size)
        params["expl"] = list(self.expl)
        params["fractions"] = list(self.fractions)
        return params


def _check_set(name: str, values: tuple[float, ...]) -> None:
    if not values:
        raise ValueError(f"{name} needs at least one value")
    for value in values:
        if not (0 < value <= 1):
            raise ValueError(f"every {name} value must be in (0, 1], got {value!r}")


@dataclass(frozen=True)
class TrajectoryDraws:
    """Everything random about a batch of ``n`` trajectories, one row per trajectory.

    ``T`` is the largest number of steps in the batch; entries past a trajectory's own
    ``points - 1`` steps are zero and never used.

    Attributes:
        step: step length in pixels (the same for all).
        angle: (n,) float64, initial heading in radians, in [0, 2 pi).
        expl: (n,) float64, explosiveness.
        fraction: (n,) float64, exposure fraction.
        points: (n,) int64, points of the path inside the exposure fraction (>= 2).
        gaussian_shake, centripetal, prob_big_shake: (n,) float64, per-trajectory amplitudes.
        noise: (n, T) complex64, standard Gaussian per component, one per step.
        shake_row, shake_step: (E,) int64, the row and step of each big shake (a few per
            trajectory at most, so they are kept as a list).
        shake_turn: (E,) float32, each big shake's angular offset d in [-0.5, 0.5).
        source: (n,) int64, the generator each row was drawn from.
    """

    step: float
    angle: np.ndarray
    expl: np.ndarray
    fraction: np.ndarray
    points: np.ndarray
    gaussian_shake: np.ndarray
    centripetal: np.ndarray
    prob_big_shake: np.ndarray
    noise: np.ndarray
    shake_row: np.ndarray
    shake_step: np.ndarray
    shake_turn: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def take(self, index: np.ndarray) -> TrajectoryDraws:
        """The trajectories at ``index`` (integers without repeats), in that order."""
        index = np.asarray(index, np.int64)
        new_row = np.full(len(self), -1, np.int64)
        new_row[index] = np.arange(len(index))
        row = new_row[self.shake_row]
        kept = row >= 0
        per_row = {
            f.name: getattr(self, f.name)[index]
            for f in fields(self)
            if f.name not in ("step", "shake_row", "shake_step", "shake_turn")
        }
        return TrajectoryDraws(
            step=self.step,
            shake_row=row[kept],
            shake_step=self.shake_step[kept],
            shake_turn=self.shake_turn[kept],
            **per_row,
        )


def trajectory_rngs(seed: int, start: int, n: int) -> list[np.random.Generator]:
    """One generator per trajectory: trajectory ``i`` draws from ``default_rng([seed, i])``.

    Args:
        seed: root seed, a non-negative integer.
        start: index of the first trajectory (>= 0).
        n: number of trajectories (>= 0).
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if int(start) != start or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return [np.random.default_rng([int(seed), i]) for i in range(int(start), int(start) + int(n))]


def draw_trajectories(
    rngs: Sequence[np.random.Generator],
    model: MotionModel,
    size: int,
    *,
    longest_first: bool = False,
) -> TrajectoryDraws:
    """Draw the randomness of one trajectory from each generator.

    The order of draws from each generator is part of the format (it fixes which kernel a seed
    gives): six uniforms (expl, fraction, gaussian_shake, centripetal, prob_big_shake, heading),
    then ``2 (points - 1)`` float32 normals, ``points - 1`` uniforms deciding big shakes, and one
    uniform per big shake for its angle.

    Args:
        rngs: one NumPy generator per trajectory.
        model: the motion model.
        size: kernel size in pixels (sets the path length when ``model.max_len`` is None).
        longest_first: order the rows by decreasing ``points`` (stable), the order in which
            :func:`integrate_trajectories` is fastest; ``source`` says where each row came from.

    Returns:
        The draws, one row per generator.
    """
    n = len(rngs)
    expl_set = np.asarray(model.expl)
    fraction_set = np.asarray(model.fractions)
    scalars = np.empty((n, 6))
    for k, rng in enumerate(rngs):
        scalars[k] = rng.random(6)
    expl = expl_set[np.minimum((scalars[:, 0] * len(expl_set)).astype(np.int64), len(expl_set) - 1)]
    fraction = fraction_set[
        np.minimum((scalars[:, 1] * len(fraction_set)).astype(np.int64), len(fraction_set) - 1)
    ]
    points = np.maximum(2, np.rint(fraction * model.iters)).astype(np.int64)
    source = longest_first_order(points) if longest_first else np.arange(n)
    points = points[source]
    shake_probability = (model.prob_big_shake * scalars[:, 4] * expl)[source]

    steps = int(points.max()) - 1 if n else 0
    noise = np.zeros((n, steps), np.complex64)
    uniforms = np.empty(steps)
    shake_rows, shake_steps, shake_turns = [], [], []
    for row, k in enumerate(source.tolist()):
        rng, m = rngs[k], int(points[row]) - 1
        rng.standard_normal(dtype=np.float32, out=noise[row, :m].view(np.float32))
        rng.random(out=uniforms[:m])
        # Most trajectories have no big shake: one pass over the uniforms tells.
        if uniforms[:m].min() < shake_probability[row]:
            at = np.flatnonzero(uniforms[:m] < shake_probability[row])
            shake_rows.append(np.full(len(at), row))
            shake_steps.append(at)
            shake_turns.append((rng.random(len(at)) - 0.5).astype(np.float32))
    return TrajectoryDraws(
        step=model.path_length(size) / (model.iters - 1),
        angle=(2 * np.pi * scalars[:, 5])[source],
        expl=expl[source],
        fraction=fraction[source],
        points=points,
        gaussian_shake=(model.gaussian_shake * scalars[:, 2])[source],
        centripetal=(model.centripetal * scalars[:, 3])[source],
        prob_big_shake=(model.prob_big_shake * scalars[:, 4])[source],
        noise=noise,
        shake_row=np.concatenate(shake_rows or [np.zeros(0, np.int64)]).astype(np.int64),
        shake_step=np.concatenate(shake_steps or [np.zeros(0, np.int64)]).astype(np.int64),
        shake_turn=np.concatenate(shake_turns or [np.zeros(0, np.float32)]),
        source=source,
    )


def step_coefficients(draws: TrajectoryDraws) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-trajectory factors of the velocity update, shared by the NumPy and CUDA integrators.

    Returns:
        ``(velocity0, gain, pull)``: (n,) complex128 initial velocity of length ``step``, and
        (n,) float64 ``expl * gaussian_shake * step`` and ``expl * centripetal * step``.
    """
    velocity0 = draws.step * np.exp(1j * draws.angle)
    gain = draws.expl * draws.gaussian_shake * draws.step
    pull = draws.expl * draws.centripetal * draws.step
    return velocity0, gain, pull


def turn_factors(draws: TrajectoryDraws) -> np.ndarray:
    """(n, T) complex128: ``2 exp(i(pi + d))`` where a big shake happens, else 0."""
    factors = np.zeros(draws.noise.shape, np.complex128)
    factors[draws.shake_row, draws.shake_step] = big_shake_factors(draws.shake_turn)
    return factors


def big_shake_factors(turn: np.ndarray) -> np.ndarray:
    """The velocity factor ``2 exp(i(pi + d))`` of big shakes with angular offsets ``d``."""
    return 2 * np.exp(1j * (np.pi + turn.astype(np.float64)))


def integrate_trajectories(draws: TrajectoryDraws) -> np.ndarray:
    """Positions of every trajectory, by the recursion in the module docstring (NumPy, float64).

    Fastest when ``draws.points`` is non-increasing (``draw_trajectories(...,
    longest_first=True)``): at step ``t``
    only the prefix of the batch still inside its exposure is then updated.

    Returns:
        (n, T + 1) complex128: ``x[k, t]`` is trajectory ``k`` after ``t`` steps, with
        ``x = column + 1j * row`` in pixels relative to the start. Past a trajectory's
        ``points`` its last position is repeated.
    """
    order = longest_first_order(draws.points)
    if not np.array_equal(order, np.arange(len(draws))):
        return integrate_trajectories(draws.take(order))[np.argsort(order)]
    n = len(draws)
    steps = draws.noise.shape[1]
    points = draws.points
    moving = np.searchsorted(-points, -(np.arange(steps) + 1), side="left")
    velocity0, gain, pull = step_coefficients(draws)
    # Big shakes are rare (a few per trajectory): keep them as (step -> trajectories, factors).
    by_step = np.argsort(draws.shake_step, kind="stable")
    shake_k = draws.shake_row[by_step]
    shake_factor = big_shake_factors(draws.shake_turn[by_step])
    bounds = np.searchsorted(draws.shake_step[by_step], np.arange(steps + 1))

    positions = np.empty((n, steps + 1), np.complex128)
    positions[:, 0] = 0
    # The time loop works on a small time-major block (row 0: the positions at its start) that
    # stays in cache; each finished block is stored transposed, one trajectory per row.
    block = np.zeros((_TIME_BLOCK + 1, n), np.complex128)
    v = velocity0.copy()
    dv = np.empty(n, np.complex128)
    speed = np.empty(n)
    # The loop runs 2,000 steps of a few tiny NumPy calls each, so Python's own work counts:
    # plain ints, and the views of the first k trajectories made once per block and k.
    moving, bounds, step = moving.tolist(), bounds.tolist(), draws.step
    for t0 in range(0, steps, _TIME_BLOCK):
        t1 = min(t0 + _TIME_BLOCK, steps)
        active = moving[t0]
        drive = draws.noise[:active, t0:t1].T * gain[:active]
        cut = -1
        for t in range(t0, t1):
            k, r = moving[t], t - t0
            if k != cut:
                cut = k
                vk, dvk, sk, pullk = v[:k], dv[:k], speed[:k], pull[:k]
                rows, drives = block[:, :k], drive[:, :k]
            np.multiply(rows[r], pullk, out=dvk)
            np.subtract(drives[r], dvk, out=dvk)
            first, stop = bounds[t], bounds[t + 1]
            if first < stop:
                who = shake_k[first:stop]
                dv[who] += shake_factor[first:stop] * v[who]
            vk += dvk
            np.abs(vk, out=sk)
            np.divide(step, sk, out=sk)
            vk *= sk
            np.add(rows[r], vk, out=rows[r + 1])
        positions[:, t0 + 1 : t1 + 1] = block[1 : t1 - t0 + 1].T
        block[0] = block[t1 - t0]
    # Trajectories that stopped early keep their last position (groups of equal length).
    for first in np.flatnonzero(np.diff(points, prepend=-1)):
        last = points[first] - 1
        stop = np.searchsorted(-points, -points[first], side="right")
        positions[first:stop, last + 1 :] = positions[first:stop, last : last + 1]
    return positions


def longest_first_order(points: np.ndarray) -> np.ndarray:
    """The stable order that sorts trajectories by decreasing number of points."""
    return np.argsort(-points, kind="stable")
