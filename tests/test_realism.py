"""The realism measure: statistics against constructed cases, distances, the command."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from blurgen.calibrate import Renderer, configure
from blurgen.cli.main import cli
from blurgen.kernels import line_kernel
from blurgen.pipeline import DatasetConfig, expand_sources, make_dataset
from blurgen.realism import (
    STATISTICS,
    compare,
    count_images,
    image_statistics,
    measure,
    noise_level,
)


def white(side=512, seed=0):
    return np.random.default_rng(seed).standard_normal((side, side))


def as_image(values, contrast=0.08):
    """Zero-mean values as an image around mid-grey (no clipping at this contrast)."""
    return 0.5 + contrast * values / values.std()


@pytest.mark.parametrize("sigma", [2.0, 4.0])
def test_a_gaussian_blur_of_white_noise_has_its_sigma_as_extent(sigma):
    blurred = ndimage.gaussian_filter(white(), sigma, mode="wrap")
    assert image_statistics(as_image(blurred))["extent"] == pytest.approx(sigma, rel=0.06)
    assert image_statistics(as_image(white()))["extent"] < 0.5


def expected_coherence(kernel):
    """Coherence of white noise filtered by ``kernel`` in expectation: the gradient filters'
    energies, E[gx^2] = sum(hx^2) and so on, for the same derivative-of-Gaussian filters."""
    delta = np.zeros((65, 65))
    delta[32, 32] = 1
    spread = ndimage.convolve(delta, kernel, mode="constant")
    hx = ndimage.gaussian_filter(spread, 1.0, order=(0, 1), mode="constant")
    hy = ndimage.gaussian_filter(spread, 1.0, order=(1, 0), mode="constant")
    tensor = np.array([[np.sum(hx * hx), np.sum(hx * hy)], [np.sum(hx * hy), np.sum(hy * hy)]])
    low, high = np.linalg.eigvalsh(tensor)
    return (high - low) / (high + low)


def test_a_box_blur_is_directional_along_its_direction():
    box = np.full((1, 9), 1 / 9)
    horizontal = image_statistics(as_image(ndimage.convolve(white(), box, mode="wrap")))
    vertical = image_statistics(as_image(ndimage.convolve(white(), box.T, mode="wrap")))
    assert horizontal["angle"] == pytest.approx(0, abs=1) or horizontal["angle"] > 179
    assert vertical["angle"] == pytest.approx(90, abs=1)
    assert horizontal["directionality"] == pytest.approx(expected_coherence(box), abs=0.02)
    assert horizontal["directionality"] > 0.7
    assert image_statistics(as_image(white()))["directionality"] < 0.03
    # Counter-clockwise on screen, as line_kernel draws its angle.
    for angle in (30.0, 120.0):
        kernel = line_kernel(15.0, angle, 21).astype(np.float64)
        streaked = ndimage.convolve(white(), kernel, mode="wrap")
        assert image_statistics(as_image(streaked))["angle"] == pytest.approx(angle, abs=2)


@pytest.mark.parametrize("sigma", [0.005, 0.02])
def test_white_noise_of_known_sigma_gives_that_noise_level(sigma):
    rng = np.random.default_rng(1)
    flat = 0.5 + sigma * rng.standard_normal((256, 300))
    assert noise_level(flat) == pytest.approx(sigma, rel=0.04)
    assert image_statistics(flat)["noise"] == pytest.approx(sigma * 255, rel=0.04)
    # Edges barely move it: a step edge under the same noise.
    flat[:, 150:] += 0.3
    assert noise_level(flat) == pytest.approx(sigma, rel=0.06)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_power_law_spectra_give_their_falloff(alpha):
    side = 512
    f = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.fftfreq(side)[None])
    f[0, 0] = 1
    phases = np.exp(2j * np.pi * np.random.default_rng(2).random((side, side)))
    image = as_image(np.real(np.fft.ifft2(f ** (-alpha / 2) * phases)))
    assert image_statistics(image)["falloff"] == pytest.approx(-alpha, abs=0.1)


def test_blur_removes_fine_detail_and_steepens_the_falloff():
    sharp = image_statistics(as_image(white()))
    blurred = image_statistics(as_image(ndimage.gaussian_filter(white(), 2, mode="wrap")))
    assert blurred["detail"] < sharp["detail"] - 1 and blurred["falloff"] < sharp["falloff"] - 2


def test_distance_is_zero_for_the_same_set_and_grows_with_a_shift():
    rng = np.random.default_rng(3)
    reference = [{name: rng.normal() for name in STATISTICS} for _ in range(40)]
    assert compare(reference, reference).overall == 0
    spread = {n: np.std([s[n] for s in reference], ddof=1) for n in STATISTICS}
    for shift in (0.5, 1.0, 2.0):
        # Moving one statistic by `shift` real spreads moves its distance by exactly that.
        moved = [{**s, "noise": s["noise"] + shift * spread["noise"]} for s in reference]
        result = compare(moved, reference)
        assert result.distances["noise"] == pytest.approx(shift)
        assert result.overall == pytest.approx(shift / len(STATISTICS))
    with pytest.raises(ValueError, match="at least 5"):
        compare(reference[:4], reference)


def test_measure_reads_folders_and_pairs_files_and_skips_bad_images(tmp_path):
    rng = np.random.default_rng(4)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), (rng.random((80, 90, 3)) * 255).astype(np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((20, 20, 3), np.uint8))
    measured, skipped = measure([tmp_path])
    assert len(measured) == 3 and {s["name"].split("/")[-1] for s in skipped} == {
        "bad.png",
        "tiny.png",
    }
    assert "too small" in next(s["reason"] for s in skipped if "tiny" in s["name"])
    with pytest.raises(ValueError, match="--strict"):
        measure([tmp_path], strict=True)
    pairs = tmp_path / "pairs.h5"
    make_dataset([tmp_path / f"p{i}.png" for i in range(3)], pairs,
                 DatasetConfig(patch=72, per_image=2, kernel_size=7))  # fmt: skip
    from_pairs, _ = measure([pairs])
    assert len(from_pairs) == 6 and from_pairs[0]["name"].endswith("pairs.h5#0")
    assert count_images([tmp_path, pairs]) == 5 + 6  # 3 photos, the bad and tiny ones, 6 pairs


def test_realism_command_table_json_plot_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    for folder, sigma in (("a", 1.0), ("b", 3.0)):
        (tmp_path / folder).mkdir()
        for i in range(6):
            image = ndimage.gaussian_filter(rng.random((96, 96)), sigma)
            image = np.clip((image - image.mean()) * 4 + 0.5, 0, 1)
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), np.rint(image * 255).astype(np.uint8))
    report, plot = tmp_path / "r.json", tmp_path / "r.png"
    args = ["realism", str(tmp_path / "a"), "--real", str(tmp_path / "b")]
    result = CliRunner().invoke(cli, [*args, "--json", str(report), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "extent" in result.output and "overall" in result.output
    data = json.loads(report.read_text())
    assert set(data["distances"]) == set(STATISTICS) and len(data["real"]) == 6
    assert data["medians"]["extent"][0] < data["medians"]["extent"][1]  # less blur in a
    assert cv2.imread(str(plot)).shape[0] > 200
    same = CliRunner().invoke(cli, ["realism", str(tmp_path / "b"), "--real", str(tmp_path / "b"),
                                    "-q"])  # fmt: skip
    assert same.exit_code == 0 and float(same.output) == 0
    (tmp_path / "b" / "3.png").write_bytes(b"broken")
    for name in ("4.png", "5.png"):
        (tmp_path / "b" / name).unlink()
    few = CliRunner().invoke(cli, args)
    assert few.exit_code == 1 and "3.png" in few.output and "at least 5" in few.output


def preset(name):
    """The config make-dataset builds from a shipped preset."""
    result = CliRunner().invoke(cli, ["make-dataset", "--preset", name, "-o", "unused.h5",
                                      "--dry-run", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return DatasetConfig.from_dict(json.loads(result.output)["config"])


def test_separates_real_sharp_and_wrong_blur_on_the_reference_photos(shared_data):
    real, _ = measure([shared_data / "blurry" / "lai2016_real"])
    real.sort(key=lambda s: s["name"])
    fitted, held = real[0::2], real[1::2]  # as calibrate --hold-out splits them
    floor = compare(fitted, held).overall
    sharp = compare(measure([shared_data / "sharp" / "skimage"])[0], held).overall
    assert floor < 0.6 and sharp > 4 * floor
    renderer = Renderer(expand_sources([shared_data / "sharp" / "skimage"]), 4, 256, 0)
    default = preset("camera-shake")
    weak = configure(replace(default, motion=replace(default.motion, max_len=None)),
                     {"kernel_size": 9})  # fmt: skip
    strong = configure(default, {"kernel_size": 151, "path": 1.0, "min_fraction": 1.0,
                                 "expl_scale": 0.1})  # fmt: skip
    distance = {
        name: compare(renderer.statistics(config), held).overall
        for name, config in (("matching", default), ("weak", weak), ("strong", strong))
    }
    assert distance["matching"] < distance["weak"] and distance["matching"] < distance["strong"]
    assert distance["matching"] < sharp
