"""Motion and linear kernels: properties, exact agreement with the scalar reference, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from blurgen.kernels import (
    MotionModel,
    kernel_centroid,
    line_kernel,
    linear_kernels,
    linear_kernels_from,
    motion_kernels,
    motion_kernels_from,
)
from blurgen.kernels.linear import max_line_length
from blurgen.kernels.trajectory import (
    draw_trajectories,
    integrate_trajectories,
    trajectory_rngs,
)

from scalar_reference import reference_kernel, reference_splat


def principal_axis(kernel: np.ndarray) -> tuple[float, float, float]:
    """(angle in degrees counter-clockwise on screen, major std, minor std) of a kernel's mass."""
    k = np.asarray(kernel, np.float64)
    rows, cols = np.indices(k.shape)
    x, y = cols, -rows  # screen up is -row
    mx, my = (k * x).sum(), (k * y).sum()
    cxx = (k * (x - mx) ** 2).sum()
    cyy = (k * (y - my) ** 2).sum()
    cxy = (k * (x - mx) * (y - my)).sum()
    values, vectors = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    major = vectors[:, 1]
    angle = np.degrees(np.arctan2(major[1], major[0])) % 180
    return angle, float(np.sqrt(values[1])), float(np.sqrt(values[0]))


class TestMotionKernels:
    def test_shape_dtype(self):
        k = motion_kernels(5, 33, seed=1)
        assert k.shape == (5, 33, 33)
        assert k.dtype == np.float32

    def test_empty_batch(self):
        assert motion_kernels(0, 16).shape == (0, 16, 16)

    @pytest.mark.parametrize("size", [7, 16, 31, 64])
    def test_non_negative_sum_one_centred(self, size):
        k = motion_kernels(64, size, seed=11)
        assert k.min() >= 0
        np.testing.assert_allclose(k.sum(axis=(1, 2), dtype=np.float64), 1.0, atol=1e-6)
        centroid = kernel_centroid(k)
        assert np.abs(centroid - size // 2).max() < 0.05

    @pytest.mark.parametrize("size", [64, 31, 12])
    def test_matches_scalar_reference(self, size):
        draws = draw_trajectories(trajectory_rngs(3, 0, 12), MotionModel(), size)
        kernels = motion_kernels(12, size, seed=3)
        assert len(set(draws.points.tolist())) > 1, "the batch should mix exposure fractions"
        for i in range(12):
            np.testing.assert_allclose(kernels[i], reference_kernel(draws, i, size), atol=1e-7)

    def test_big_shakes_match_reference(self):
        # Frequent, strong shakes exercise the reversal term of the recursion.
        model = MotionModel(expl=(0.5,), prob_big_shake=0.2, iters=300)
        draws = draw_trajectories(trajectory_rngs(5, 0, 6), model, 32)
        assert len(draws.shake_step) >= 6
        kernels = motion_kernels_from(trajectory_rngs(5, 0, 6), 32, model)
        for i in range(6):
            np.testing.assert_allclose(kernels[i], reference_kernel(draws, i, 32), atol=1e-7)

    def test_paths_longer_than_the_kernel_are_shrunk_not_clipped(self):
        # Nearly straight, long paths: far larger than the kernel.
        model = MotionModel(max_len=300.0, fractions=(1.0,), centripetal=0.0, gaussian_shake=1.0)
        draws = draw_trajectories(trajectory_rngs(9, 0, 8), model, 21)
        kernels = motion_kernels_from(trajectory_rngs(9, 0, 8), 21, model)
        for i in range(8):
            path = integrate_trajectories(draws.take(np.array([i])))[0]
            assert np.ptp(path.real) > 21 or np.ptp(path.imag) > 21
            np.testing.assert_allclose(kernels[i], reference_kernel(draws, i, 21), atol=1e-7)
        # Mass reaches the border (the path was fitted to it), none is lost.
        border = kernels[:, [0, -1], :].sum(axis=(1, 2)) + kernels[:, :, [0, -1]].sum(axis=(1, 2))
        assert border.min() > 0
        np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-6)
        assert np.abs(kernel_centroid(kernels) - 10).max() < 0.05

    def test_same_seed_same_kernels_other_seed_different(self):
        a = motion_kernels(16, 32, seed=7)
        b = motion_kernels(16, 32, seed=7)
        c = motion_kernels(16, 32, seed=8)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)

    def test_kernel_i_does_not_depend_on_n_or_start(self):
        full = motion_kernels(300, 24, seed=2)
        np.testing.assert_array_equal(motion_kernels(1, 24, seed=2), full[:1])
        np.testing.assert_array_equal(motion_kernels(77, 24, seed=2), full[:77])
        np.testing.assert_array_equal(motion_kernels(50, 24, seed=2, start=200), full[200:250])

    def test_kernels_differ_from_each_other(self):
        k = motion_kernels(8, 32, seed=0)
        assert all(not np.allclose(k[i], k[j]) for i in range(8) for j in range(i))

    def test_parameters_are_drawn_from_configured_sets(self):
        model = MotionModel(expl=(0.004, 0.006), fractions=(0.25, 1.0), iters=400)
        draws = draw_trajectories(trajectory_rngs(1, 0, 200), model, 64)
        assert set(draws.expl.tolist()) == {0.004, 0.006}
        assert set(draws.fraction.tolist()) == {0.25, 1.0}
        assert set(draws.points.tolist()) == {100, 400}
        assert draws.step == pytest.approx(60 / 399)
        assert 0 <= draws.gaussian_shake.min() and draws.gaussian_shake.max() <= 10
        assert 0 <= draws.centripetal.min() and draws.centripetal.max() <= 0.7
        assert 0 <= draws.prob_big_shake.min() and draws.prob_big_shake.max() <= 0.2

    def test_path_length_scales_with_size_unless_given(self):
        assert MotionModel().path_length(64) == 60
        assert MotionModel().path_length(32) == 30
        assert MotionModel(max_len=10).path_length(64) == 10

    def test_steps_have_the_configured_length(self):
        model = MotionModel(iters=500)
        draws = draw_trajectories(trajectory_rngs(4, 0, 3), model, 64)
        positions = integrate_trajectories(draws)
        for k in range(3):
            m = draws.points[k]
            np.testing.assert_allclose(np.abs(np.diff(positions[k, :m])), 60 / 499, rtol=1e-9)
            # Past the exposure fraction the last position is repeated.
            assert np.all(positions[k, m - 1 :] == positions[k, m - 1])

    @pytest.mark.parametrize(
        "params, message",
        [
            ({"iters": 1}, "iters"),
            ({"max_len": -3}, "max_len"),
            ({"expl": ()}, "expl"),
            ({"expl": (0.0,)}, "expl"),
            ({"fractions": (1.5,)}, "1.5"),
            ({"gaussian_shake": -1}, "gaussian_shake"),
            ({"prob_big_shake": 2}, "prob_big_shake"),
        ],
    )
    def test_invalid_model_names_the_value(self, params, message):
        with pytest.raises(ValueError, match=message):
            motion_kernels(1, 16, **params)

    @pytest.mark.parametrize("kwargs, message", [({"size": 2}, "size"), ({"seed": -1}, "seed")])
    def test_invalid_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            motion_kernels(1, **kwargs)

    def test_unknown_model_parameter(self):
        with pytest.raises(TypeError, match="wobble"):
            motion_kernels(1, 16, wobble=3)


class TestSplat:
    def test_point_on_a_pixel_is_a_delta(self):
        k = reference_splat([3 + 4j], 9)
        assert k[4, 4] == 1.0 and k.sum() == 1.0

    def test_orientation_rows_and_columns(self):
        # A horizontal path (constant row) must put its mass in one row, not one column.
        k = linear_kernels(1, 15, length=10.0, angle=0.0)[0]
        assert k[7].sum() == pytest.approx(1.0, abs=1e-6)
        k = linear_kernels(1, 15, length=10.0, angle=90.0)[0]
        assert k[:, 7].sum() == pytest.approx(1.0, abs=1e-6)


class TestLinearKernels:
    @pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 120.0, 163.0])
    def test_principal_axis_at_the_angle(self, angle):
        length = 20.0
        k = line_kernel(length, angle, 31)
        got, major, minor = principal_axis(k)
        assert min(abs(got - angle), 180 - abs(got - angle)) < 0.5
        # A uniform segment has std L / sqrt(12) along its axis; splatting adds under a pixel.
        assert major == pytest.approx(length / np.sqrt(12), abs=0.5)
        assert minor < 0.6

    def test_counter_clockwise_on_screen(self):
        # At 45 degrees the streak rises to the right: top-right and bottom-left are lit.
        k = line_kernel(10.0, 45.0, 15)
        assert k[:7, 8:].sum() > 0.4 and k[8:, :7].sum() > 0.4
        assert k[:7, :7].sum() == 0 and k[8:, 8:].sum() == 0

    def test_sum_centroid(self):
        k = linear_kernels(50, 24, seed=3)
        np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, atol=1e-6)
        assert np.abs(kernel_centroid(k) - 12).max() < 0.05

    def test_zero_length_is_a_delta(self):
        k = line_kernel(0.0, 30.0, 9)
        assert k[4, 4] == pytest.approx(1.0)

    def test_too_long_is_an_error(self):
        with pytest.raises(ValueError, match="does not fit"):
            line_kernel(max_line_length(31), 0.0, 31)
        with pytest.raises(ValueError, match="does not fit"):
            linear_kernels(3, 31, length=(5.0, 40.0))

    def test_seeds(self):
        np.testing.assert_array_equal(linear_kernels(9, 20, seed=4), linear_kernels(9, 20, seed=4))
        assert not np.allclose(linear_kernels(9, 20, seed=4), linear_kernels(9, 20, seed=5))
        np.testing.assert_array_equal(
            linear_kernels(3, 20, seed=4, start=6), linear_kernels(9, 20, seed=4)[6:]
        )

    def test_fixed_angle_range(self):
        for k in linear_kernels(5, 31, seed=1, length=(10.0, 20.0), angle=(30.0, 30.0)):
            assert abs(principal_axis(k)[0] - 30.0) < 0.5


@pytest.mark.parametrize("family", ["motion", "linear"])
def test_a_kernel_does_not_depend_on_the_batch_it_is_drawn_in(family):
    # A dataset's jobs (and a resumed run's) group samples differently; every kernel must come
    # out with the same bits. Paths are padded to their batch's longest: a kernel's centring
    # once summed its padded row, which rounded differently from batch to batch.
    model = MotionModel(max_len=71.0, expl=(0.004, 0.012), fractions=(0.57, 0.79, 1.0))

    def kernels(rngs):
        if family == "motion":
            return motion_kernels_from(rngs, 31, model)
        return linear_kernels_from(rngs, 31)

    def generators():
        return [np.random.default_rng([5, i]) for i in range(600)]

    whole = kernels(generators())
    for chunk in (32, 1):
        rngs = generators()[: 600 if chunk > 1 else 40]
        parts = [kernels(rngs[s : s + chunk]) for s in range(0, len(rngs), chunk)]
        np.testing.assert_array_equal(np.concatenate(parts), whole[: len(rngs)])


def test_generic_and_run_length_splats_agree():
    # The CPU splats runs of samples; the generic per-sample splat serves CuPy. Same grids.
    from blurgen.kernels.psf import _splat_runs, fitted_coordinates, splat_points

    draws = draw_trajectories(trajectory_rngs(8, 0, 40), MotionModel(), 33)
    positions = integrate_trajectories(draws)
    cols, rows = fitted_coordinates(positions, draws.points, 33)
    runs = _splat_runs(cols, rows, draws.points, 33)
    np.testing.assert_allclose(splat_points(cols, rows, draws.points, 33), runs, atol=1e-12)
    assert runs.sum(axis=(1, 2)) == pytest.approx(np.ones(40), abs=1e-12)
