"""make_dataset: schema, alignment, reproducibility across workers, resume, bad input, CLI."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import blurgen
import blurgen.degradation
from blurgen.cli.main import cli
from blurgen.degradation import Degradation
from blurgen.forward import valid_offset
from blurgen.h5 import (
    append_samples,
    create_samples,
    deflate_rows,
    sample_layouts,
    verify_pairs,
)
from blurgen.io import file_fingerprint, read_image
from blurgen.kernels import MotionModel, motion_kernels_from
from blurgen.kernels.camera import CameraModel
from blurgen.methods import kernel as kernel_methods
from blurgen.pipeline import (
    EXECUTORS,
    DatasetConfig,
    bundled_images,
    expand_sources,
    make_dataset,
    regenerate,
)
from blurgen.sample import sample_rng
from blurgen.schema import DEFLATE_LEVEL

from cmyk_tiff import write_cmyk_tiff

SMALL = DatasetConfig(patch=32, per_image=3, kernel_size=9)


def photos(folder, count=6, size=(60, 70)):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"p{i}.png"
        cv2.imwrite(str(path), (rng.random((*size, 3)) * 255).astype(np.uint8))
        paths.append(path)
    return paths


def arrays(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][...] for name in f if name != "sources"}


def test_schema_read_back_with_plain_h5py(tmp_path):
    sources = photos(tmp_path / "in", count=2)
    make_dataset(sources, tmp_path / "pairs.h5", SMALL, seed=4)
    with h5py.File(tmp_path / "pairs.h5", "r") as f:
        assert f.attrs["schema"] == "blurgen-pairs/4" and f.attrs["complete"]
        assert f.attrs["root_seed"] == 4 and json.loads(f.attrs["skipped"]) == []
        assert json.loads(f.attrs["config"])["patch"] == 32
        assert "next_source" not in f.attrs
        assert f["sharp"].dtype == np.uint8 and f["sharp"].shape == (6, 32, 32, 3)
        assert f["blurred"].shape == (6, 32, 32, 3) and f["kernel"].shape == (6, 9, 9)
        assert f["method"].dtype == np.uint8 and f["index"].dtype == np.uint32
        assert f["origin"].shape == (6, 2) and f["flips"].shape == (6, 2)
        assert f["noise"].shape == (6, 2) and f["noise"].dtype == np.float64
        assert f["boost"].shape == (6,) and f["jpeg_quality"].shape == (6,)
        assert f["noise_seed"].dtype == np.uint64
        assert [s.decode() for s in f["sources"][...]] == [str(p) for p in sources]
        assert list(f["fingerprints"].asstr()[...]) == [
            file_fingerprint(p.read_bytes()) for p in sources
        ]
        np.testing.assert_array_equal(f["source"][...], [0, 0, 0, 1, 1, 1])
        np.testing.assert_array_equal(f["index"][...], [0, 1, 2, 0, 1, 2])
    assert verify_pairs(tmp_path / "pairs.h5")[1] == []


def test_columns_compressed_by_the_workers_are_stored_as_hdf5_compresses_them(tmp_path):
    # Workers compress the kernels and kernel fields (shuffle, deflate); the writer stores the
    # chunks as they are. Two appends of random rows, against a file where HDF5 filters them.
    rng = np.random.default_rng(0)
    config = DatasetConfig(patch=8, kernel_size=9, blur="camera", camera=CameraModel(steps=3))
    layouts = sample_layouts(config)
    compressed = {name for name, column in layouts.items() if column.compressed}
    assert compressed == {"kernel", "kernel_field"}
    appends = [
        {
            name: (rng.random((count, *column.shape)) * 200).astype(column.dtype)
            for name, column in layouts.items()
        }
        for count in (5, 3)
    ]
    for name, packed in (("filtered.h5", False), ("direct.h5", True)):
        with h5py.File(tmp_path / name, "w") as f:
            create_samples(f, config)
            rows = 0
            for columns in appends:
                rows = append_samples(f, deflate_rows(columns, config) if packed else columns,
                                      rows)  # fmt: skip
    with h5py.File(tmp_path / "filtered.h5") as a, h5py.File(tmp_path / "direct.h5") as b:
        for name in layouts:
            whole = np.concatenate([columns[name] for columns in appends])
            np.testing.assert_array_equal(b[name][...], whole, err_msg=name)
        for name in compressed:
            assert b[name].compression_opts == DEFLATE_LEVEL and b[name].shuffle
            for row in range(8):
                at = (row,) + (0,) * (b[name].ndim - 1)
                mask, chunk = b[name].id.read_direct_chunk(at)
                theirs = a[name].id.read_direct_chunk(at)[1]
                # What deflate was given: HDF5's own shuffle of the row, byte for byte.
                assert mask == 0 and len(chunk) < b[name][row].nbytes
                assert zlib.decompress(chunk) == zlib.decompress(theirs)


def test_a_sample_is_its_record_drawn_from_the_photo_and_pairs_are_aligned(tmp_path):
    sources = photos(tmp_path / "in", count=2)
    config = DatasetConfig(patch=32, per_image=3, kernel_size=9, flips=False,
                           degradation=Degradation(quantise=False))  # fmt: skip
    make_dataset(sources, tmp_path / "pairs.h5", config, seed=7)
    data = arrays(tmp_path / "pairs.h5")
    n = 4  # source 1, sample 1
    assert (data["source"][n], data["index"][n]) == (1, 1)
    # The stream is keyed by the photo's bytes, not its place in the list.
    rng = sample_rng(7, file_fingerprint(sources[1].read_bytes()), 1)
    kernel = motion_kernels_from([rng], 9, MotionModel())[0]
    np.testing.assert_array_equal(kernel, data["kernel"][n])
    image = read_image(sources[1])
    y, x = (
        int(rng.integers(0, image.shape[0] - 40 + 1)),
        int(rng.integers(0, image.shape[1] - 40 + 1)),
    )
    np.testing.assert_array_equal(data["origin"][n], (y, x))
    crop = image[y : y + 40, x : x + 40]
    o = valid_offset(9)
    np.testing.assert_array_equal(data["sharp"][n], np.rint(crop[o : o + 32, o : o + 32] * 255))
    rng.random(2)  # the flips' draws, unused here
    blurred, params = config.degradation.apply(crop, kernel, rng)
    assert params.noise_seed == data["noise_seed"][n]
    np.testing.assert_array_equal(data["blurred"][n], np.rint(np.clip(blurred, 0, 1) * 255))


def test_every_pair_regenerates_bit_identically_from_its_record(tmp_path):
    sources = photos(tmp_path / "in", count=2, size=(70, 80))
    chain = Degradation(highlight_boost=(1.5, 3), shot=(0.001, 0.004), read=(0.002, 0.01),
                        jpeg_quality=(70, 95))  # fmt: skip
    config = DatasetConfig(patch=24, per_image=6, kernel_size=9,
                           mix=(("motion", 1), ("linear", 1)), degradation=chain)  # fmt: skip
    make_dataset(sources, tmp_path / "pairs.h5", config, seed=3)
    data = arrays(tmp_path / "pairs.h5")
    assert set(data["method"]) == {0, 1} and data["flips"].any() and not data["flips"].all()
    assert len(set(data["jpeg_quality"])) > 1 and (data["boost"] > 1).all()
    for i in range(len(data["sharp"])):
        sharp, blurred = regenerate(tmp_path / "pairs.h5", i)
        np.testing.assert_array_equal(sharp, data["sharp"][i])
        np.testing.assert_array_equal(blurred, data["blurred"][i])
    sources[0].write_bytes(sources[1].read_bytes())
    with pytest.raises(ValueError, match="p0.png' has changed"):
        regenerate(tmp_path / "pairs.h5", 0)


def test_noise_of_files_before_version_4_replays_or_says_it_cannot(tmp_path):
    # Version 2 and 3 files may hold the earlier noise sampler's noise: a pair that replays is
    # returned; one whose noise does not (here its stored bytes changed, as that sampler's
    # would) is an error, never a silently different pair. Noise-free pairs are not checked.
    sources = photos(tmp_path / "in", count=1, size=(70, 80))
    noisy = DatasetConfig(patch=24, per_image=2, kernel_size=9,
                          degradation=Degradation(read=(0.01, 0.02)))  # fmt: skip
    path = tmp_path / "pairs.h5"
    make_dataset(sources, path, noisy, seed=3)
    for schema in ("blurgen-pairs/2", "blurgen-pairs/3"):
        with h5py.File(path, "a") as f:
            f.attrs["schema"] = schema
            kept = f["blurred"][0]
            f["blurred"][1] = 255 - f["blurred"][1]
        np.testing.assert_array_equal(regenerate(path, 0)[1], kept)
        with pytest.raises(ValueError, match=rf"pair 1 of .*\({schema}\) does not replay"):
            regenerate(path, 1)
        with h5py.File(path, "a") as f:
            f["blurred"][1] = 255 - f["blurred"][1]
        regenerate(path, 1)
    quiet = tmp_path / "quiet.h5"
    make_dataset(sources, quiet, replace(noisy, degradation=Degradation()), seed=3)
    with h5py.File(quiet, "a") as f:
        f.attrs["schema"] = "blurgen-pairs/3"
        f["blurred"][1] = 255 - f["blurred"][1]
        changed = f["blurred"][1]
    assert not np.array_equal(regenerate(quiet, 1)[1], changed)


def test_different_photos_never_share_kernels_and_order_does_not_matter(tmp_path):
    first = photos(tmp_path / "a", count=3)
    second = [tmp_path / "b" / f"q{i}.png" for i in range(3)]
    (tmp_path / "b").mkdir()
    rng = np.random.default_rng(9)
    for path in second:
        cv2.imwrite(str(path), (rng.random((60, 70, 3)) * 255).astype(np.uint8))
    make_dataset(first, tmp_path / "train.h5", SMALL)
    make_dataset(second, tmp_path / "test.h5", SMALL)
    train, test = arrays(tmp_path / "train.h5"), arrays(tmp_path / "test.h5")
    shared = {k.tobytes() for k in train["kernel"]} & {k.tobytes() for k in test["kernel"]}
    assert not shared
    make_dataset(first[::-1], tmp_path / "reversed.h5", SMALL)
    backwards = arrays(tmp_path / "reversed.h5")
    for name in ("sharp", "blurred", "kernel", "noise_seed", "origin"):
        np.testing.assert_array_equal(backwards[name][6:], train[name][:3], err_msg=name)


def test_truncated_jpeg_is_skipped_with_its_reason_and_libjpeg_stays_quiet(tmp_path):
    photos(tmp_path / "in", count=2)
    rng = np.random.default_rng(3)
    data = cv2.imencode(".jpg", (rng.random((120, 120, 3)) * 255).astype(np.uint8))[1].tobytes()
    (tmp_path / "in" / "cut.jpg").write_bytes(data[: len(data) // 2])
    command = [sys.executable, "-m", "blurgen.cli", "make-dataset", str(tmp_path / "in"), "-o",
               str(tmp_path / "pairs.h5"), "--patch", "32", "--kernel-size", "9"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "skipped: " in result.stderr and "cut.jpg': damaged" in result.stderr
    assert "Premature end" not in result.stderr + result.stdout
    quiet = subprocess.run([*command, "-q", "--overwrite"], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr + quiet.stdout == ""
    with h5py.File(tmp_path / "pairs.h5", "r") as f:
        assert len(f["sharp"]) == 16 and "cut.jpg" in f.attrs["skipped"]
    strict = subprocess.run([*command, "--strict", "--overwrite"], capture_output=True, text=True)
    assert strict.returncode == 1 and "cut.jpg" in strict.stderr and "--strict" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_all_sources_skipped_is_an_error_and_leaves_nothing(tmp_path):
    sources = photos(tmp_path / "in", count=2, size=(20, 20))
    with pytest.raises(ValueError, match="all 2 sources were skipped.*too small"):
        make_dataset(sources, tmp_path / "pairs.h5", SMALL)
    assert list(tmp_path.glob("pairs.h5*")) == []
    result = CliRunner().invoke(cli, ["make-dataset", str(tmp_path / "in"), "-o",
                                      str(tmp_path / "pairs.h5"), "--patch", "32"])  # fmt: skip
    assert result.exit_code == 1 and "skipped" in result.output
    assert "Traceback" not in result.output and list(tmp_path.glob("pairs.h5*")) == []


@pytest.mark.parametrize("executor", EXECUTORS)
def test_same_dataset_with_one_and_two_workers(tmp_path, executor):
    sources = photos(tmp_path / "in", count=9)
    config = DatasetConfig(
        patch=24, per_image=2, kernel_size=7, degradation=Degradation(read=(0.0, 0.02))
    )
    make_dataset(sources, tmp_path / "one.h5", config, seed=1, workers=1)
    out = tmp_path / "two.h5"
    summary = make_dataset(sources, out, config, seed=1, workers=2, executor=executor)
    assert summary == {"path": str(out), "pairs": 18, "kept": 0, "skipped": [], "sources": 9}
    one, two = arrays(tmp_path / "one.h5"), arrays(out)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_a_job_rendered_in_one_batch_is_the_same_dataset(tmp_path, monkeypatch):
    """The batched path a GPU takes, run here with NumPy: the same bytes as pair by pair."""
    sources = photos(tmp_path / "in", count=3)
    config = DatasetConfig(patch=24, per_image=8, kernel_size=7, mix=(("motion", 1), ("linear", 1)),
                           degradation=Degradation(read=(0.0, 0.02), highlight_boost=(1.0, 4.0),
                                                   jpeg_quality=(80, 95)))  # fmt: skip
    make_dataset(sources, tmp_path / "pairs.h5", config, seed=1)
    batches = []
    real = Degradation.render_batch

    def counted(self, sharp, kernels, params, turn=None):
        batches.append(len(sharp))
        return real(self, sharp, kernels, params, turn)

    monkeypatch.setattr(kernel_methods, "in_batches", lambda device, dtype, config: True)
    monkeypatch.setattr(Degradation, "render_batch", counted)
    make_dataset(sources, tmp_path / "batched.h5", config, seed=1)
    assert batches == [24]
    pairs, batched = arrays(tmp_path / "pairs.h5"), arrays(tmp_path / "batched.h5")
    for name in pairs:
        np.testing.assert_array_equal(pairs[name], batched[name], err_msg=name)


def test_threads_sharing_a_device_take_turns_to_use_it(tmp_path, monkeypatch):
    """The GPU path with NumPy: jobs in four threads draw their kernels and convolve their
    batches only while holding one of DEVICE_JOBS turns, add noise and compress outside them,
    and make the file one thread does."""
    sources = photos(tmp_path / "in", count=4)
    noisy = Degradation(read=(0.0, 0.02), jpeg_quality=(80, 95))
    config = DatasetConfig(patch=24, per_image=12, kernel_size=7, degradation=noisy)
    make_dataset(sources, tmp_path / "one.h5", config, seed=2)
    holding, most, lock = threading.local(), [0, 0], threading.Lock()  # most: [now, ever]
    real_turn = blurgen.pipeline._device_turn

    @contextlib.contextmanager
    def turn():
        with real_turn("cuda"):
            with lock:
                most[0] += 1
                most[1] = max(most)
            holding.turn = True
            try:
                yield
            finally:
                holding.turn = False
                with lock:
                    most[0] -= 1

    def checked(module, name, inside):
        function = getattr(module, name)

        def call(*args, **kwargs):
            assert getattr(holding, "turn", False) == inside, name
            return function(*args, **kwargs)

        monkeypatch.setattr(module, name, call)

    monkeypatch.setattr(kernel_methods, "in_batches", lambda device, dtype, config: True)
    monkeypatch.setattr(blurgen.pipeline, "_device_turn", lambda device: turn())
    checked(kernel_methods, "motion_kernels_from", inside=True)
    checked(blurgen.degradation, "blur", inside=True)
    checked(blurgen.degradation, "poisson_gaussian", inside=False)
    checked(blurgen.degradation, "jpeg", inside=False)
    make_dataset(sources, tmp_path / "four.h5", config, seed=2, workers=4)
    assert 1 <= most[1] <= blurgen.pipeline.DEVICE_JOBS
    one, four = arrays(tmp_path / "one.h5"), arrays(tmp_path / "four.h5")
    assert (one["noise"][:, 1] > 0).any() and (one["jpeg_quality"] > 0).all()
    for name in one:
        np.testing.assert_array_equal(one[name], four[name], err_msg=name)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_in_a_terminal_the_progress_bar_is_not_taken_for_a_decoder_complaint(tmp_path):
    # In a terminal the progress bar writes to stderr while worker threads decode photos with
    # stderr caught; it once made healthy photos "damaged" (6-8 of these 16 a run).
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        small = (rng.random((100, 150, 3)) * 255).astype(np.uint8)
        big = cv2.resize(small, (1500, 1000), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"p{i:02d}.jpg"), big)
    terminal, stderr = os.openpty()
    shown = []
    reader = threading.Thread(target=read_all, args=(terminal, shown), daemon=True)
    reader.start()
    command = [sys.executable, "-m", "blurgen.cli", "make-dataset", str(folder), "-o",
               str(tmp_path / "pairs.h5"), "--patch", "32", "--per-image", "1", "--kernel-size",
               "9", "--workers", "2", "--preset", "none"]  # fmt: skip
    result = subprocess.run(command, stderr=stderr, stdout=subprocess.PIPE, timeout=300)
    os.close(stderr)
    reader.join(10)
    shown = b"".join(shown).decode(errors="replace")
    assert result.returncode == 0, shown[-2000:]
    assert "sources" in shown  # the bar was drawn
    with h5py.File(tmp_path / "pairs.h5") as f:
        assert json.loads(f.attrs["skipped"]) == [] and len(f["sharp"]) == 16


def read_all(descriptor, into):
    with contextlib.suppress(OSError):  # the terminal's other end closed
        while data := os.read(descriptor, 4096):
            into.append(data)


def test_resume_after_kill_9_ends_identical(tmp_path):
    sources = photos(tmp_path / "in", count=12)
    out = tmp_path / "pairs.h5"
    child = f"""
import os, signal
import blurgen.pipeline
from blurgen.pipeline import DatasetConfig, make_dataset
blurgen.pipeline.samples_per_job = lambda *args: 32
done = []
def progress(count):
    done.append(count)
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
make_dataset({[str(p) for p in sources]!r}, {str(out)!r},
             DatasetConfig(patch=24, per_image=8, kernel_size=7), seed=3, progress=progress)
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True)
    assert result.returncode == -9, result.stderr.decode()
    assert not out.exists()
    with h5py.File(tmp_path / "pairs.h5.partial", "r") as f:
        assert f.attrs["next_source"] == 8 and not f.attrs["complete"]  # two jobs of 32
    resumed = []
    make_dataset(sources, out, DatasetConfig(patch=24, per_image=8, kernel_size=7), seed=3,
                 progress=resumed.append)  # fmt: skip
    assert resumed[0] == 8
    make_dataset(
        sources, tmp_path / "fresh.h5", DatasetConfig(patch=24, per_image=8, kernel_size=7), seed=3
    )
    fresh, again = arrays(tmp_path / "fresh.h5"), arrays(out)
    for name in fresh:
        np.testing.assert_array_equal(fresh[name], again[name], err_msg=name)


def test_bad_inputs_are_converted_or_skipped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a_deep.png"), (rng.random((50, 50, 3)) * 65535).astype(np.uint16))
    cv2.imwrite(str(folder / "b_grey.png"), (rng.random((50, 50)) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "c_alpha.png"), (rng.random((50, 50, 4)) * 255).astype(np.uint8))
    write_cmyk_tiff(folder / "c_print.tif", (rng.random((50, 50, 4)) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "d_small.png"), np.zeros((20, 90, 3), np.uint8))
    (folder / "e_text.png").write_text("not an image")
    good = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    (folder / "f_cut.png").write_bytes(good[: len(good) // 3])
    summary = make_dataset(expand_sources([folder]), tmp_path / "pairs.h5", SMALL)
    assert summary["pairs"] == 12  # 16-bit, grey, alpha and CMYK converted
    reasons = {json.dumps(s) for s in summary["skipped"]}
    assert len(summary["skipped"]) == 3
    assert any("d_small.png" in r and "too small" in r for r in reasons)
    assert any("e_text.png" in r for r in reasons) and any("f_cut.png" in r for r in reasons)
    with h5py.File(tmp_path / "pairs.h5", "r") as f:
        assert len(json.loads(f.attrs["skipped"])) == 3


def test_sources_and_outputs(tmp_path):
    sources = photos(tmp_path / "in", count=2)
    listing = tmp_path / "list.txt"
    listing.write_text("# two photos\nin/p1.png\n\nin/p0.png\n")
    assert expand_sources([listing]) == [sources[1], sources[0]]
    with pytest.raises(FileNotFoundError, match="nope"):
        expand_sources([tmp_path / "nope"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_dataset(sources, tmp_path / "no" / "pairs.h5", SMALL)
    make_dataset(sources, tmp_path / "pairs.h5", SMALL)
    with pytest.raises(FileExistsError, match="--overwrite"):
        make_dataset(sources, tmp_path / "pairs.h5", SMALL)
    assert len(bundled_images()) >= 4


def test_invalid_config_names_the_value():
    with pytest.raises(ValueError, match="'reflect'"):
        DatasetConfig(degradation=Degradation(boundary="reflect"))
    with pytest.raises(ValueError, match="per_image"):
        DatasetConfig(per_image=0)


class TestCommands:
    def run(self, *args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    def test_make_inspect_preview_export(self, tmp_path):
        sources = photos(tmp_path / "in", count=3)
        out = tmp_path / "pairs.h5"
        result = self.run("make-dataset", tmp_path / "in", "-o", out, "--patch", 32,
                          "--per-image", 2, "--kernel-size", 9, "--json", "-q")  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["pairs"] == 6 and summary["skipped"] == [] and summary["bytes"] > 0
        inspected = self.run("inspect", out)
        assert inspected.exit_code == 0 and "ok" in inspected.output
        assert self.run("preview", out, "-o", tmp_path / "p.png").exit_code == 0
        assert cv2.imread(str(tmp_path / "p.png")).shape[1] == 3 * 32 + 2 * 4
        assert self.run("export", out, tmp_path / "gopro").exit_code == 0
        blur = sorted(p.name for p in (tmp_path / "gopro" / "blur").iterdir())
        sharp = sorted(p.name for p in (tmp_path / "gopro" / "sharp").iterdir())
        assert blur == sharp and len(blur) == 6
        assert len(sources) == 3

    def test_the_executor_does_not_change_the_file(self, tmp_path, monkeypatch):
        photos(tmp_path / "in", count=4)
        used = []
        real = blurgen.pipeline.ordered_map

        def spy(function, jobs, workers, *, threads, **options):
            used.append((workers, threads))
            return real(function, jobs, workers, threads=threads, **options)

        monkeypatch.setattr(blurgen.pipeline, "ordered_map", spy)
        common = ["--patch", 24, "--kernel-size", 7, "--per-image", 40, "--workers", 2, "-q"]
        for executor in EXECUTORS:
            result = self.run("make-dataset", tmp_path / "in", "-o", tmp_path / f"{executor}.h5",
                              "--executor", executor, *common)  # fmt: skip
            assert result.exit_code == 0, result.output
        assert used == [(2, True), (2, False)]
        threads, processes = arrays(tmp_path / "threads.h5"), arrays(tmp_path / "processes.h5")
        for name in threads:
            np.testing.assert_array_equal(threads[name], processes[name], err_msg=name)
        ray = self.run("make-dataset", tmp_path / "in", "-o", tmp_path / "r.h5", "--ray",
                       "local", "--executor", "threads")  # fmt: skip
        assert ray.exit_code == 2 and "--executor only applies to local runs" in ray.output

    def test_inspect_flags_an_unfinished_file(self, tmp_path):
        photos(tmp_path / "in", count=2)
        out = tmp_path / "pairs.h5"
        self.run("make-dataset", tmp_path / "in", "-o", out, "--patch", 32, "--kernel-size", 9,
                 "-q")  # fmt: skip
        with h5py.File(out, "a") as f:
            f.attrs["complete"] = False
        result = self.run("inspect", out)
        assert result.exit_code == 1 and "complete flag" in result.output

    def test_dry_run_and_errors(self, tmp_path):
        photos(tmp_path / "in", count=2)
        result = self.run("make-dataset", tmp_path / "in", "-o", tmp_path / "x.h5", "--dry-run")
        assert result.exit_code == 0 and "2 source images" in result.output
        assert not (tmp_path / "x.h5").exists()
        missing = self.run("make-dataset", tmp_path / "gone", "-o", tmp_path / "x.h5")
        assert missing.exit_code == 1 and "gone" in missing.output
        assert "Traceback" not in missing.output
        bad = self.run("make-dataset", "-o", tmp_path / "x.h5", "--boundary", "wrap")
        assert bad.exit_code == 2 and "valid" in bad.output

    def test_read_only_output_folder(self, tmp_path, monkeypatch):
        photos(tmp_path / "in", count=1)
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        if os.access(locked, os.W_OK):
            # Root writes through permission bits, so there the folder only reads as locked.
            access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and p != locked)
        result = self.run("make-dataset", tmp_path / "in", "-o", locked / "x.h5", "--patch", 32)
        assert result.exit_code == 1 and "not writable" in result.output
        assert "Traceback" not in result.output and list(locked.iterdir()) == []


@pytest.fixture
def jobs_of_32(monkeypatch):
    """Jobs of 32 samples, whatever the run's size and workers."""
    monkeypatch.setattr(blurgen.pipeline, "samples_per_job", lambda *args: 32)


def test_jobs_batch_their_kernels_within_a_memory_budget():
    from blurgen.pipeline import JOB_BYTES, MAX_SAMPLES_PER_JOB, samples_per_job

    config = DatasetConfig(patch=256, per_image=32, kernel_size=64)
    assert samples_per_job(config, 10_000, 1) == samples_per_job(config, 10_000, 2) == 128
    assert MAX_SAMPLES_PER_JOB == 128
    assert samples_per_job(config, 100, 1) == 100
    assert samples_per_job(config, 800, 2) == 100  # a small run: four jobs per worker
    # The decoded photos of at most four sources in a job: 8 samples each -> 32.
    assert samples_per_job(DatasetConfig(patch=256, per_image=8), 10_000, 1) == 32
    large = DatasetConfig(patch=2048, per_image=1, kernel_size=64)
    per_job = samples_per_job(large, 10_000, 1)
    assert 1 <= per_job and per_job * 2 * 2048**2 * 3 <= JOB_BYTES


def test_sources_split_across_jobs_resume_mid_source(tmp_path, jobs_of_32):
    # 40 samples per image are cut into jobs of 32: source 0 spans two jobs.
    sources = photos(tmp_path / "in", count=2)
    config = DatasetConfig(patch=16, per_image=40, kernel_size=5)
    out = tmp_path / "pairs.h5"

    def stop_after_first_source(count):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="run the same command again"):
        make_dataset(sources, out, config, seed=2, progress=stop_after_first_source)
    with h5py.File(tmp_path / "pairs.h5.partial", "r") as f:
        assert (f.attrs["next_source"], f.attrs["next_sample"], f.attrs["n_done"]) == (1, 24, 64)
    make_dataset(sources, out, config, seed=2)
    make_dataset(sources, tmp_path / "two.h5", config, seed=2, workers=2)
    resumed, fresh = arrays(out), arrays(tmp_path / "two.h5")
    for name in fresh:
        np.testing.assert_array_equal(resumed[name], fresh[name], err_msg=name)
    np.testing.assert_array_equal(resumed["index"], [*range(40), *range(40)])


class TestConfigAndStrict:
    def run(self, *args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    def test_config_file_with_flags_overriding(self, tmp_path):
        photos(tmp_path / "in", count=2)
        config = tmp_path / "job.yaml"
        config.write_text("patch: 24\nper-image: 3\nkernel_size: 7\nread: [0.0, 0.01]\n")
        out = tmp_path / "pairs.h5"
        args = ["make-dataset", tmp_path / "in", "-o", out, "--config", config, "-q"]
        assert self.run(*args, "--per-image", 2).exit_code == 0
        with h5py.File(out, "r") as f:
            saved = json.loads(f.attrs["config"])
            assert f["sharp"].shape == (4, 24, 24, 3)  # per-image from the flag
        assert saved["kernel_size"] == 7 and saved["degradation"]["read"] == [0.0, 0.01]
        (tmp_path / "job.json").write_text(json.dumps({"patch": 24, "wobble": 1}))
        bad = self.run("make-dataset", "-o", tmp_path / "x.h5", "--config", tmp_path / "job.json")
        assert bad.exit_code == 2 and "wobble" in bad.output

    def test_config_from_its_recorded_dict(self):
        config = DatasetConfig(
            patch=64,
            kernel_size=15,
            mix=(("motion", 0.7), ("linear", 0.3)),
            motion=MotionModel(fractions=(0.5, 1.0)),
            degradation=Degradation(read=(0.01, 0.02), jpeg_quality=(80, 90)),
        )
        recorded = json.loads(json.dumps(config.to_dict()))
        again = DatasetConfig.from_dict(recorded)
        assert again.to_dict() == config.to_dict() and again.mix == config.mix

    def test_presets_are_the_defaults_below_config_and_flags(self, tmp_path):
        photos(tmp_path / "in", count=1, size=(200, 210))
        shipped = Path(blurgen.__file__).parent / "presets"
        camera = yaml.safe_load((shipped / "camera-shake.yaml").read_text())
        deblurgan = yaml.safe_load((shipped / "deblurgan.yaml").read_text())

        def made(*extra):
            out = tmp_path / "pairs.h5"
            result = self.run("make-dataset", tmp_path / "in", "-o", out, "--patch", 96,
                              "--per-image", 1, "--overwrite", "-q", *extra)  # fmt: skip
            assert result.exit_code == 0, result.output
            with h5py.File(out, "r") as f:
                return json.loads(f.attrs["config"])

        default = made()
        assert default["kernel_size"] == camera["kernel_size"]
        assert default["motion"]["max_len"] == pytest.approx(camera["max_len"])
        assert default["degradation"]["read"] == [float(v) for v in camera["read"].split(",")]
        comparison = made("--preset", "deblurgan")
        assert comparison["kernel_size"] == deblurgan["kernel_size"] == 64
        assert comparison["degradation"]["space"] == "naive"
        assert comparison["motion"]["fractions"] == [0.01, 0.1, 0.5, 1.0]
        plain = made("--preset", "none")
        assert plain["kernel_size"] == DatasetConfig().kernel_size
        assert plain["degradation"]["read"] == [0.0, 0.0] and "mix" not in plain or not plain["mix"]
        (tmp_path / "mine.yaml").write_text("kernel_size: 11\n")
        assert made("--config", tmp_path / "mine.yaml")["kernel_size"] == 11
        assert made("--config", tmp_path / "mine.yaml", "--kernel-size", 13)["kernel_size"] == 13
        assert made("--preset", "deblurgan", "--kernel-size", 15)["kernel_size"] == 15

    def test_motion_model_options_are_used_and_recorded(self, tmp_path):
        photos(tmp_path / "in", count=1)
        out = tmp_path / "pairs.h5"
        args = ["make-dataset", tmp_path / "in", "-o", out, "--patch", 16, "--per-image", 2,
                "--preset", "none"]  # fmt: skip
        assert (
            self.run(*args, "--kernel-size", 9, "--fractions", 1, "--max-len", 6, "-q").exit_code
            == 0
        )
        with h5py.File(out, "r") as f:
            motion = json.loads(f.attrs["config"])["motion"]
            kernels, indices = f["kernel"][:], f["index"][:]
            fingerprint = f["fingerprints"].asstr()[0]
        assert motion["fractions"] == [1.0] and motion["max_len"] == 6
        model = MotionModel(fractions=(1.0,), max_len=6.0)
        for kernel, index in zip(kernels, indices, strict=True):
            rng = sample_rng(0, fingerprint, int(index))
            np.testing.assert_array_equal(kernel, motion_kernels_from([rng], 9, model)[0])
        linear = self.run(*args, "--blur", "linear", "--fractions", 1, "--overwrite")
        assert linear.exit_code == 2 and "--fractions only applies to motion blur" in linear.output

    def test_strict_stops_at_the_first_bad_image(self, tmp_path):
        photos(tmp_path / "in", count=2)
        (tmp_path / "in" / "p1.png").write_text("broken")
        result = self.run("make-dataset", tmp_path / "in", "-o", tmp_path / "s.h5", "--patch", 24,
                          "--kernel-size", 7, "--strict")  # fmt: skip
        assert result.exit_code == 1 and "p1.png" in result.output and "--strict" in result.output
        assert not (tmp_path / "s.h5").exists()


FULL_DISK_JOB = {"patch": 32, "per_image": 100, "kernel_size": 9}


def full_disk_job(tmp_path, output, extra=()):
    args = ["make-dataset", tmp_path / "in", "-o", output, "--seed", 5, "--workers", 1, "-q"]
    for name, value in FULL_DISK_JOB.items():
        args += [f"--{name.replace('_', '-')}", value]
    return CliRunner().invoke(cli, [str(a) for a in (*args, *extra)])


def assert_same_pairs(a, b):
    one, two = arrays(a), arrays(b)
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_full_disk_on_a_small_tmpfs_then_resume(tmp_path):
    photos(tmp_path / "in", count=6, size=(70, 80))  # 600 pairs, 3.7 MB
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        result = full_disk_job(tmp_path, small / "pairs.h5")
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.count("\n") == 1, result.output
        assert "disk is full" in result.output and f"'{small}'" in result.output
        assert "pairs.h5.partial" in result.output and "run the same command again" in result.output
        assert not (small / "pairs.h5").exists()
        subprocess.run(["mount", "-o", "remount,size=8m", str(small)], check=True)
        assert full_disk_job(tmp_path, small / "pairs.h5").exit_code == 0
        assert full_disk_job(tmp_path, tmp_path / "whole.h5").exit_code == 0
        assert_same_pairs(small / "pairs.h5", tmp_path / "whole.h5")
    finally:
        subprocess.run(["umount", str(small)])


def test_full_disk_by_injected_errors_then_resume(tmp_path, monkeypatch, jobs_of_32):
    import errno

    photos(tmp_path / "in", count=6, size=(70, 80))
    calls = []
    allocate = getattr(os, "posix_fallocate", None)

    def fill_up(fd, offset, length):
        calls.append(length)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        if allocate is not None:
            allocate(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", fill_up, raising=False)
    result = full_disk_job(tmp_path, tmp_path / "pairs.h5")
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "disk is full" in result.output and "pairs.h5.partial" in result.output
    with h5py.File(tmp_path / "pairs.h5.partial", "r") as f:
        assert not f.attrs["complete"] and f.attrs["n_done"] == 96  # three jobs of 32 written
    monkeypatch.undo()
    assert full_disk_job(tmp_path, tmp_path / "pairs.h5").exit_code == 0
    assert full_disk_job(tmp_path, tmp_path / "whole.h5").exit_code == 0
    assert_same_pairs(tmp_path / "pairs.h5", tmp_path / "whole.h5")


def test_a_write_error_hdf5_only_prints_is_caught(tmp_path, monkeypatch, jobs_of_32):
    # HDF5 reports some failed writes only while freeing its objects, as exceptions Python
    # ignores; the writer must not count the samples as written.
    from blurgen.h5 import PairsWriter

    photos(tmp_path / "in", count=6, size=(70, 80))
    append = PairsWriter._append

    def lossy(self, results):
        append(self, results)
        if self.pairs > 64:

            class Dataset:  # stands for an h5py object whose __del__ fails to write
                def __repr__(self):
                    return "<h5py dataset>"

            sys.unraisablehook(type("Info", (), {"exc_value": OSError(28, "write failed"),
                                                 "object": Dataset()})())  # fmt: skip

    monkeypatch.setattr(PairsWriter, "_append", lossy)
    result = full_disk_job(tmp_path, tmp_path / "pairs.h5")
    assert result.exit_code == 1 and "disk is full" in result.output
    with h5py.File(tmp_path / "pairs.h5.partial", "r") as f:
        assert f.attrs["n_done"] == 64
    monkeypatch.undo()
    assert full_disk_job(tmp_path, tmp_path / "pairs.h5").exit_code == 0
    assert full_disk_job(tmp_path, tmp_path / "whole.h5").exit_code == 0
    assert_same_pairs(tmp_path / "pairs.h5", tmp_path / "whole.h5")


def test_overwrite_starts_afresh(tmp_path):
    sources = photos(tmp_path / "in", count=2)
    out = tmp_path / "pairs.h5"
    make_dataset(sources, out, SMALL, seed=1)
    make_dataset(sources, out, SMALL, seed=2, overwrite=True)
    with h5py.File(out, "r") as f:
        assert f.attrs["root_seed"] == 2


@pytest.mark.parametrize("guarded", [True, False])
def test_a_script_using_workers_runs_or_says_why_not(tmp_path, guarded):
    photos(tmp_path / "in", count=4)
    call = ("make_dataset(expand_sources(['in']), 'pairs.h5', "
            "DatasetConfig(patch=24, per_image=40, kernel_size=7), seed=0, workers=2, "
            "executor='processes')")  # fmt: skip
    body = f"if __name__ == '__main__':\n    {call}\n" if guarded else call + "\n"
    script = tmp_path / "job.py"
    script.write_text("from blurgen.pipeline import DatasetConfig, expand_sources, make_dataset\n"
                      + body)  # fmt: skip
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True)  # fmt: skip
    if guarded:
        assert result.returncode == 0, result.stderr
        assert verify_pairs(tmp_path / "pairs.h5")[1] == []
    else:
        assert result.returncode == 1
        assert result.stderr.count("Traceback") == 1
        assert 'if __name__ == "__main__":' in result.stderr.splitlines()[-1]


def test_the_documented_example_with_workers_runs_as_written_as_a_script(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "docs" / "python.md").read_text()
    example = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "workers=2" in b)
    (tmp_path / "example.py").write_text(example.replace("per_image=16", "per_image=2"))
    photos(tmp_path / "photos", count=3, size=(300, 300))
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert verify_pairs(tmp_path / "pairs.h5")[1] == []


def test_learned_blur_renders_a_jobs_small_patches_in_one_call(tmp_path):
    calls = []

    def halve(patches, seeds):
        calls.append((patches.shape, seeds.tolist()))
        return patches * np.float32(0.5)

    config = DatasetConfig(patch=16, per_image=5, kernel_size=5, bgan="unused.pt",
                           mix=(("motion", 1), ("bgan", 1)))  # fmt: skip
    sources = bundled_images()[:2]
    make_dataset(sources, tmp_path / "pairs.h5", config, learned=halve)
    with h5py.File(tmp_path / "pairs.h5") as f:
        learned = f["method"][...] == 2
        sharp, blurred = f["sharp"][...].astype(int), f["blurred"][...].astype(int)
    assert len(calls) == 1 and calls[0][0] == (learned.sum(), 16, 16, 3)
    assert 1 < learned.sum() < 10
    # Each learned pair is its own sharp patch halved: batching kept rows and images together.
    np.testing.assert_allclose(blurred[learned], sharp[learned] / 2, atol=1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_flips_are_the_mirrored_crop(dtype):
    from blurgen.degradation import DegradationParams
    from blurgen.sample import SampleRecord, oriented

    crop = (np.random.default_rng(3).random((20, 24, 3)) * 200).astype(dtype)
    for flips in [(False, False), (True, False), (False, True), (True, True)]:
        record = SampleRecord("motion", (0, 0), flips, DegradationParams())
        flipped, sharp = oriented(crop, 5, record, Degradation())
        expected = crop[:, ::-1] if flips[0] else crop
        expected = expected[::-1] if flips[1] else expected
        np.testing.assert_array_equal(flipped, expected)
        np.testing.assert_array_equal(sharp, expected[2:18, 2:22])  # the valid centre, K=5
        assert flipped.flags.c_contiguous


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_place_that_takes_no_files_is_one_line_without_resume_advice(
    tmp_path, monkeypatch
):
    photos(tmp_path / "in", count=1)
    result = CliRunner().invoke(cli, ["make-dataset", str(tmp_path / "in"), "-o", "/proc/x.h5",
                                      "--patch", "16", "--kernel-size", "5"])  # fmt: skip
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "'/proc/x.h5'" in result.output and "resume" not in result.output
    # Past the folder's check (a folder may refuse some names only) the writer says the same,
    # without HDF5's error stack: nothing was written, so there is nothing to resume.
    monkeypatch.setattr("blurgen.h5.check_output_path", Path)
    with pytest.raises(OSError) as caught:
        make_dataset(photos(tmp_path / "in", count=1), "/proc/x.h5", SMALL)
    assert (
        re.fullmatch(
            r"cannot write \((No such file or directory|Permission denied)\): "
            r"'/proc/x\.h5\.partial' on the file system at '/proc'",
            str(caught.value),
        )
        is not None
    ), str(caught.value)


def test_a_strict_stop_leaves_no_partial_file_but_ctrl_c_does(tmp_path, monkeypatch, jobs_of_32):
    photos(tmp_path / "in", count=3)
    (tmp_path / "in" / "p1.png").write_text("broken")  # the second job's; the first is written
    out = tmp_path / "pairs.h5"
    args = ["make-dataset", tmp_path / "in", "-o", out, "--patch", 16, "--kernel-size", 5,
            "--per-image", 32, "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, [str(a) for a in (*args, "--strict")])
    assert result.exit_code == 1 and "p1.png" in result.output and "--strict" in result.output
    assert list(tmp_path.glob("pairs.h5*")) == []
    between_steps = blurgen.pipeline.interrupt_between_steps
    monkeypatch.setattr(blurgen.pipeline, "interrupt_between_steps", ctrl_c_after_first_job)
    assert CliRunner().invoke(cli, [str(a) for a in args]).exit_code == 130
    assert list(tmp_path.glob("pairs.h5*")) == [tmp_path / "pairs.h5.partial"]
    with h5py.File(tmp_path / "pairs.h5.partial", "r") as f:
        assert f.attrs["n_done"] == 32
    # A strict run that takes up the interrupted run's file stops on the same image, and
    # leaves that run's work as it found it.
    monkeypatch.setattr(blurgen.pipeline, "interrupt_between_steps", between_steps)
    result = CliRunner().invoke(cli, [str(a) for a in (*args, "--strict")])
    assert result.exit_code == 1 and "p1.png" in result.output
    with h5py.File(tmp_path / "pairs.h5.partial", "r") as f:
        assert f.attrs["n_done"] == 32


@contextlib.contextmanager
def ctrl_c_after_first_job():
    """Stands for blurgen.io.interrupt_between_steps with Ctrl-C pressed during the first job."""

    def check():
        raise KeyboardInterrupt

    yield check


def test_a_partial_file_of_another_job_is_named_before_it_goes(tmp_path, caplog, jobs_of_32):
    sources = photos(tmp_path / "in", count=2)
    config = DatasetConfig(patch=16, per_image=40, kernel_size=5)

    def stop(count):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_dataset(sources, tmp_path / "pairs.h5", config, seed=2, progress=stop)
    other = DatasetConfig(patch=16, per_image=40, kernel_size=7)
    with caplog.at_level("WARNING", logger="blurgen"):
        make_dataset(sources, tmp_path / "pairs.h5", other, seed=3)
    assert caplog.messages == [
        f"'{tmp_path / 'pairs.h5.partial'}' was made with other options and seed; starting "
        "afresh (its 64 pairs are discarded)"
    ]


def test_after_a_resume_the_rate_counts_this_runs_pairs(tmp_path, monkeypatch, jobs_of_32):
    photos(tmp_path / "in", count=3)
    for out, extra in (("a.h5", ["--json"]), ("b.h5", [])):
        args = ["make-dataset", tmp_path / "in", "-o", tmp_path / out, "--patch", 16,
                "--kernel-size", 5, "--per-image", 32, *extra]  # fmt: skip
        with monkeypatch.context() as patch:
            patch.setattr(blurgen.pipeline, "interrupt_between_steps", ctrl_c_after_first_job)
            assert CliRunner().invoke(cli, [str(a) for a in args]).exit_code == 130
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        if extra:
            summary = json.loads(result.output)
            assert summary["pairs"] == 96 and summary["kept"] == 32
            assert summary["pairs_per_s"] == pytest.approx(64 / summary["seconds"], rel=0.02)
        else:
            assert "wrote 96 pairs (64 made now, 32 kept from an earlier run)" in result.output


def test_too_small_photos_are_told_in_the_terms_of_the_blur(tmp_path):
    from blurgen.pipeline import synthesise

    tiny = str(photos(tmp_path, count=1, size=(20, 20))[0])

    def reason(blur):
        config = DatasetConfig(patch=16, per_image=1, kernel_size=21, blur=blur)
        return synthesise([(0, tiny, 0, 1)], config, 0)[0].skipped

    too_small = f"'{tiny}': too small (20x20); patches of 16 px "
    # A BGAN uses no kernel: the size only sets the border its crops are cut with.
    learned = reason("bgan")
    assert learned.startswith(too_small + "need 36 px") and "kernels" not in learned
    assert "20 px border from --kernel-size 21" in learned and "smaller --kernel-size" in learned
    assert reason("motion") == too_small + "with 21 px kernels need 36 px"
    camera = "with camera shake within 21 px (--kernel-size) need 36 px"
    assert reason("camera") == too_small + camera
