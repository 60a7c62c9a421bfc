"""Tiled deblurring and evaluation with checkpoints the tests make."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.bgan.infer import Deblurrer, _spans
from blurgen.bgan.nets import DeblurGenerator
from blurgen.cli.main import cli


def checkpoint(path, identity=False, seed=0):
    torch.manual_seed(seed)
    generator = DeblurGenerator(channels=4, blocks=1)
    if identity:
        torch.nn.init.zeros_(generator.tail[-1].weight)
        torch.nn.init.zeros_(generator.tail[-1].bias)
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
    from blurgen.pipeline import DatasetConfig, make_dataset

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
