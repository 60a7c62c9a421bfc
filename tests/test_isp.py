"""The camera's processing around the blur: the colour round trip, the Bayer phases against
OpenCV's demosaicing, noise on the mosaic (correlated after demosaicing, none where saturated),
sharpening, records that replay, and 4:2:0 JPEG."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blurgen import presets
from blurgen.cli.main import cli
from blurgen.color import linear_to_srgb
from blurgen.degradation import Degradation, DegradationParams
from blurgen.isp import PHASES, Isp, _sites, malvar_demosaic
from blurgen.pipeline import bundled_images, make_dataset, regenerate
from blurgen.transform import BlurTransform

COLOUR = np.array([0.6, 0.3, 0.1], np.float32)  # linear light, saturated in no channel


def developed(isp: Isp, light: np.ndarray, bayer: int = 0, sharpen=None, noise=None):
    return isp.develop(light, (2.1, 1.7), bayer, sharpen, noise or (lambda m: m),
                       linear_to_srgb)  # fmt: skip


@pytest.mark.parametrize("demosaic", ["ea", "malvar"])
@pytest.mark.parametrize("bayer", range(4))
def test_each_phase_gives_back_a_flat_colour(bayer, demosaic):
    """A wrong site or a wrong OpenCV pattern swaps or mixes the colours."""
    light = np.broadcast_to(COLOUR, (16, 20, 3)).copy()
    out = developed(Isp(demosaic=demosaic), light, bayer)
    expected = linear_to_srgb(COLOUR)
    np.testing.assert_allclose(out[4:-4, 4:-4], np.broadcast_to(expected, (8, 12, 3)), atol=2e-4)


@pytest.mark.parametrize("demosaic", ["ea", "bilinear", "vng", "malvar"])
def test_without_noise_the_camera_keeps_the_image(demosaic):
    light = cv2.GaussianBlur(np.random.default_rng(0).random((40, 48, 3)).astype(np.float32),
                             (0, 0), 3) * 0.8  # fmt: skip
    out = developed(Isp(demosaic=demosaic), light, bayer=2)
    # Demosaicing a smooth image loses little; VNG works on 8 bits.
    tolerance = 2 / 255 if demosaic == "vng" else 1 / 255
    assert np.abs(out[4:-4, 4:-4] - linear_to_srgb(light)[4:-4, 4:-4]).mean() < tolerance


def malvar_reference(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Malvar, He and Cutler's equations, pixel by pixel in float64, inside a 2 px border."""
    height, width = mosaic.shape
    out = np.full((height, width, 3), np.nan)
    m = mosaic.astype(np.float64)
    for y in range(2, height - 2):
        for x in range(2, width - 2):
            site = pattern[2 * (y % 2) + x % 2]
            here = m[y, x]
            cross = m[y - 1, x] + m[y + 1, x] + m[y, x - 1] + m[y, x + 1]
            diagonal = m[y - 1, x - 1] + m[y - 1, x + 1] + m[y + 1, x - 1] + m[y + 1, x + 1]
            far = m[y - 2, x] + m[y + 2, x] + m[y, x - 2] + m[y, x + 2]
            far_row, far_column = m[y, x - 2] + m[y, x + 2], m[y - 2, x] + m[y + 2, x]
            row, column = m[y, x - 1] + m[y, x + 1], m[y - 1, x] + m[y + 1, x]
            if site == "G":
                row_colour = pattern[2 * (y % 2) + (x + 1) % 2]  # the colour beside it
                along_row = (5 * here + 4 * row - diagonal - far_row + 0.5 * far_column) / 8
                along_column = (5 * here + 4 * column - diagonal - far_column + 0.5 * far_row) / 8
                values = {"G": here, row_colour: along_row,
                          "RB".replace(row_colour, ""): along_column}  # fmt: skip
            else:
                other = "RB".replace(site, "")
                values = {site: here, "G": (4 * here + 2 * cross - far) / 8,
                          other: (6 * here + 2 * diagonal - 1.5 * far) / 8}  # fmt: skip
            out[y, x] = [values["R"], values["G"], values["B"]]
    return out


@pytest.mark.parametrize("bayer", range(4))
def test_malvar_demosaicing_follows_its_equations(bayer):
    rng = np.random.default_rng(bayer)
    mosaic = rng.random((12, 14)).astype(np.float32)
    got = malvar_demosaic(mosaic, bayer)
    expected = malvar_reference(mosaic, PHASES[bayer])
    np.testing.assert_allclose(got[2:-2, 2:-2], expected[2:-2, 2:-2], rtol=0, atol=1e-6)
    # Each channel a linear ramp: the gradient corrections vanish, the colours come back exactly.
    ys, xs = np.mgrid[0:16, 0:18].astype(np.float32)
    ramps = np.stack([0.2 + 0.01 * xs, 0.3 + 0.02 * ys, 0.1 + 0.01 * (xs + ys)], -1)
    (ry, rx), (by, bx) = _sites(bayer)
    mosaic = ramps[..., 1].copy()
    mosaic[ry::2, rx::2] = ramps[ry::2, rx::2, 0]
    mosaic[by::2, bx::2] = ramps[by::2, bx::2, 2]
    np.testing.assert_allclose(malvar_demosaic(mosaic, bayer)[2:-2, 2:-2], ramps[2:-2, 2:-2],
                               atol=1e-5)  # fmt: skip


def test_noise_lands_on_the_mosaic():
    """Read noise on the RAW mosaic is spread by demosaicing to neighbouring pixels; noise on
    RGB pixels is not. Saturated sites get none."""
    flat = np.full((128, 128, 3), 0.2, np.float32)
    rng = np.random.default_rng(1)

    def read_noise(mosaic):
        return mosaic + rng.normal(0, 0.01, mosaic.shape).astype(np.float32)

    noise = developed(Isp(), flat, noise=read_noise)[8:-8, 8:-8, 1]
    noise = noise - noise.mean()
    neighbours = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
    plain = rng.normal(0, 0.01, (112, 112))
    white = np.corrcoef(plain[:, :-1].ravel(), plain[:, 1:].ravel())[0, 1]
    assert neighbours > 0.2 and abs(white) < 0.05
    bright = np.full((32, 32, 3), 4.0, np.float32)  # a highlight: saturated on the sensor
    out = developed(Isp(), bright, noise=read_noise)
    np.testing.assert_allclose(out, 1, atol=1e-6)  # white, with no noise at all


def test_sharpening_adds_fine_detail():
    light = cv2.GaussianBlur(np.random.default_rng(2).random((64, 64, 3)).astype(np.float32),
                             (0, 0), 2) * 0.7  # fmt: skip
    soft, sharp = developed(Isp(), light), developed(Isp(), light, sharpen=(1.0, 1.0))

    def energy(image):
        return float((np.diff(image[8:-8, 8:-8], axis=1) ** 2).mean())

    assert energy(sharp) > 1.5 * energy(soft)
    assert abs(sharp.mean() - soft.mean()) < 2e-3  # sharpening adds no brightness


def test_draws_cover_the_phases_and_ranges():
    isp = Isp(sharpen=(0.5, 1.5))
    draws = [isp.sample(np.random.default_rng(seed)) for seed in range(200)]
    assert {d["bayer"] for d in draws} == set(range(len(PHASES)))
    reds = [d["gains"][0] for d in draws]
    assert 1.9 <= min(reds) and max(reds) <= 2.4
    assert all(0.5 <= d["sharpen"][0] <= 1.5 and 0.5 <= d["sharpen"][1] <= 1.5 for d in draws)
    with pytest.raises(ValueError, match="9 numbers of an invertible matrix"):
        Isp(xyz_to_camera=(1, 0, 0, 0, 1, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="gains are missing"):
        Degradation(isp=Isp()).render(np.zeros((20, 20, 3), np.uint8),
                                      np.full((3, 3), 1 / 9, np.float32),
                                      DegradationParams())  # fmt: skip


def test_pairs_with_a_camera_replay_and_older_files_read(tmp_path):
    config = presets.load("phone", patch=32, per_image=3, kernel_size=9)
    path = tmp_path / "phone.h5"
    make_dataset([str(p) for p in bundled_images()[:2]], path, config, seed=4)
    with h5py.File(path) as f:
        assert f.attrs["schema"] == "blurgen-pairs/4"
        assert '"isp": {' in f.attrs["config"]
        stored = f["sharp"][...], f["blurred"][...]
        assert set(f["isp_bayer"][...]) <= set(range(4)) and (f["isp_gains"][:, 0] >= 1.9).all()
    for row in range(len(stored[0])):
        sharp, blurred = regenerate(path, row)
        np.testing.assert_array_equal(sharp, stored[0][row])
        np.testing.assert_array_equal(blurred, stored[1][row])
    plain = tmp_path / "plain.h5"
    make_dataset([str(bundled_images()[0])], plain, presets.load("none", patch=32,
                                                                 per_image=2))  # fmt: skip
    with h5py.File(plain, "a") as f:
        assert "isp_gains" not in f
        f.attrs["schema"] = "blurgen-pairs/2"  # version 2 is version 3 without an ISP
        kept = f["blurred"][1]
    np.testing.assert_array_equal(regenerate(plain, 1)[1], kept)


def test_a_camera_response_from_a_config_file_is_recorded_and_replays(tmp_path):
    # A camera profile as data: its response as a YAML list, with the ISP and noise.
    levels = np.linspace(0, 1, 9)
    response = [float(v) for v in np.round(levels**0.5 * (1 - 0.1 * np.sin(np.pi * levels)), 5)]
    profile = tmp_path / "camera.yaml"
    profile.write_text(yaml.safe_dump({"space": "curve", "tone_curve": response, "isp": True,
                                       "shot": "0.001,0.002", "kernel_size": 9, "patch": 32,
                                       "per_image": 2}))  # fmt: skip
    out = tmp_path / "pairs.h5"
    command = ["make-dataset", str(bundled_images()[0]), "-o", str(out), "--preset", "none",
               "--config", str(profile), "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        recorded = json.loads(f.attrs["config"])["degradation"]
        stored = f["blurred"][...]
    assert recorded["space"] == "curve" and recorded["tone_curve"] == response
    assert "isp" in recorded
    for row in range(len(stored)):
        np.testing.assert_array_equal(regenerate(out, row)[1], stored[row])


def test_the_transform_and_the_camera_agree():
    t = BlurTransform(presets.load("realblur", kernel_size=15))
    image = (np.random.default_rng(5).random((60, 64, 3)) * 255).astype(np.uint8)
    record = t.draw(3, image.shape[:2])
    assert record.sample.params.gains is not None
    once, again = t.apply(image, record), t.apply(image, record)
    np.testing.assert_array_equal(once, again)


def test_jpeg_is_written_with_4_2_0_chroma():
    """Cameras write 4:2:0; OpenCV's default, which blurgen.noise.jpeg uses, is it."""
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    default = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    explicit = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90,
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])[1]  # fmt: skip
    np.testing.assert_array_equal(default, explicit)
