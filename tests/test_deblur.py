"""Tiled deblurring and evaluation with checkpoints the tests make."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.bgan.files import read_torch_file
from blurgen.bgan.infer import Deblurrer, _spans
from blurgen.bgan.nets import DeblurGenerator
from blurgen.cli.deblur import as_written
from blurgen.cli.main import cli
from blurgen.io import read_image
from blurgen.metrics import psnr, ssim, y_channel
from blurgen.pipeline import DatasetConfig, make_dataset

# A network that adds 0.45 of an 8-bit step: rounded to 8 bits, its output is its input.
UNDER_HALF_A_STEP = 0.45 / 255


def checkpoint(path, identity=False, seed=0, shift=0.0):
    """A small deblurring checkpoint; ``identity``: one whose output is its input + ``shift``."""
    torch.manual_seed(seed)
    generator = DeblurGenerator(channels=4, blocks=1)
    if identity:
        torch.nn.init.zeros_(generator.tail[-1].weight)
        torch.nn.init.constant_(generator.tail[-1].bias, shift)
    torch.save({"kind": "dbgan", "generator": generator.state_dict(),
                "generator_config": generator.config}, path)  # fmt: skip
    return path


def test_spans_cover_each_pixel_once():
    for length, tile, overlap in ((100, 48, 8), (130, 48, 24), (40, 48, 8), (97, 32, 0)):
        covered = np.zeros(length, int)
        for start, stop, (a, b) in _spans(length, tile, overlap):
            assert stop - start == min(tile, length)
            covered[start + a : start + b] += 1
        assert np.all(covered == 1)


def test_tiles_equal_the_whole_image(tmp_path):
    # The network sees 8 px around a pixel; tiles drop 12 px where they meet.
    model = Deblurrer.load(checkpoint(tmp_path / "c.pt"), tile=48, overlap=24)
    image = np.random.default_rng(0).random((100, 130, 3)).astype(np.float32)
    whole = Deblurrer(model.generator, tile=512, overlap=0).deblur(image)
    np.testing.assert_allclose(model.deblur(image), whole, atol=1e-5)
    # By default tiles overlap by about half their side (even), at most 64 px.
    for tile, overlap in ((48, 24), (50, 24), (32, 16), (100, 50), (512, 64), (1024, 64)):
        assert Deblurrer(model.generator, tile=tile).overlap == overlap


def test_integer_images_are_scaled(tmp_path):
    model = Deblurrer.load(checkpoint(tmp_path / "c.pt"), tile=32, overlap=8)
    image = (np.random.default_rng(1).random((40, 50, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(model.deblur(image), model.deblur(image / np.float32(255)))
    with pytest.raises(TypeError, match="uint8 or uint16"):
        model.deblur(image.astype(np.int64))


def test_deblur_command_keeps_size_and_bit_depth(tmp_path):
    ckpt = checkpoint(tmp_path / "c.pt", identity=True)
    rng = np.random.default_rng(1)
    deep = (rng.random((70, 90, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    cv2.imwrite(str(tmp_path / "plain.jpg"), (rng.random((50, 60, 3)) * 255).astype(np.uint8))
    (tmp_path / "bad.png").write_text("nope")
    inputs = [str(tmp_path / name) for name in ("deep.png", "plain.jpg", "bad.png")]
    result = CliRunner().invoke(
        cli,
        ["deblur", "--checkpoint", str(ckpt), *inputs, "-o", str(tmp_path / "out"), "--tile", "32"],
    )
    assert result.exit_code == 1 and "bad.png" in result.output
    back = cv2.imread(str(tmp_path / "out" / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == deep.shape
    np.testing.assert_array_equal(back, deep)  # an identity network gives the input back
    plain = cv2.imread(str(tmp_path / "out" / "plain.png"), cv2.IMREAD_UNCHANGED)
    assert plain.dtype == np.uint8 and plain.shape == (50, 60, 3)


def test_evaluate_on_a_dataset_and_a_gopro_folder(tmp_path):
    for i in range(2):
        pixels = (np.random.default_rng(i).random((60, 60, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"p{i}.png"), pixels)
    data = tmp_path / "pairs.h5"
    make_dataset([tmp_path / "p0.png", tmp_path / "p1.png"], data,
                 DatasetConfig(patch=32, per_image=2, kernel_size=7))  # fmt: skip
    ckpt = checkpoint(tmp_path / "c.pt", identity=True)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(ckpt), "--data", str(data),
                                      "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert len(scores["pairs"]) == 4 and "mean" in result.output
    # An identity network scores exactly what its input scores.
    assert scores["mean"]["psnr_output"] == pytest.approx(scores["mean"]["psnr_input"])
    assert scores["mean"]["ssim_input"] < 1
    CliRunner().invoke(cli, ["export", str(data), str(tmp_path / "gopro")])
    # Files beside the images are not images; a damaged pair is named and skipped.
    (tmp_path / "gopro" / "blur" / "SOURCES.txt").write_text("where these came from")
    (tmp_path / "gopro" / "blur" / "Thumbs.db").write_bytes(b"\0" * 16)
    good = (tmp_path / "gopro" / "sharp" / "000002.png").read_bytes()
    (tmp_path / "gopro" / "sharp" / "000002.png").write_bytes(good[: len(good) // 2])
    evaluate = ["evaluate", "--checkpoint", str(ckpt), "--pairs", str(tmp_path / "gopro")]
    folder = CliRunner().invoke(cli, [*evaluate, "--json", str(tmp_path / "f.json")])
    # The others are scored and written; the run still says it was incomplete.
    assert folder.exit_code == 1 and "000003.png" in folder.output
    assert "skipped" in folder.output and "000002.png" in folder.output
    report = json.loads((tmp_path / "f.json").read_text())
    assert len(report["pairs"]) == 3 and [s["name"] for s in report["skipped"]] == ["000002.png"]
    strict = CliRunner().invoke(cli, [*evaluate, "--strict"])
    assert strict.exit_code == 1 and "000002.png" in strict.output and "--strict" in strict.output
    both = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(ckpt)])
    assert both.exit_code == 2 and "exactly one" in both.output


def test_output_rounding():
    image = np.array([[[-0.2, 0.0, 0.49 / 255], [0.51 / 255, 1.0, 1.3]]])
    np.testing.assert_array_equal(as_written(image, 8), [[[0, 0, 0], [1, 255, 255]]])
    assert as_written(image, 8).dtype == np.uint8
    for bits in (16, 32):  # 32: float files, written as 16-bit PNGs
        deep = as_written(image, bits)
        assert deep.dtype == np.uint16
        np.testing.assert_array_equal(deep, [[[0, 0, 126], [131, 65535, 65535]]])


def gopro_folder(root):
    """blur/ and sharp/ with an 8-bit pair (plain.png) and a 16-bit one (deep.png)."""
    rng = np.random.default_rng(5)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for name, top, dtype in (("plain.png", 255, np.uint8), ("deep.png", 65535, np.uint16)):
        sharp = (rng.random((40, 50, 3)) * top).astype(dtype)
        cv2.imwrite(str(root / "sharp" / name), sharp)
        cv2.imwrite(str(root / "blur" / name), cv2.GaussianBlur(sharp, (0, 0), 1.5))
    return root


def test_evaluate_scores_what_deblur_writes(tmp_path):
    ckpt = checkpoint(tmp_path / "c.pt", identity=True, shift=UNDER_HALF_A_STEP)
    folder = gopro_folder(tmp_path / "gopro")
    evaluate = ["evaluate", "--checkpoint", str(ckpt), "--pairs", str(folder)]
    result = CliRunner().invoke(cli, [*evaluate, "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    deblur = ["deblur", "--checkpoint", str(ckpt), str(folder / "blur"), "-o", str(tmp_path / "o")]
    assert CliRunner().invoke(cli, deblur).exit_code == 0
    report = json.loads((tmp_path / "s.json").read_text())
    rows = {row["name"]: row for row in report["pairs"]}
    for name in ("plain.png", "deep.png"):
        written, sharp = read_image(tmp_path / "o" / name), read_image(folder / "sharp" / name)
        assert rows[name]["psnr_output"] == psnr(written, sharp)
        assert rows[name]["ssim_output"] == ssim(written, sharp)
    # The 8-bit output is the input, so it scores what the input scores.
    plain, deep = rows["plain.png"], rows["deep.png"]
    assert plain["psnr_output"] == plain["psnr_input"]
    assert plain["ssim_output"] == plain["ssim_input"]
    # 16-bit inputs give 16-bit outputs, scored as such (not rounded to 8 bits).
    blurred, sharp = (read_image(folder / sub / "deep.png") for sub in ("blur", "sharp"))
    assert deep["psnr_output"] != psnr(as_written(blurred + UNDER_HALF_A_STEP, 8), sharp)
    assert (plain["scored"], deep["scored"]) == ("8-bit output, RGB", "16-bit output, RGB")
    both = "16-bit output, RGB; 8-bit output, RGB"
    assert report["mean"]["scored"] == both
    header, *lines = result.output.splitlines()
    assert lines[0].endswith(deep["scored"]) and lines[1].endswith(plain["scored"])
    assert lines[2].startswith("mean") and lines[2].endswith(both)
    # A pairs file holds 8-bit images: the output rounded to 8 bits is the input again.
    make_dataset([folder / "sharp" / "plain.png"], tmp_path / "pairs.h5",
                 DatasetConfig(patch=32, per_image=2, kernel_size=7))  # fmt: skip
    data = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "pairs.h5")]
    result = CliRunner().invoke(cli, [*data, "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    for row in json.loads((tmp_path / "d.json").read_text())["pairs"]:
        assert (row["psnr_output"], row["ssim_output"]) == (row["psnr_input"], row["ssim_input"])
        assert row["scored"] == "8-bit output, RGB"


def test_evaluate_on_the_y_channel(tmp_path):
    ckpt = checkpoint(tmp_path / "c.pt", identity=True, shift=UNDER_HALF_A_STEP)
    folder = gopro_folder(tmp_path / "gopro")
    evaluate = ["evaluate", "--checkpoint", str(ckpt), "--pairs", str(folder), "--json"]
    rgb = CliRunner().invoke(cli, [*evaluate, str(tmp_path / "rgb.json")])
    luma = CliRunner().invoke(cli, [*evaluate, str(tmp_path / "y.json"), "--y-channel"])
    assert rgb.exit_code == 0 and luma.exit_code == 0, luma.output
    rgb_row, y_row = (
        next(row for row in json.loads((tmp_path / f).read_text())["pairs"]
             if row["name"] == "plain.png")
        for f in ("rgb.json", "y.json")
    )  # fmt: skip
    blurred, sharp = (read_image(folder / sub / "plain.png") for sub in ("blur", "sharp"))
    assert y_row["psnr_input"] == psnr(y_channel(blurred), y_channel(sharp))
    assert y_row["ssim_input"] == ssim(y_channel(blurred), y_channel(sharp))
    assert y_row["psnr_input"] != pytest.approx(rgb_row["psnr_input"], abs=0.01)
    assert y_row["ssim_input"] != pytest.approx(rgb_row["ssim_input"], abs=1e-4)
    assert y_row["psnr_output"] == y_row["psnr_input"]
    assert y_row["scored"] == "8-bit output, Y channel (BT.601)"
    assert rgb_row["scored"] == "8-bit output, RGB"
    assert all(line.endswith("Y channel (BT.601)") for line in luma.output.splitlines()[1:])


def unreadable(path, kind):
    """A file given as a checkpoint that is none: random bytes, or a pickle of an object."""
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"kind": "dbgan", "payload": Payload()}))
    else:
        torch.save({"kind": "dbgan", "payload": Payload()}, path)
    return path


@pytest.mark.parametrize("kind", ["random bytes", "pickle", "torch.save"])
def test_unreadable_checkpoints_are_one_line_without_unsafe_advice(tmp_path, kind):
    bad = unreadable(tmp_path / "bad.pt", kind)
    folder = gopro_folder(tmp_path / "gopro")
    image = str(folder / "blur" / "plain.png")
    commands = (
        ["deblur", "--checkpoint", str(bad), image, "-o", str(tmp_path / "out")],
        ["evaluate", "--checkpoint", str(bad), "--pairs", str(folder)],
        ["blur", "--bgan", str(bad), image, "-o", str(tmp_path / "blurred")],
    )
    for command in commands:
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1, result.output
        (line,) = result.output.strip().splitlines()
        assert "bad.pt' cannot be read" in line
        assert "weights_only" not in line and "trust" not in line
    # Training resumes and VGG-19 weights are read the same way.
    with pytest.raises(ValueError, match="bad.pt' cannot be read") as error:
        read_torch_file(bad, "VGG-19 weights")
    assert "weights_only" not in str(error.value) and "\n" not in str(error.value)


def test_deblur_takes_folders_and_keeps_names_distinct(tmp_path):
    ckpt = checkpoint(tmp_path / "c.pt", identity=True)
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in ("x.png", "x.jpg", "y.png"):
        cv2.imwrite(str(folder / name), (rng.random((40, 40, 3)) * 255).astype(np.uint8))
    (folder / "notes.txt").write_text("not an image")
    deblur = ["deblur", "--checkpoint", str(ckpt), "--tile", "32"]
    result = CliRunner().invoke(cli, [*deblur, str(folder), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.jpg.png", "x.png.png",
                                                                    "y.png"]  # fmt: skip
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "y.png"), np.zeros((40, 40, 3), np.uint8))
    clash = CliRunner().invoke(cli, [*deblur, str(folder), "-o", str(tmp_path / "again")])
    assert clash.exit_code == 2 and "y.png" in clash.output
    (folder / "sub" / "y.png").unlink()
    data = (folder / "y.png").read_bytes()
    (folder / "y.png").write_bytes(data[: len(data) // 2])
    strict = CliRunner().invoke(cli, [*deblur, str(folder), "-o", str(tmp_path / "s"), "--strict"])
    assert strict.exit_code == 1 and "y.png" in strict.output and "--strict" in strict.output


def test_not_a_deblurring_checkpoint(tmp_path):
    torch.save({"kind": "bgan"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a deblurring"):
        Deblurrer.load(tmp_path / "x.pt")


class Payload:
    """Stands for a pickled object in a downloaded file, which could run code when loaded."""


def test_checkpoints_load_without_unpickling_objects(tmp_path):
    torch.save({"kind": "dbgan", "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt"):
        Deblurrer.load(tmp_path / "evil.pt")
