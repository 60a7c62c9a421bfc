"""6-DoF camera shake: trajectories, homographies, warped blur and kernel fields, against
independent references (scipy's rotations and convolution, kernel blur of the same path)."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.signal import convolve2d
from scipy.spatial.transform import Rotation

from blurgen import forward, methods
from blurgen.cli.main import cli
from blurgen.degradation import Degradation, DegradationParams
from blurgen.forward import blur, valid_offset, warp_blur, warp_runs
from blurgen.h5 import verify_pairs
from blurgen.kernels import camera
from blurgen.kernels.camera import (
    CameraModel,
    CameraShake,
    crop_probes,
    draw_shake,
    field_points,
    fit_shake,
    kernel_field,
    project,
    rotation_matrix,
)
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset, regenerate


def translation_shake(offsets: np.ndarray, focal: float = 500.0, depth: float = 2.0):
    """A shake that only slides the camera: the image moves by ``offsets`` (T, 2) as (dx, dy)
    px, whose mean must be zero."""
    trajectory = np.zeros((len(offsets), 6))
    trajectory[:, 3:5] = offsets * depth / focal
    return CameraShake(trajectory, (focal, 40.0, 30.0), depth)


def test_rotation_matrix_is_rodrigues():
    rng = np.random.default_rng(0)
    for angles in rng.normal(0, 0.3, (5, 3)):
        expected = Rotation.from_rotvec(angles).as_matrix()
        np.testing.assert_allclose(rotation_matrix(angles), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rotation_matrix(np.zeros(3)), np.eye(3))


def test_a_sliding_camera_blurs_as_the_kernel_of_its_path():
    # Offsets on a 1/32 px grid: OpenCV's warps interpolate at 1/32 px, so they are exact.
    rng = np.random.default_rng(1)
    offsets = rng.integers(-96, 97, (16, 2)) / 32.0
    offsets -= np.round(offsets.mean(axis=0) * 32) / 32
    offsets[-1] -= offsets.sum(axis=0)  # mean exactly zero, still on the grid
    shake = translation_shake(offsets)
    size = 15
    kernel = kernel_field(shake, np.array([[10.0, 20.0]]), size)[0]
    # The kernel is the path drawn with bilinear weights, the same everywhere.
    np.testing.assert_allclose(kernel_field(shake, np.array([[60.0, 5.0]]), size)[0], kernel,
                               atol=1e-7)  # fmt: skip
    assert kernel.sum() == pytest.approx(1, abs=1e-6)
    image = rng.random((48, 64, 3)).astype(np.float32)
    got = warp_blur(image, shake.homographies(), size)
    expected = np.stack([convolve2d(image[..., c], kernel, mode="valid") for c in range(3)], -1)
    assert got.shape == expected.shape == (34, 50, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)
    # The whole chain: the same pair as the kernel's render, noise and all.
    chain = Degradation(shot=(0.01, 0.01), read=(0.001, 0.001))
    params = DegradationParams(shot=0.01, read=0.001, noise_seed=7)
    by_warps = chain.render_warped(image, shake.homographies(), size, params)
    by_kernel = chain.render(image, kernel, params)
    np.testing.assert_allclose(by_warps, by_kernel, rtol=0, atol=2e-5)
    eight = (image * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(
        chain.render_warped(eight, shake.homographies(), size, params, dtype=np.uint8),
        chain.render(eight, kernel, params, dtype=np.uint8),
    )


def test_runs_render_a_sliding_camera_as_its_warps_do():
    # A slide is one run (a convolution by its path, then a whole-pixel warp): the same blur,
    # on every boundary, also where the slide is not centred on a pixel.
    rng = np.random.default_rng(4)
    offsets = np.cumsum(rng.integers(-8, 9, (24, 2)), axis=0) / 32.0
    shake = translation_shake(offsets - offsets.mean(axis=0) + [0.3, -0.45])
    image = rng.random((80, 96, 3)).astype(np.float32)
    maps = shake.homographies()
    runs = warp_runs(maps, crop_probes(66, 82) + 7, 0.5, 66)
    assert len(runs) == 1 and runs[0].kernel is not None
    for boundary in ("valid", "reflect", "wrap"):
        exact = warp_blur(image, maps, 15, boundary=boundary)
        fast = warp_blur(image, maps, 15, boundary=boundary, tolerance=0.5)
        # OpenCV's warps place at 1/32 px; the kernels do not.
        np.testing.assert_allclose(fast, exact, rtol=0, atol=2e-3)
        assert np.abs(fast - exact).mean() < 2e-4


@pytest.mark.parametrize("seed", range(3))
def test_runs_stay_near_warps_ten_times_as_dense(seed):
    # Runs interpolate twice where warps interpolate once: their error against a dense
    # reference is measured at 0.3 8-bit levels on photos (bench/camera.py); on a smooth random
    # image, in linear light, both stay within a small fraction of the signal.
    size, crop = 31, (150, 170)
    shake = fit_shake(draw_shake(np.random.default_rng(seed), CameraModel()), size, crop,
                      (600, 800), (40, 300))  # fmt: skip
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((*crop, 3)).astype(np.float32), (0, 0), 1.5)
    reference = warp_blur(image, shake.homographies(crop, gap=0.05), size)
    exact = warp_blur(image, shake.homographies(crop), size)
    fast = warp_blur(image, shake.homographies(crop), size, tolerance=0.5)
    runs = warp_runs(shake.homographies(crop), crop_probes(120, 140) + 15, 0.5, 120)
    assert len(runs) < len(shake.homographies(crop)) / 2
    total = sum(run.kernel.sum() for run in runs if run.kernel is not None)
    total += sum(run.kernel is None for run in runs) / len(shake.homographies(crop))
    assert total == pytest.approx(1, abs=1e-5)
    assert np.abs(exact - reference).mean() < 2e-3
    assert np.abs(fast - reference).mean() < 5e-3
    # Each run's kernel is anchored on its warp: the blur's light stays where the warps put it.
    for out in (exact, fast):
        np.testing.assert_allclose(out.mean(axis=(0, 1)), reference.mean(axis=(0, 1)), atol=2e-4)


def test_the_runs_inverses_are_numpys():
    matrices = np.random.default_rng(5).normal(size=(40, 3, 3)) + 3 * np.eye(3)
    np.testing.assert_allclose(forward._inverses(matrices), np.linalg.inv(matrices), atol=1e-12)


@pytest.mark.parametrize("steps", [1, 5, 31, 32, 33, 64, 65, 300])
def test_a_runs_reach_is_the_longest_prefix_within_the_tolerance(steps):
    rng = np.random.default_rng(steps)
    # Walks that stay within the tolerance throughout, leave it after the first window, inside
    # it, and at once.
    for scale in (0.01, 0.02, 0.05, 0.3):
        relative = np.cumsum(rng.normal(scale=scale, size=(steps, 18)), axis=0)
        expected = next((n for n in range(1, steps + 1)
                         if np.ptp(relative[:n], axis=0).max() > 0.5), steps + 1) - 1  # fmt: skip
        assert forward._within_tolerance(relative, 0.5) == max(expected, 1)


def test_a_tolerance_must_be_positive():
    image = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(ValueError, match="tolerance"):
        warp_blur(image, np.eye(3)[None], 9, tolerance=0)


def test_content_moves_as_a_convolution_moves_it():
    # Every time step 3 px right and 2 px down: kernel[c + (2, 3)], content moves (+2, +3).
    offsets = np.array([[3.0, 2.0]] * 4)
    shake = CameraShake(np.zeros((4, 6)), (500.0, 0.0, 0.0), 1.0)
    lifted = np.eye(3)
    lifted[:2, 2] = offsets[0]
    homographies = np.stack([lifted] * 4)
    assert shake.homographies().shape == (4, 3, 3)
    image = np.random.default_rng(2).random((30, 30, 1)).astype(np.float32)
    out = warp_blur(image, homographies, 9, boundary="reflect")
    np.testing.assert_allclose(out[5:-5, 5:-5], image[3:-7, 2:-8], atol=1e-6)
    kernel = np.zeros((9, 9), np.float32)
    kernel[4 + 2, 4 + 3] = 1
    np.testing.assert_allclose(out[5:-5, 5:-5], blur(image, kernel, boundary="reflect")[5:-5, 5:-5],
                               atol=1e-6)  # fmt: skip


def test_a_roll_about_the_centre_leaves_it_sharp_and_blurs_corners_along_circles():
    steps = 16
    trajectory = np.zeros((steps, 6))
    trajectory[:, 2] = np.linspace(-0.05, 0.05, steps)  # roll, radians: 2.8 px at the corners
    centre = (40.0, 40.0)
    shake = CameraShake(trajectory, (300.0, *centre), 1.0)
    size = 9
    corners = np.array([[0.0, 0.0], [80.0, 0.0], [0.0, 80.0], [80.0, 80.0]])
    kernels = kernel_field(shake, np.array([centre, *corners]), size)
    assert kernels[0, 4, 4] == pytest.approx(1, abs=1e-6)  # the centre: a delta
    offset = np.arange(size) - size // 2
    for (x, y), k in zip(corners, kernels[1:], strict=True):
        assert k.max() < 0.3  # spread out
        # The kernel's long axis (largest second moment) is perpendicular to the radius.
        dy, dx = np.meshgrid(offset, offset, indexing="ij")
        moments = np.array([[np.sum(k * dx * dx), np.sum(k * dx * dy)],
                            [np.sum(k * dx * dy), np.sum(k * dy * dy)]])  # fmt: skip
        axis = np.linalg.eigh(moments)[1][:, -1]
        radius = np.array([x - centre[0], y - centre[1]])
        assert abs(axis @ radius) / np.linalg.norm(radius) < 0.05
    image = np.random.default_rng(3).random((81, 81, 3)).astype(np.float32)
    out = warp_blur(image, shake.homographies(), size, boundary="reflect")
    np.testing.assert_allclose(out[40, 40], image[40, 40], atol=1e-5)
    assert np.abs(out[:5, :5] - image[:5, :5]).mean() > 0.1


@pytest.mark.parametrize("tolerance", [None, 0.5])
def test_the_kernel_field_is_the_blur_of_a_point_source_there(tolerance):
    model = CameraModel()
    size, crop = 31, (140, 160)
    for seed in range(4):
        shake = fit_shake(draw_shake(np.random.default_rng(seed), model), size, crop,
                          (600, 800), (20, 500))  # fmt: skip
        points = field_points(*crop, 3)
        kernels = kernel_field(shake, points, size)
        np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1, atol=1e-5)
        written = np.full((len(points), size, size), np.nan, np.float32)
        assert kernel_field(shake, points, size, out=written) is written
        np.testing.assert_array_equal(written, kernels)
        for (x, y), k in zip(points.round(), kernels, strict=False):
            delta = np.zeros((*crop, 1), np.float32)
            delta[int(y), int(x)] = 1
            spread = warp_blur(delta, shake.homographies(crop), size, boundary="reflect",
                               tolerance=tolerance)[..., 0]  # fmt: skip
            reach = size // 2
            seen = spread[int(y) - reach : int(y) + reach + 1, int(x) - reach : int(x) + reach + 1]
            # Rounded points: the kernel of the point itself, not the grid's.
            k = kernel_field(shake, np.array([[x, y]]), size, crop)[0]
            # (Interpolated twice, a little light reaches a px beyond the kernel's reach.)
            assert seen.sum() == pytest.approx(1, abs=1e-3 if tolerance is None else 3e-3)
            offset = np.arange(size) - reach
            for weights in (seen, k):  # centroids within a tenth of a px
                centroid = [np.sum(weights * offset[:, None]), np.sum(weights * offset)]
                np.testing.assert_allclose(centroid, [np.sum(seen * offset[:, None]),
                                                      np.sum(seen * offset)], atol=0.1)  # fmt: skip
            # Measured up to 0.01 for warps, 0.35 for runs (a point source interpolated
            # twice spreads to a wider bilinear footprint); mirrored: 1.7.
            assert np.abs(seen - k).sum() < (0.05 if tolerance is None else 0.45)


@pytest.mark.parametrize("seed", range(6))
def test_a_fitted_shake_keeps_every_valid_pixel_path_inside_the_crop(seed):
    size, crop = 31, (96, 128)
    draw = draw_shake(np.random.default_rng(seed), CameraModel(extent=(0.9, 1.0)))  # to the edge
    shake = fit_shake(draw, size, crop, (1000, 1500), (400, 100))
    largest = np.abs(shake.displacements(crop_probes(*crop))).max()
    assert largest == pytest.approx(draw.extent * (size // 2 - 1), rel=camera.FIT_PRECISION)
    o = valid_offset(size)
    ys, xs = np.mgrid[o : o + crop[0] - size + 1, o : o + crop[1] - size + 1]
    kept = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    sources = project(np.linalg.inv(shake.homographies(crop)), kept)  # the poses rendered
    assert sources.min() >= 0
    assert (sources[..., 0].max() <= crop[1] - 1) and (sources[..., 1].max() <= crop[0] - 1)
    # Rotation dominates, as the model's speeds say.
    assert np.abs(shake.trajectory[:, :2]).max() > 0


def test_draws_are_reproducible_and_use_a_fixed_number_of_values():
    model = CameraModel(steps=8)
    a = draw_shake(np.random.default_rng(5), model)
    b = draw_shake(np.random.default_rng(5), model)
    np.testing.assert_array_equal(a.trajectory, b.trajectory)
    rng = np.random.default_rng(5)
    draw_shake(rng, model)
    reference = np.random.default_rng(5)
    reference.standard_normal((8, 6))
    reference.random(3)
    assert rng.random() == reference.random()
    # Mirrored crops mirror the principal point.
    shake = fit_shake(a, 15, (50, 60), (200, 300), (10, 20), flips=(True, True))
    plain = fit_shake(a, 15, (50, 60), (200, 300), (10, 20))
    assert shake.intrinsics[1] == pytest.approx(59 - plain.intrinsics[1])
    assert shake.intrinsics[2] == pytest.approx(49 - plain.intrinsics[2])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("steps", 1, "steps must be"), ("inertia", 1.0, "inertia must be"),
     ("speeds", (1, 1, 1), "speeds must be"), ("extent", (0.5, 1.5), "extent must be"),
     ("focal", (2.0, 1.0), "focal must be")],
)  # fmt: skip
def test_bad_models(field, value, match):
    with pytest.raises(ValueError, match=match):
        CameraModel(**{field: value})


def test_dense_poses_leave_no_gaps_and_keep_the_recorded_ones():
    draw = draw_shake(np.random.default_rng(4), CameraModel(steps=8))
    shape = (120, 160)
    shake = fit_shake(draw, 41, shape, (600, 900), (30, 300))
    recorded, dense = shake.homographies(), shake.homographies(shape)
    between = (len(dense) - 1) // (len(recorded) - 1)
    assert between > 1 and len(dense) == 7 * between + 1
    np.testing.assert_allclose(dense[::between], recorded, rtol=0, atol=1e-12)
    moved = project(dense, crop_probes(*shape))
    assert np.abs(np.diff(moved, axis=0)).max() <= camera.MAX_GAP_PX + 1e-9


def test_camera_datasets_record_shakes_and_kernel_fields_and_replay(tmp_path):
    sources = bundled_images()[:2]
    config = DatasetConfig(patch=48, per_image=4, kernel_size=15,
                           mix=(("motion", 1), ("camera", 1)),
                           degradation=Degradation(read=(0.0, 0.01)))  # fmt: skip
    again = DatasetConfig.from_dict(config.to_dict())
    assert again.camera == config.camera and again.to_dict() == config.to_dict()
    make_dataset(sources, tmp_path / "one.h5", config, seed=3)
    make_dataset(sources, tmp_path / "two.h5", config, seed=3, workers=2)
    assert verify_pairs(tmp_path / "one.h5")[1] == []
    with h5py.File(tmp_path / "one.h5") as one, h5py.File(tmp_path / "two.h5") as two:
        for name in ("blurred", "kernel", "camera_trajectory", "kernel_field", "method"):
            np.testing.assert_array_equal(one[name][...], two[name][...], err_msg=name)
        camera_rows = one["method"][...] == methods.get("camera").code
        assert 0 < camera_rows.sum() < len(camera_rows)
        fields = one["kernel_field"][...]
        assert fields.shape == (8, 4, 4, 15, 15)
        np.testing.assert_allclose(fields[camera_rows].sum(axis=(3, 4)), 1, atol=1e-5)
        assert not fields[~camera_rows].any() and not one["camera_depth"][~camera_rows].any()
        assert (one["camera_intrinsics"][camera_rows][:, 0] > 0).all()
        row = int(np.flatnonzero(camera_rows)[0])
        stored = one["blurred"][row], one["sharp"][row]
    sharp, blurred = regenerate(tmp_path / "one.h5", row)
    np.testing.assert_array_equal(blurred, stored[0])
    np.testing.assert_array_equal(sharp, stored[1])
    # Blur varies across the patch, and not at all without a shake.
    assert np.abs(fields[row, 0, 0] - fields[row, 3, 3]).sum() > 0


def test_blur_command_draws_camera_shake_and_pictures_its_kernels(tmp_path):
    image = bundled_images()[0]
    result = CliRunner().invoke(cli, ["blur", str(image), "-o", str(tmp_path / "out"), "--blur",
                                      "camera", "--size", "21", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "blur.json").read_text())
    entry = report["images"][0]
    assert entry["method"] == "camera" and len(entry["camera"]["trajectory"]) == 32
    assert report["config"]["camera"]["steps"] == 32
    assert (tmp_path / "out" / f"{image.stem}_kernel.png").exists()
    result = CliRunner().invoke(cli, ["blur", str(image), "-o", str(tmp_path / "x"), "--blur",
                                      "camera", "--bgan"])  # fmt: skip
    assert result.exit_code == 2 and "--bgan only applies to learned blur" in result.output
    result = CliRunner().invoke(cli, ["blur", str(image), "-o", str(tmp_path / "x"), "--blur",
                                      "camera", "--kernels", str(image)])  # fmt: skip
    assert result.exit_code == 2 and "draws its own blur: without --kernels" in result.output
    result = CliRunner().invoke(cli, ["blur", str(image), "-o", str(tmp_path / "x"),
                                      "--camera-steps", "8"])  # fmt: skip
    message = "--camera-steps only applies to camera shake (--blur camera or a --mix that draws it)"
    assert result.exit_code == 2 and message in result.output


def test_make_dataset_takes_the_camera_model_from_its_options(tmp_path):
    out = tmp_path / "pairs.h5"
    common = ["make-dataset", "-o", str(out), "--patch", "32", "--limit", "1", "--per-image",
              "2", "--kernel-size", "9", "--preset", "none", "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, [*common, "--blur", "camera", "--camera-steps", "8",
                                      "--camera-focal", "1.5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert f["camera_trajectory"].shape == (2, 8, 6)
        model = json.loads(f.attrs["config"])["camera"]
        assert model["steps"] == 8 and model["focal"] == [1.5, 1.5]
    result = CliRunner().invoke(cli, [*common, "--overwrite", "--camera-steps", "8"])
    assert result.exit_code == 2 and "--camera-steps only applies to camera shake" in result.output
    result = CliRunner().invoke(cli, [*common, "--overwrite", "--blur", "camera",
                                      "--camera-extent", "0.5,2"])  # fmt: skip
    assert result.exit_code == 2 and "extent must be" in result.output


def panning(readout: float, pan_px: float = 20.0, side: int = 129) -> camera.CameraShake:
    """A pure yaw at constant speed, moving the centre pan_px px over exposure and readout,
    on a crop that is the whole sensor."""
    focal, steps = 2000.0, 32
    trajectory = np.zeros((steps, 6))
    trajectory[:, 1] = np.arctan(pan_px / focal) * np.linspace(0, 1, steps)
    return camera.CameraShake(trajectory, (focal, (side - 1) / 2, (side - 1) / 2), 1.0,
                              readout, (0.0, 1 / (side - 1)))  # fmt: skip


def line_centres(image: np.ndarray) -> np.ndarray:
    """Each row's centroid of light, px."""
    weights = image[..., 0]
    return (weights * np.arange(image.shape[1])).sum(axis=1) / weights.sum(axis=1)


@pytest.mark.parametrize("tolerance", [None, 0.5])
@pytest.mark.parametrize("readout", [0.0, 0.5, 1.0])
def test_a_pan_under_a_rolling_shutter_shears_a_vertical_line_by_the_closed_form(
    readout, tolerance
):
    side, pan = 129, 20.0
    image = np.zeros((side, side, 3), np.float32)
    image[:, 64] = 1.0
    shake = panning(readout, pan, side)
    out = warp_blur(image, shake.bands((side, side)), 41, boundary="reflect",
                    tolerance=tolerance)  # fmt: skip
    centres = line_centres(out)[8:-8]
    rows = np.arange(side)[8:-8]
    slope = np.polyfit(rows, centres, 1)[0]
    # Row v of the sensor averages the pan over [v r / (1 + r), (v r + 1) / (1 + r)] of its
    # span: its mean position moves by pan * r / (1 + r) from the top row to the bottom one.
    expected = pan * readout / (1 + readout)
    assert abs(slope * (side - 1)) == pytest.approx(expected, abs=0.25)
    # Each row is a streak pan / (1 + r) px long: its spread (a box's: length / sqrt(12)).
    middle = out[side // 2, :, 0]
    spread = np.sqrt((middle * (np.arange(side) - line_centres(out)[side // 2]) ** 2).sum()
                     / middle.sum())  # fmt: skip
    assert spread == pytest.approx(pan / (1 + readout) / np.sqrt(12), abs=0.35)
    # The kernel field says the same: its top and bottom kernels' centroids differ by the shear.
    points = np.array([[64.0, 8.0], [64.0, side - 9.0]])
    field = camera.kernel_field(shake, points, 41, (side, side))
    centroids = (field.sum(axis=1) * np.arange(41)).sum(axis=1)
    assert centroids[1] - centroids[0] == pytest.approx(slope * (side - 17), abs=0.3)


def test_a_rolling_shutter_off_changes_nothing_and_on_it_replays(tmp_path):
    base = DatasetConfig(patch=32, per_image=3, kernel_size=15, blur="camera")
    from dataclasses import replace as changed

    rolling = changed(base, camera=changed(base.camera, readout=(0.5, 1.0)))
    sources = bundled_images()[:2]
    make_dataset(sources, tmp_path / "global.h5", base, 3)
    make_dataset(sources, tmp_path / "rolling.h5", rolling, 3)
    make_dataset(sources, tmp_path / "rolling2.h5", rolling, 3, workers=2)
    with h5py.File(tmp_path / "global.h5") as g, h5py.File(tmp_path / "rolling.h5") as r:
        assert (
            "camera_readout" not in g and "readout" not in json.loads(g.attrs["config"])["camera"]
        )
        readouts = r["camera_readout"][:, 0]
        assert ((readouts >= 0.5) & (readouts <= 1.0)).all()
        assert not np.array_equal(g["blurred"][:], r["blurred"][:])
        for row in range(6):
            sharp, blurred = regenerate(tmp_path / "rolling.h5", row)
            assert np.array_equal(blurred, r["blurred"][row])
        with h5py.File(tmp_path / "rolling2.h5") as w:
            assert np.array_equal(w["blurred"][:], r["blurred"][:])
