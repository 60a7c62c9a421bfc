"""The command line, through click's CliRunner."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import blurgen
from blurgen import presets
from blurgen.backend import check_torch_device, torch_cuda_status
from blurgen.cli.main import cli
from blurgen.degradation import Degradation, DegradationParams
from blurgen.h5 import open_pairs
from blurgen.io import Photo, write_png
from blurgen.kernels import linear_kernels, motion_kernels
from blurgen.kernels.bank import read_bank
from blurgen.pipeline import DatasetConfig, make_dataset
from blurgen.sample import SampleConfig, Synthesiser, sample_rng


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and blurgen.__version__ in result.output


def test_info_lists_devices_and_reasons():
    result = run("info")
    assert result.exit_code == 0
    assert "numpy" in result.output and "h5py" in result.output
    assert re.search(r"^  cpu\s+available", result.output, re.M)
    cuda = [line.strip() for line in result.output.splitlines() if line.strip().startswith("cuda")]
    assert len(cuda) == 2
    for line, backend in zip(cuda, ("CuPy", "PyTorch"), strict=True):
        assert re.match(rf"cuda \({backend}\)\s+(available|unavailable): \S", line)


def test_info_names_the_build_of_opencv_and_cupy_that_is_installed(monkeypatch):
    # A headless OpenCV and a CuPy for CUDA 13, as on a GPU server's image.
    from importlib import metadata

    versions = {"opencv-python-headless": "4.12.0", "cupy-cuda13x": "14.2.0"}

    def version(name: str) -> str:
        if name in versions:
            return versions[name]
        if name.startswith(("opencv", "cupy")):
            raise metadata.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr("blurgen.cli.info.metadata.version", version)
    lines = [line.split() for line in run("info").output.splitlines()]
    assert ["opencv-python-headless", "4.12.0"] in lines and ["cupy-cuda13x", "14.2.0"] in lines
    versions.clear()
    lines = [line.split() for line in run("info").output.splitlines()]
    assert ["opencv-python", "not", "installed"] in lines
    assert ["cupy-cuda12x", "not", "installed"] in lines


def test_kernels_round_trip(tmp_path):
    out = tmp_path / "bank.h5"
    result = run("kernels", "-n", "12", "--size", "20", "--seed", "4", "-o", str(out))
    assert result.exit_code == 0, result.output
    kernels, info = read_bank(out)
    np.testing.assert_array_equal(kernels, motion_kernels(12, 20, seed=4))
    assert info["seed"] == 4 and info["config"]["family"] == "motion"
    assert "wrote 12 motion kernels" in result.output


def test_kernels_model_options_reach_the_model(tmp_path):
    out = tmp_path / "bank.h5"
    args = ["kernels", "-n", "3", "--size", "16", "-o", str(out), "-q"]
    result = run(*args, "--iters", "300", "--max-len", "9", "--expl", "0.01", "--fractions", "1")
    assert result.exit_code == 0 and result.output == ""
    expected = motion_kernels(3, 16, iters=300, max_len=9.0, expl=(0.01,), fractions=(1.0,))
    np.testing.assert_array_equal(read_bank(out)[0], expected)


def test_linear_kernels_and_preview(tmp_path):
    out, png = tmp_path / "lines.h5", tmp_path / "lines.png"
    result = run(
        "kernels", "-n", "5", "--family", "linear", "--size", "21",
        "--length", "4,12", "--angle", "45", "-o", str(out), "--preview", str(png),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = linear_kernels(5, 21, length=(4.0, 12.0), angle=45.0)
    np.testing.assert_array_equal(read_bank(out)[0], expected)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_preview_only(tmp_path):
    png = tmp_path / "k.png"
    assert run("kernels", "-n", "4", "--size", "16", "--preview", str(png)).exit_code == 0
    assert png.exists()


def test_errors_are_one_line_and_non_zero(tmp_path):
    out = tmp_path / "bank.h5"
    assert run("kernels", "-n", "2", "--size", "16", "-o", str(out), "-q").exit_code == 0
    again = run("kernels", "-n", "2", "--size", "16", "-o", str(out))
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert "Traceback" not in again.output
    missing = run("kernels", "-n", "2", "-o", str(tmp_path / "no" / "b.h5"))
    assert missing.exit_code == 1 and "does not exist" in missing.output
    misplaced = run("kernels", "--family", "linear", "--expl", "0.1", "-o", str(tmp_path / "l.h5"))
    assert misplaced.exit_code == 2 and "--expl" in misplaced.output
    nothing = run("kernels", "-n", "2")
    assert nothing.exit_code == 2 and "nothing to write" in nothing.output
    bad_list = run("kernels", "--expl", "a,b", "-o", str(tmp_path / "x.h5"))
    assert bad_list.exit_code == 2 and "comma-separated" in bad_list.output
    too_long = run("kernels", "--family", "linear", "--size", "9", "--length", "20", "-o",
                   str(tmp_path / "y.h5"))  # fmt: skip
    assert too_long.exit_code == 1 and "does not fit" in too_long.output


def test_files_that_are_not_hdf5_are_named(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "notes.h5").write_text("not HDF5")
    assert (
        run("kernels", "-n", "4", "--size", "16", "-o", str(tmp_path / "bank.h5"), "-q").exit_code
        == 0
    )
    whole = (tmp_path / "bank.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(whole[: len(whole) // 3])
    for name in ("notes.h5", "cut.h5"):
        path = str(tmp_path / name)
        for command in (["inspect", path], ["preview", path, "-o", str(tmp_path / "p.png")],
                        ["blur", "--kernels", path, str(image), "-o", str(tmp_path / "b")],
                        ["train-deblur", "--data", path, "-o", str(tmp_path / "run")]):  # fmt: skip
            result = run(*command)
            assert result.exit_code == 1, (command, result.output)
            assert f"'{path}' cannot be read as an HDF5 file" in result.output, result.output
            assert "Traceback" not in result.output


def test_overwrite(tmp_path):
    out = tmp_path / "bank.h5"
    run("kernels", "-n", "2", "--size", "16", "-o", str(out), "-q")
    result = run("kernels", "-n", "2", "--size", "16", "--seed", "1", "-o", str(out), "--overwrite")
    assert result.exit_code == 0
    assert read_bank(out)[1]["seed"] == 1


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "blurgen.backend.cuda_status", lambda: (False, "cupy is not installed (test)")
    )
    result = run("kernels", "-n", "2", "--device", "cuda", "-o", str(tmp_path / "b.h5"))
    assert result.exit_code == 1
    assert "device 'cuda' is not available: cupy is not installed (test)" in result.output


def test_networks_on_cuda_without_pytorch_cuda_is_a_clear_error(tmp_path, monkeypatch):
    # CuPy working says nothing about PyTorch's CUDA: the networks' commands check PyTorch's.
    monkeypatch.setattr("blurgen.backend.cuda_status", lambda: (True, "a GPU (test)"))
    monkeypatch.setattr(
        "blurgen.backend.torch_cuda_status", lambda: (False, "no CUDA build (test)")
    )
    (tmp_path / "ckpt.pt").write_bytes(b"")
    image = write_png(tmp_path / "in.png", np.zeros((8, 8, 3), np.float32))
    result = run("deblur", "--checkpoint", str(tmp_path / "ckpt.pt"), str(image),
                 "-o", str(tmp_path / "out"), "--device", "cuda")  # fmt: skip
    assert result.exit_code == 1
    assert "device 'cuda' is not available to PyTorch: no CUDA build (test)" in result.output
    assert not (tmp_path / "out").exists()


def test_torch_cuda_status_says_why():
    ok, reason = torch_cuda_status()
    assert ok == torch.cuda.is_available()
    assert reason and (ok or "CUDA" in reason)
    assert check_torch_device("CPU") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        check_torch_device("tpu")


class TestBlurCommand:
    def make_images(self, folder, count=2, size=(40, 48)):
        paths = []
        rng = np.random.default_rng(0)
        for i in range(count):
            path = folder / f"img{i}.png"
            cv2.imwrite(str(path), (rng.random((*size, 3)) * 255).astype(np.uint8))
            paths.append(str(path))
        return paths

    def test_round_trip_reproducible(self, tmp_path):
        images = self.make_images(tmp_path)
        args = ["blur", *images, "--size", "9", "--seed", "3", "--read", "0.01,0.02"]
        assert run(*args, "-o", str(tmp_path / "a")).exit_code == 0
        assert run(*args, "-o", str(tmp_path / "b"), "-q").exit_code == 0
        for name in ("img0_blurred.png", "img1_blurred.png", "img0_kernel.png"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        blurred = cv2.imread(str(tmp_path / "a" / "img0_blurred.png"))
        assert blurred.shape == (40 - 8, 48 - 8, 3)
        report = json.loads((tmp_path / "a" / "blur.json").read_text())
        assert report["seed"] == 3 and len(report["images"]) == 2
        assert 0.01 <= report["images"][0]["params"]["read"] <= 0.02
        # The record replays: the drawn kernel and the stored parameters, through the float path.
        photo = Photo.open(images[0])
        entry = report["images"][0]
        assert entry["fingerprint"] == photo.fingerprint
        synthesiser = Synthesiser(SampleConfig(kernel_size=9, flips=False))
        (record,), kernels = synthesiser.draw([sample_rng(3, photo.fingerprint, 0)], [photo.size],
                                              None)  # fmt: skip
        params = DegradationParams(**entry["params"])
        assert record.params.noise_seed == params.noise_seed
        replay = Degradation().render(photo.crop(0, 0, 40, 48), kernels[0], params)
        np.testing.assert_array_equal(blurred[..., ::-1], np.rint(replay * 255))

    def test_a_preset_or_a_config_file_sets_what_make_dataset_would(self, tmp_path):
        # A camera preset on one photo: the preset's kernels, mix and camera, each image's
        # method drawn from the mix; flags over the preset; the same photo as make-dataset's.
        images = self.make_images(tmp_path, count=3, size=(130, 140))
        assert run("blur", *images, "--preset", "phone", "-o", str(tmp_path / "phone"),
                   "-q").exit_code == 0  # fmt: skip
        report = json.loads((tmp_path / "phone" / "blur.json").read_text())
        expected = presets.load("phone")
        assert report["config"]["kernel_size"] == expected.kernel_size == 101
        assert [tuple(m) for m in report["config"]["mix"]] == list(expected.mix)
        assert report["config"]["degradation"] == json.loads(expected.degradation.to_json())
        assert {e["method"] for e in report["images"]} <= {"motion", "linear"}
        result = run("blur", images[0], "--preset", "phone", "--blur", "camera", "--kernel-size",
                     "15", "-o", str(tmp_path / "camera"), "-q")  # fmt: skip
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "camera" / "blur.json").read_text())
        assert report["config"]["mix"] == [] and report["images"][0]["method"] == "camera"
        assert report["config"]["kernel_size"] == 15
        config = tmp_path / "mine.yaml"
        config.write_text("mix: linear=1\nkernel_size: 9\nread: 0.01,0.02\n")
        assert run("blur", images[0], "--config", str(config), "-o", str(tmp_path / "mine"),
                   "-q").exit_code == 0  # fmt: skip
        report = json.loads((tmp_path / "mine" / "blur.json").read_text())
        assert report["images"][0]["method"] == "linear" and report["config"]["kernel_size"] == 9
        both = run("blur", images[0], "--blur", "motion", "--mix", "linear=1", "-o",
                   str(tmp_path / "both"))  # fmt: skip
        assert both.exit_code == 2 and "--blur and --mix" in both.output

    def test_kernels_from_a_bank(self, tmp_path):
        images = self.make_images(tmp_path, count=1)
        bank = tmp_path / "lines.h5"
        run("kernels", "-n", "2", "--size", "7", "--family", "linear", "-o", str(bank), "-q")
        result = run("blur", *images, "--kernels", str(bank), "--boundary", "reflect", "-o",
                     str(tmp_path / "out"))  # fmt: skip
        assert result.exit_code == 0, result.output
        assert cv2.imread(str(tmp_path / "out" / "img0_blurred.png")).shape == (40, 48, 3)

    def test_unreadable_inputs_reported_by_name(self, tmp_path):
        images = self.make_images(tmp_path, count=1)
        (tmp_path / "bad.png").write_text("nope")
        result = run("blur", str(tmp_path / "bad.png"), *images, str(tmp_path / "gone.png"),
                     "-o", str(tmp_path / "out"))  # fmt: skip
        assert result.exit_code == 1
        assert "bad.png" in result.output and "gone.png" in result.output
        assert (tmp_path / "out" / "img0_blurred.png").exists()

    def test_existing_outputs_and_bad_options(self, tmp_path):
        images = self.make_images(tmp_path, count=1)
        out = str(tmp_path / "out")
        assert run("blur", *images, "-o", out).exit_code == 0
        again = run("blur", *images, "-o", out)
        assert again.exit_code == 1 and "--overwrite" in again.output
        assert run("blur", *images, "-o", out, "--overwrite").exit_code == 0
        bad = run("blur", *images, "-o", out, "--shot", "0.5,0.1")
        assert bad.exit_code == 2 and "(0.5, 0.1)" in bad.output

    def test_a_run_that_blurs_no_image_writes_nothing(self, tmp_path):
        (tmp_path / "bad.png").write_text("nope")
        result = run("blur", str(tmp_path / "bad.png"), "-o", str(tmp_path / "out"))
        assert result.exit_code == 1 and "bad.png" in result.output
        assert "nothing written" in result.output
        assert not (tmp_path / "out").exists()  # no blur.json of no images, no empty folder

    def test_a_strict_stop_removes_what_the_run_wrote(self, tmp_path):
        images = [*self.make_images(tmp_path, count=1), str(tmp_path / "bad.png")]
        (tmp_path / "bad.png").write_text("nope")
        out = tmp_path / "out"
        result = run("blur", *images, "-o", str(out), "--strict")
        assert result.exit_code == 1 and "bad.png" in result.output and "--strict" in result.output
        assert not out.exists()
        out.mkdir()
        (out / "notes.txt").write_text("the user's")
        assert run("blur", *images, "-o", str(out), "--strict").exit_code == 1
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
        # Nothing left in the way: the next run needs no --overwrite.
        assert run("blur", images[0], "-o", str(out)).exit_code == 0

    def test_a_full_disk_removes_what_the_run_wrote(self, tmp_path, monkeypatch):
        images = self.make_images(tmp_path, count=2)
        written = []

        def write_png(path, image, bits=8):
            if written:
                raise OSError(errno.ENOSPC, f"cannot write '{path}' (No space left on device)")
            written.append(Path(path))
            Path(path).write_bytes(b"png")
            return Path(path)

        monkeypatch.setattr("blurgen.cli.blur.write_png", write_png)
        result = run("blur", *images, "-o", str(tmp_path / "out"))
        assert result.exit_code == 1 and "No space left" in result.output
        assert written and not (tmp_path / "out").exists()


def test_export_on_a_full_disk_names_the_file_and_leaves_only_whole_pairs(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = []
    for i in range(2):
        images.append(tmp_path / f"p{i}.png")
        cv2.imwrite(str(images[-1]), (rng.random((30, 30, 3)) * 255).astype(np.uint8))
    config = DatasetConfig(patch=16, per_image=2, kernel_size=5)
    first, second = tmp_path / "first.h5", tmp_path / "second.h5"
    make_dataset(images, first, config, seed=1)
    make_dataset(images, second, config, seed=2)
    out = tmp_path / "gopro"
    write = Path.write_bytes
    full_at = []

    def full_disk(self, data):
        if self.parent.name == "sharp" and self.name.startswith(full_at[0]):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    full_at.append("000000.png")
    result = run("export", str(first), str(out))
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert f"'{out / 'sharp' / '000000.png'}'" in result.output
    assert "No space left on device" in result.output
    assert [*(out / "blur").iterdir(), *(out / "sharp").iterdir()] == []
    full_at[0] = "nothing"
    assert run("export", str(first), str(out)).exit_code == 0  # nothing was left in the way
    # Over an earlier export: the pair that failed goes, old and new halves alike.
    full_at[0] = "000001.png"
    result = run("export", str(second), str(out), "--overwrite")
    assert result.exit_code == 1 and f"'{out / 'sharp' / '000001.png'}'" in result.output
    names = sorted(p.name for p in (out / "blur").iterdir())
    assert names == sorted(p.name for p in (out / "sharp").iterdir())
    assert names == ["000000.png", "000002.png", "000003.png"]
    with open_pairs(first) as old, open_pairs(second) as new:
        for name in names:
            i = int(name[:6])
            blurred = cv2.imread(str(out / "blur" / name))[..., ::-1]
            sharp = cv2.imread(str(out / "sharp" / name))[..., ::-1]
            assert any(
                np.array_equal(blurred, f["blurred"][i]) and np.array_equal(sharp, f["sharp"][i])
                for f in (old, new)
            ), name
