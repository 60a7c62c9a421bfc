"""The realism measure: statistics against constructed cases, distances, the command."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage
from scipy.stats import wasserstein_distance

from blurgen.calibrate import Renderer, configure
from blurgen.cli.main import cli
from blurgen.kernels import line_kernel
from blurgen.pipeline import DatasetConfig, expand_sources, make_dataset
from blurgen.realism import (
    MAX_SIDE,
    RESAMPLES,
    STATISTICS,
    _distances,
    compare,
    compare_two,
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


def normal_set(seed, count, shift=0.0, scale=1.0):
    """``count`` images' statistics, each an independent N(shift, scale^2) draw."""
    rng = np.random.default_rng(seed)
    return [{name: shift + scale * rng.normal() for name in STATISTICS} for _ in range(count)]


def width(interval):
    return interval[1] - interval[0]


class TestBootstrap:
    def test_a_resampled_distance_is_the_distance_of_the_resampled_sets(self):
        ours, theirs = normal_set(0, 37, 0.3), normal_set(1, 50)
        table = np.array([[s[n] for n in STATISTICS] for s in ours])
        reference = np.array([[s[n] for n in STATISTICS] for s in theirs])
        rng = np.random.default_rng(2)
        draws, reference_draws = rng.integers(0, 37, (4, 37)), rng.integers(0, 50, (4, 50))
        resampled = _distances(table, reference, draws, reference_draws)
        assert resampled.shape == (4, len(STATISTICS))
        for row in range(4):
            for k in range(len(STATISTICS)):
                x, y = table[draws[row], k], reference[reference_draws[row], k]
                # In the unit of the whole reference, not of the resampled one.
                expected = wasserstein_distance(x, y) / np.std(reference[:, k], ddof=1)
                assert resampled[row, k] == pytest.approx(expected, rel=1e-12)
        point = compare(ours, theirs)
        for k, name in enumerate(STATISTICS):
            expected = wasserstein_distance(table[:, k], reference[:, k])
            assert point.distances[name] == pytest.approx(
                expected / np.std(reference[:, k], ddof=1), rel=1e-12
            )

    @pytest.mark.parametrize("shift", [0.0, 1.0])
    def test_the_interval_holds_the_distance(self, shift):
        # With no real difference, the resampled distances sit above the measured one (the
        # bias of the module docstring): a plain percentile interval would leave it out.
        for seed in range(5):
            result = compare(normal_set(seed, 30, shift), normal_set(seed + 100, 30),
                             resamples=300, seed=seed)  # fmt: skip
            low, high = result.interval
            assert 0 <= low <= result.overall <= high and low < high
            for name in STATISTICS:
                low, high = result.intervals[name]
                assert low <= result.distances[name] <= high

    def test_the_interval_narrows_as_the_sets_grow(self):
        few = compare(normal_set(0, 20), normal_set(1, 20), resamples=RESAMPLES)
        many = compare(normal_set(2, 200), normal_set(3, 200), resamples=RESAMPLES)
        # The spread of a distance falls as 1/sqrt(images): about 0.32 times for 10 times more.
        assert width(many.interval) < 0.5 * width(few.interval)
        assert all(width(many.intervals[n]) < width(few.intervals[n]) for n in STATISTICS)

    def test_the_same_seed_gives_the_same_intervals(self):
        ours, theirs = normal_set(0, 40, 0.5), normal_set(1, 40)
        first = compare(ours, theirs, resamples=200, seed=7)
        assert compare(ours, theirs, resamples=200, seed=7) == first
        other = compare(ours, theirs, resamples=200, seed=8)
        assert other.interval != first.interval and other.overall == first.overall
        # compare_two draws A's resamplings as compare does: A's intervals agree.
        assert compare_two(ours, normal_set(2, 25), theirs, resamples=200, seed=7).a == first

    def test_no_resamplings_give_no_interval(self):
        ours, theirs = normal_set(0, 30, 0.5), normal_set(1, 30)
        plain = compare(ours, theirs)
        assert plain.interval is None and plain.intervals is None and plain.resamples == 0
        assert plain.to_dict()["interval"] is None and plain.to_dict()["intervals"] is None
        resampled = compare(ours, theirs, resamples=100)
        assert resampled.distances == plain.distances and resampled.resamples == 100
        difference = compare_two(ours, normal_set(2, 30), theirs, resamples=0)
        assert difference.interval is None and difference.verdict is None
        assert difference.a == plain

    def test_a_narrower_confidence_gives_a_narrower_interval(self):
        ours, theirs = normal_set(0, 40, 0.5), normal_set(1, 40)
        wide = compare(ours, theirs, resamples=500, confidence=0.95)
        narrow = compare(ours, theirs, resamples=500, confidence=0.5)
        assert width(narrow.interval) < width(wide.interval)
        assert narrow.to_dict()["confidence"] == 0.5

    @pytest.mark.parametrize(
        ("change", "message"),
        [({"resamples": -1}, "resamples"), ({"confidence": 1.0}, "confidence")],
    )
    def test_bad_settings_are_refused(self, change, message):
        with pytest.raises(ValueError, match=message):
            compare(normal_set(0, 10), normal_set(1, 10), **change)


class TestCompareTwo:
    def test_the_difference_and_its_verdict(self):
        real, near, far = normal_set(0, 60), normal_set(1, 60), normal_set(2, 60, shift=1.0)
        result = compare_two(near, far, real)
        assert result.difference == pytest.approx(result.a.overall - result.b.overall)
        assert result.difference < 0 and result.interval[1] < 0
        assert result.verdict == "A is closer"
        for name in STATISTICS:
            assert result.differences[name] == pytest.approx(
                result.a.distances[name] - result.b.distances[name]
            )
        swapped = compare_two(far, near, real)
        assert swapped.verdict == "B is closer" and swapped.interval[0] > 0
        assert swapped.difference == pytest.approx(-result.difference)
        same = compare_two(near, normal_set(3, 60), real)
        assert same.verdict == "no difference"
        assert same.interval[0] < 0 < same.interval[1]

    def test_verdicts_are_rare_without_a_difference_and_common_with_one(self):
        # 40 trials of sets of 40 each: at 95 % about 2 verdicts without a difference are
        # expected; sets 0.5 real spreads off are found in most trials (35 when written).
        def verdicts(shift):
            found = [compare_two(normal_set(3 * i, 40), normal_set(3 * i + 1, 40, shift),
                                 normal_set(3 * i + 2, 40), resamples=500, seed=i).verdict
                     for i in range(40)]  # fmt: skip
            return found.count("A is closer"), found.count("B is closer")

        assert sum(verdicts(0.0)) <= 4
        closer, wrong = verdicts(0.5)
        assert closer >= 30 and wrong == 0

    def test_pairing_by_position_cancels_the_images_content(self):
        # A and B made from the same photos, both half a real spread off: each image's content
        # varies a lot, B moves 0.1 farther. Paired, the content cancels and the 0.1 shows;
        # unpaired it drowns.
        rng = np.random.default_rng(0)
        content = normal_set(1, 40, shift=0.5)
        a = [{k: v + 0.05 * rng.normal() for k, v in c.items()} for c in content]
        b = [{k: v + 0.1 + 0.05 * rng.normal() for k, v in c.items()} for c in content]
        real = normal_set(2, 40)
        paired = compare_two(a, b, real, paired=True)
        independent = compare_two(a, b, real)
        assert paired.paired and not independent.paired
        assert paired.difference == independent.difference
        assert width(paired.interval) < 0.4 * width(independent.interval)
        assert paired.verdict == "A is closer" and independent.verdict == "no difference"
        with pytest.raises(ValueError, match="same length"):
            compare_two(a, b[:-1], real, paired=True)

    def test_to_dict(self):
        result = compare_two(normal_set(0, 20), normal_set(1, 20, 1.0), normal_set(2, 20))
        data = json.loads(json.dumps(result.to_dict()))
        assert set(data) >= {"difference", "differences", "interval", "intervals", "verdict",
                             "paired", "resamples", "confidence"}  # fmt: skip
        assert data["verdict"] == "A is closer" and data["resamples"] == RESAMPLES
        assert len(data["interval"]) == 2 and set(data["intervals"]) == set(STATISTICS)


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


def test_measure_takes_every_image_on_its_central_crop(tmp_path):
    rng = np.random.default_rng(6)
    # Smooth centres in textured frames: a crop measures the centre only.
    photo = (rng.random((150, 170, 3)) * 255).astype(np.uint8)
    photo[43:107, 53:117] = cv2.GaussianBlur(photo, (0, 0), 3)[43:107, 53:117]
    cv2.imwrite(str(tmp_path / "photo.png"), photo[..., ::-1])
    pairs = tmp_path / "pairs.h5"
    make_dataset([tmp_path / "photo.png"], pairs, DatasetConfig(patch=90, per_image=1,
                                                                kernel_size=7))  # fmt: skip
    items = [tmp_path / "photo.png", pairs]
    whole = {m.pop("name").split("/")[-1]: m for m in measure(items)[0]}
    cropped = {m.pop("name").split("/")[-1]: m for m in measure(items, crop=64)[0]}
    assert whole["photo.png"]["size"] == [150, 170] and whole["pairs.h5#0"]["size"] == [90, 90]
    assert cropped["photo.png"].pop("size") == cropped["pairs.h5#0"].pop("size") == [64, 64]
    # (150 - 64) // 2 = 43 and (170 - 64) // 2 = 53: the smooth part, exactly.
    assert cropped["photo.png"] == image_statistics(photo[43:107, 53:117])
    assert cropped["photo.png"]["detail"] < whole["photo.png"]["detail"] - 1
    with h5py.File(pairs) as f:
        patch = f["blurred"][0]
    assert cropped["pairs.h5#0"] == image_statistics(patch[13:77, 13:77])
    assert measure([pairs], crop=128)[0] == measure([pairs])[0]  # smaller: whole
    for bad in (63, 2049):
        with pytest.raises(ValueError, match="crop must be 64 to 2048 px"):
            measure([pairs], crop=bad)


def write_blurred(folder, sigmas, rng):
    """One 96x96 PNG of Gaussian-blurred uniform noise per sigma (px), in a new ``folder``."""
    folder.mkdir()
    for i, sigma in enumerate(sigmas):
        image = ndimage.gaussian_filter(rng.random((96, 96)), sigma)
        image = np.clip((image - image.mean()) * 4 + 0.5, 0, 1)
        cv2.imwrite(str(folder / f"{i}.png"), np.rint(image * 255).astype(np.uint8))
    return folder


def test_realism_command_table_json_plot_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    for folder, sigma in (("a", 1.0), ("b", 3.0)):
        write_blurred(tmp_path / folder, [sigma] * 6, rng)
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


def realism_run(*args):
    result = CliRunner().invoke(cli, ["realism", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Folders of 8 images: ``real`` and ``near`` blurred alike (sigma 1-2 px), ``far`` blurred
    much more (3-6 px)."""
    root, rng = tmp_path_factory.mktemp("sets"), np.random.default_rng(6)
    return {name: write_blurred(root / name, sigma * rng.uniform(0.7, 1.4, 8), rng)
            for name, sigma in (("real", 1.5), ("near", 1.5), ("far", 4.0))}  # fmt: skip


class TestRealismCommandIntervals:
    def test_one_set_json_text_seed_and_no_resamples(self, sets, tmp_path):
        report = tmp_path / "r.json"
        args = [sets["near"], "--real", sets["real"], "--resamples", 200]
        result = realism_run(*args, "--json", report)
        data = json.loads(report.read_text())
        low, high = data["interval"]
        assert low <= data["overall"] <= high
        assert set(data["intervals"]) == set(STATISTICS) and data["resamples"] == 200
        assert data["confidence"] == 0.95 and data["seed"] == 0
        assert "95 % interval" in result.output and f"{low:.2f}-{high:.2f}" in result.output
        realism_run(*args, "--json", tmp_path / "again.json")
        assert json.loads((tmp_path / "again.json").read_text()) == data
        realism_run(*args, "--seed", 1, "--json", tmp_path / "other.json")
        assert json.loads((tmp_path / "other.json").read_text())["interval"] != data["interval"]
        assert data["crop"] == 2048
        realism_run(*args, "--crop", 64, "--json", tmp_path / "crop.json")
        cropped = json.loads((tmp_path / "crop.json").read_text())
        assert cropped["crop"] == 64 and cropped["real"] == measure([sets["real"]], crop=64)[0]
        assert "note: the images measured" not in result.output  # 96 px both
        off = realism_run(sets["near"], "--real", sets["real"], "--resamples", 0, "--json", report)
        data = json.loads(report.read_text())
        assert data["interval"] is None and data["intervals"] is None and data["resamples"] == 0
        assert "no intervals" in off.output

    def test_sets_of_different_sizes_get_a_note(self, sets, tmp_path):
        larger = tmp_path / "larger"
        larger.mkdir()
        for path in sorted(sets["real"].glob("*.png")):
            image = cv2.imread(str(path))
            cv2.imwrite(str(larger / path.name), cv2.resize(image, (200, 160)))
        args = [sets["near"], "--real", larger, "--resamples", 0]
        noted = realism_run(*args)
        assert ("note: the images measured are about 96 px (blurred), 160 px (real)" in
                noted.output and "--crop 96 would compare them" in noted.output)  # fmt: skip
        assert "note: the images measured" not in realism_run(*args, "--crop", 96).output

    def test_two_sets_verdicts_json_and_plot(self, sets, tmp_path):
        real = ["--real", sets["real"], "--resamples", 300]
        closer = realism_run(sets["near"], "--against", sets["far"], *real, "-q")
        assert closer.output.strip() == "A is closer"
        farther = realism_run(sets["far"], "--against", sets["near"], *real, "-q")
        assert farther.output.strip() == "B is closer"
        report, plot = tmp_path / "r.json", tmp_path / "r.png"
        table = realism_run(sets["near"], "--against", sets["far"], *real, "--json", report,
                            "--plot", plot)  # fmt: skip
        assert "A is closer to the real photos: A - B = " in table.output
        assert "resampled independently" in table.output
        data = json.loads(report.read_text())
        difference = data["difference"]
        assert difference["verdict"] == "A is closer" and not difference["paired"]
        assert difference["interval"][1] < 0 and set(difference["intervals"]) == set(STATISTICS)
        assert difference["difference"] == pytest.approx(
            data["overall"] - data["against"]["overall"]
        )
        assert len(data["against"]["images"]) == 8 and len(data["blurred"]) == 8
        assert data["against"]["interval"][0] > data["interval"][1]
        assert cv2.imread(str(plot)).shape[0] > 200

    def test_pairing_and_its_errors(self, sets, tmp_path):
        # B: each of near's images blurred a little more, under the same name (same order).
        more = tmp_path / "more"
        more.mkdir()
        for image in sorted(sets["near"].iterdir()):
            blurred = cv2.GaussianBlur(cv2.imread(str(image)), (0, 0), 1.0)
            cv2.imwrite(str(more / image.name), blurred)
        real = ["--real", sets["real"]]
        report = tmp_path / "r.json"
        paired = realism_run(sets["near"], "--against", more, *real, "--paired", "--json", report)
        assert "resampled by position" in paired.output
        difference = json.loads(report.read_text())["difference"]
        assert difference["paired"] is True and difference["difference"] > 0  # more is closer
        lone = CliRunner().invoke(cli, ["realism", str(sets["near"]), *map(str, real),
                                        "--paired"])  # fmt: skip
        assert lone.exit_code == 2 and "--against" in lone.output
        shorter = tmp_path / "shorter"
        shorter.mkdir()
        for image in sorted(sets["far"].iterdir())[:6]:
            (shorter / image.name).write_bytes(image.read_bytes())
        uneven = CliRunner().invoke(cli, ["realism", str(sets["near"]), "--against", str(shorter),
                                          *map(str, real), "--paired"])  # fmt: skip
        assert uneven.exit_code == 1 and "same length" in uneven.output
        (shorter / "broken.png").write_bytes(b"broken")
        (shorter / "6.png").write_bytes(sets["far"].joinpath("6.png").read_bytes())
        skipped = CliRunner().invoke(cli, ["realism", str(sets["near"]), "--against",
                                           str(shorter), *map(str, real), "--paired"])  # fmt: skip
        assert skipped.exit_code == 1 and "could not be measured" in skipped.output

    def test_the_defaults_are_the_librarys(self):
        from blurgen.cli.realism import realism_command
        from blurgen.realism import CONFIDENCE

        defaults = {p.name: p.default for p in realism_command.params}
        assert defaults["resamples"] == RESAMPLES and defaults["confidence"] == CONFIDENCE
        assert defaults["crop"] == MAX_SIDE


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
