"""Calibration: recovering known settings, presets that make-dataset reads back, the command."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy import ndimage

from blurgen.calibrate import (
    DEFAULT_FIT,
    PARAMETERS,
    Renderer,
    calibrate,
    configure,
    coverage_shortfall,
    drawn_extents,
    preset_of,
    read_kernel_extents,
)
from blurgen.cli.main import cli
from blurgen.pipeline import DatasetConfig, bundled_images


def test_recovers_the_settings_of_a_synthetic_target():
    # The target is blurgen's own output with known settings, on the same samples the search
    # renders, so the truth has distance 0 and only the search and the mapping are tested.
    renderer = Renderer(bundled_images(), 3, 128, 0)
    target = renderer.statistics(configure(DatasetConfig(), {"kernel_size": 31, "read": 0.008}))
    result = calibrate(target, renderer, fit=("kernel_size", "read"), budget=24, seed=0)
    assert result.values["kernel_size"] == pytest.approx(31, abs=4)
    assert result.values["read"] == pytest.approx(0.008, rel=0.1)
    assert result.after < result.before / 5 and result.evaluations == 25
    again = calibrate(target, renderer, fit=("kernel_size", "read"), budget=24, seed=0)
    assert again.values == result.values  # a fixed seed and budget give the same fit


def test_every_parameter_maps_to_the_config_and_back_through_a_preset(tmp_path):
    values = {"kernel_size": 21, "path": 0.5, "min_fraction": 0.2, "expl_scale": 2.0,
              "linear": 0.25, "camera": 0.25, "shot": 0.004, "read": 0.01, "jpeg": 80,
              "boost": 2.5, "gamma": 2.0, "sharpen": 1.2, "wb_spread": 0.1,
              "rolling_shutter": 0.8}  # fmt: skip
    assert set(values) == set(PARAMETERS)
    config = configure(DatasetConfig(), values)
    assert config.kernel_size == 21 and config.motion.fractions == (0.2, 0.6, 1.0)
    assert config.camera.readout == (0.0, 0.8)
    assert "rolling_shutter" not in DEFAULT_FIT and "camera" not in DEFAULT_FIT
    assert config.motion.path_length(21) == pytest.approx(0.5 * 60 / 64 * 21)
    assert config.mix == (("motion", 0.5), ("linear", 0.25), ("camera", 0.25))
    # Shares over 1 leave no motion kernels; a single method is the blur, not a mix.
    assert configure(DatasetConfig(), {"linear": 0.6, "camera": 0.9}).mix == (
        ("linear", 0.6),
        ("camera", 0.9),
    )
    only = configure(DatasetConfig(), {"linear": 0.0, "camera": 1.0})
    assert (only.blur, only.mix) == ("camera", ())
    d = config.degradation
    assert d.shot == (0.002, 0.006) and d.read == (0.005, 0.015) and d.jpeg_quality == (70, 80)
    assert d.highlight_boost == (1.0, 2.5) and (d.space, d.gamma) == ("gamma", 2.0)
    assert d.isp.sharpen == (0.6, 1.2)
    # The spread is around the middle of the camera's ranges (the default ISP's, here).
    assert d.isp.red_gain == pytest.approx((2.15 * 0.9, 2.15 * 1.1))
    assert d.isp.blue_gain == pytest.approx((1.7 * 0.9, 1.7 * 1.1))
    assert configure(DatasetConfig(), {"wb_spread": 0.0}).degradation.isp.red_gain == (2.15, 2.15)
    assert configure(config, {"sharpen": 0.01}).degradation.isp.sharpen is None
    preset = tmp_path / "preset.yaml"
    preset.write_text(yaml.safe_dump(preset_of(config)))
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), (np.random.default_rng(0).random((120, 120, 3)) * 255).astype("uint8"))
    out = tmp_path / "pairs.h5"
    result = CliRunner().invoke(cli, ["make-dataset", str(photo), "-o", str(out), "--config",
                                      str(preset), "--patch", "64", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f:
        recorded = json.loads(f.attrs["config"])
    expected = json.loads(json.dumps(config.to_dict()))
    assert recorded["kernel_size"] == 21 and recorded["mix"] == expected["mix"]
    assert recorded["motion"]["expl"] == pytest.approx(expected["motion"]["expl"], rel=1e-3)
    assert recorded["motion"]["fractions"] == pytest.approx(expected["motion"]["fractions"])
    assert recorded["motion"]["max_len"] == pytest.approx(expected["motion"]["max_len"], abs=1e-3)
    assert recorded["degradation"] == expected["degradation"]


@pytest.mark.parametrize(
    ("fitted", "typed"),
    [({"linear": 0.6, "camera": 0.9}, []), ({"linear": 0.0, "camera": 1.0}, []),
     ({"linear": 0.25}, ["--blur", "camera"])],
)  # fmt: skip
def test_a_preset_without_motion_kernels_is_taken_as_it_is(tmp_path, fitted, typed):
    # make-dataset refuses kernel-model settings where no sample uses them: a preset must not
    # hold them then, and a blur typed over it leaves them unused, without an error.
    preset = tmp_path / "preset.yaml"
    preset.write_text(yaml.safe_dump(preset_of(configure(DatasetConfig(), fitted))))
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), (np.random.default_rng(0).random((120, 120, 3)) * 255).astype("uint8"))
    result = CliRunner().invoke(cli, ["make-dataset", str(photo), "-o", str(tmp_path / "p.h5"),
                                      "--config", str(preset), "--patch", "64", "--dry-run",
                                      *typed])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_preset_replaces_the_default_presets_settings(tmp_path):
    # Settings that are off (no JPEG, no boost, one blur method) must not inherit the default
    # preset's values when the file goes through --config.
    plain = configure(DatasetConfig(), {"kernel_size": 15, "linear": 0.0, "jpeg": 100,
                                         "boost": 1.0})  # fmt: skip
    assert plain.mix == () and plain.degradation.jpeg_quality is None
    preset = tmp_path / "plain.yaml"
    preset.write_text(yaml.safe_dump(preset_of(plain)))
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), (np.random.default_rng(0).random((120, 120, 3)) * 255).astype("uint8"))
    result = CliRunner().invoke(cli, ["make-dataset", str(photo), "-o", str(tmp_path / "p.h5"),
                                      "--config", str(preset), "--patch", "64", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "p.h5", "r") as f:
        recorded = json.loads(f.attrs["config"])
    assert recorded["mix"] == [] and recorded["degradation"]["jpeg_quality"] is None
    assert recorded["degradation"]["highlight_boost"] is None
    assert recorded["degradation"]["space"] == "srgb"


def test_calibrate_command_writes_a_preset_make_dataset_takes(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    rng = np.random.default_rng(1)
    for i in range(10):
        image = ndimage.gaussian_filter(rng.random((100, 110, 3)), (2, 2, 0))
        image = np.clip((image - 0.5) * 6 + 0.5, 0, 1)
        cv2.imwrite(str(real / f"{i}.png"), np.rint(image * 255).astype(np.uint8))
    (real / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    preset = tmp_path / "mine.yaml"
    args = ["calibrate", "--real", str(real), "-o", str(preset), "--budget", "10", "--samples",
            "1", "--patch", "128", "--fit", "kernel_size,read", "--hold-out"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "of the built-in settings" in result.output and "of the fit" in result.output
    assert "broken.jpg" in result.output
    text = preset.read_text()
    assert text.startswith("# blurgen") and "held-out real photos (5)" in text
    settings = yaml.safe_load(text)
    assert 9 <= settings["kernel_size"] <= 128 - 63
    made = CliRunner().invoke(cli, ["make-dataset", "-o", str(tmp_path / "p.h5"), "--config",
                                    str(preset), "--patch", "128", "-q"])  # fmt: skip
    assert made.exit_code == 0, made.output
    few = CliRunner().invoke(cli, ["calibrate", "--real", str(real / "0.png"), "-o",
                                   str(tmp_path / "no.yaml"), "--budget", "10"])  # fmt: skip
    assert few.exit_code == 1 and "at least 5" in few.output
    assert not (tmp_path / "no.yaml").exists()


def test_kernel_extents_are_read_once_per_kernel(tmp_path):
    streak = np.zeros((15, 15), np.float32)
    streak[7, 2:13] = 1 / 11
    np.save(tmp_path / "a.npy", streak)
    cv2.imwrite(str(tmp_path / "a.png"), np.rint(streak * 255 * 11).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.rint(streak.T * 255 * 11).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("where they came from")
    extents = read_kernel_extents([tmp_path])
    np.testing.assert_allclose(extents, np.sqrt((11**2 - 1) / 12), rtol=1e-5)
    assert len(extents) == 2  # a.npy and b.png; a.png is a.npy's picture
    np.save(tmp_path / "c.npy", np.zeros((5, 5)))
    with pytest.raises(ValueError, match="c.npy"):
        read_kernel_extents([tmp_path])
    with pytest.raises(FileNotFoundError, match="gone"):
        read_kernel_extents([tmp_path / "gone"])


def test_coverage_shortfall_and_the_constraint_in_the_search():
    drawn = np.arange(101.0)  # percentiles p of these are p
    assert coverage_shortfall(drawn, np.array([5.0, 95.0])) == 0
    assert coverage_shortfall(drawn, np.array([2.0, 99.0])) == pytest.approx(3 + 4)
    assert coverage_shortfall(drawn, np.array([2.0, 99.0]), (2, 99)) == 0
    small = configure(DatasetConfig(), {"kernel_size": 15})
    assert drawn_extents(small).shape == (400,) and drawn_extents(small).max() < 15 / 2
    renderer = Renderer(bundled_images(), 2, 128, 0)
    target = renderer.statistics(small)
    free = calibrate(target, renderer, fit=("kernel_size",), budget=12, seed=0)
    bound = calibrate(target, renderer, fit=("kernel_size",), budget=12, seed=0,
                      kernel_extents=[1.0, 8.0])  # fmt: skip
    assert free.values["kernel_size"] < bound.values["kernel_size"]
    real = np.array([1.0, 8.0])
    assert coverage_shortfall(drawn_extents(bound.config), real) < coverage_shortfall(
        drawn_extents(free.config), real
    )
