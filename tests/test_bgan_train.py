"""BGAN training runs: files of a run, resume equals an uninterrupted run, generation, CLI."""

from __future__ import annotations

import json
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.bgan.infer import BlurGAN
from blurgen.bgan.nets.blur import LOGIT_GAIN
from blurgen.bgan.train import BganConfig, BganTrainer
from blurgen.bgan.vgg import VGG19Features
from blurgen.cli.main import cli


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("sharp", "blurry"):
        (tmp_path / name).mkdir()
        for i in range(3):
            image = (rng.random((48, 56, 3)) * 255).astype(np.uint8)
            if name == "blurry":
                image = cv2.blur(image, (7, 1))
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), image)
    (tmp_path / "blurry" / "broken.png").write_text("not an image")
    torch.manual_seed(0)
    torch.save(VGG19Features("conv5_4").state_dict(), tmp_path / "vgg19.pth")
    return tmp_path


def tiny(folders, **changes):
    settings = dict(sharp=str(folders / "sharp"), blurry=str(folders / "blurry"), iters=4,
                    batch=2, patch=32, channels=8, blocks=1, disc_channels=8, vgg_layer="conv2_2",
                    vgg_weights=str(folders / "vgg19.pth"), checkpoint_every=2, sample_every=2,
                    log_every=1, warmup=0)  # fmt: skip
    settings.update(changes)
    return BganConfig(**settings)


def interrupt_after(steps):
    """A progress callback that presses Ctrl-C after ``steps`` steps."""
    seen = []

    def progress(count):
        seen.append(count)
        if len(seen) == steps:
            raise KeyboardInterrupt

    return progress


def test_run_files_and_skipped_images(folders, caplog):
    with caplog.at_level(logging.WARNING, logger="blurgen"):
        trainer = BganTrainer(tiny(folders), folders / "run")
    assert any("broken.png" in message for message in caplog.messages)
    last = trainer.train()
    run = folders / "run"
    assert last["step"] == 4 and np.isfinite([last["loss_g"], last["loss_d"]]).all()
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert lines[-1]["lr"] < lines[0]["lr"]  # linear decay over the second half
    assert json.loads((run / "config.json").read_text())["iters"] == 4
    for name in ("step_0000002.pt", "step_0000004.pt", "latest.pt"):
        assert (run / "checkpoints" / name).exists()
    grid = cv2.imread(str(run / "samples" / "step_0000004.png"))
    assert grid.shape == (2 * 32, 3 * 32, 3)


def test_truncated_photos_are_skipped_or_stop_with_strict(folders, caplog):
    rng = np.random.default_rng(5)
    data = cv2.imencode(".jpg", (rng.random((80, 80, 3)) * 255).astype(np.uint8))[1].tobytes()
    (folders / "blurry" / "cut.jpg").write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="blurgen"):
        trainer = BganTrainer(tiny(folders), folders / "run")
    assert any("cut.jpg" in m and "damaged" in m for m in caplog.messages)
    assert all(image.shape[0] != 80 for image in trainer.blurry.images)
    with pytest.raises(ValueError, match="(broken.png|cut.jpg).*--strict"):
        BganTrainer(tiny(folders), folders / "strict", strict=True)


def test_only_the_newest_step_checkpoints_are_kept(folders):
    BganTrainer(tiny(folders, iters=10, checkpoint_every=1, keep=2), folders / "run").train()
    names = sorted(p.name for p in (folders / "run" / "checkpoints").iterdir())
    assert names == ["latest.pt", "step_0000009.pt", "step_0000010.pt"]
    # latest.pt is the newest step's file under a second name, not a second copy.
    checkpoints = folders / "run" / "checkpoints"
    assert (checkpoints / "latest.pt").samefile(checkpoints / "step_0000010.pt")
    assert BlurGAN.load(checkpoints / "latest.pt") is not None


def test_checkpoints_are_copied_where_links_fail(folders, monkeypatch):
    def refuse(source, target):
        raise PermissionError("no hard links on this file system")

    monkeypatch.setattr(os, "link", refuse)
    BganTrainer(tiny(folders, iters=2, checkpoint_every=1), folders / "run").train()
    checkpoints = folders / "run" / "checkpoints"
    latest, step = checkpoints / "latest.pt", checkpoints / "step_0000002.pt"
    assert not latest.samefile(step) and latest.read_bytes() == step.read_bytes()
    assert not list(checkpoints.glob("*.partial"))


def test_learning_rate_schedule(folders):
    config = tiny(folders, iters=10, warmup=4, lr=1e-3, decay_start=0.5, checkpoint_every=10)
    BganTrainer(config, folders / "run").train()
    lines = (folders / "run" / "log.jsonl").read_text().splitlines()
    logged = [row["lr"] for row in map(json.loads, lines)]
    # rise over steps 1-4, constant, then decay from the 6th step (index 5 = 0.5 * 10) to 0
    expected = [1e-3 * f for f in (0.25, 0.5, 0.75, 1, 1, 1, 0.8, 0.6, 0.4, 0.2)]
    np.testing.assert_allclose(logged, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="warmup"):
        tiny(folders, warmup=-1)
    with pytest.raises(ValueError, match="content_scale"):
        tiny(folders, content_scale=0)
    with pytest.raises(ValueError, match="noise must be one of map, vector"):
        tiny(folders, noise="scalar")


def test_resume_gives_the_uninterrupted_weights(folders):
    straight = BganTrainer(tiny(folders), folders / "a")
    straight.train()

    interrupted = BganTrainer(tiny(folders), folders / "b")
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        interrupted.train(progress=interrupt_after(2))
    with pytest.raises(FileExistsError, match="--resume"):
        BganTrainer(tiny(folders), folders / "b")
    resumed = BganTrainer(tiny(folders), folders / "b", resume=True)
    assert resumed.step == 2
    resumed.train()
    for (name, a), (_, b) in zip(straight.generator.state_dict().items(),
                                 resumed.generator.state_dict().items(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="batch"):
        BganTrainer(tiny(folders, batch=3), folders / "b", resume=True)


def test_resume_may_lengthen_a_run(folders, caplog):
    BganTrainer(tiny(folders), folders / "short").train()
    longer = BganTrainer(tiny(folders, iters=6, checkpoint_every=3), folders / "short", resume=True)
    assert "ends at step 6 (was 4)" in caplog.text
    longer.train()
    assert longer.step == 6
    assert json.loads((folders / "short" / "config.json").read_text())["iters"] == 6
    BganTrainer(tiny(folders, iters=6), folders / "six").train()
    lrs = {}
    for name in ("short", "six"):
        lines = (folders / name / "log.jsonl").read_text().splitlines()
        lrs[name] = {row["step"]: row["lr"] for row in map(json.loads, lines)}
    assert [lrs["short"][step] for step in (5, 6)] == [lrs["six"][step] for step in (5, 6)]
    assert (folders / "short" / "checkpoints" / "step_0000006.pt").exists()


def test_generation_from_a_checkpoint(folders, tmp_path):
    BganTrainer(tiny(folders), folders / "run").train()
    gan = BlurGAN.load(folders / "run" / "checkpoints" / "latest.pt")
    sharp = np.random.default_rng(1).random((40, 44, 3)).astype(np.float32)
    a, b, c = gan.blur(sharp, seed=3), gan.blur(sharp, seed=3), gan.blur(sharp, seed=4)
    assert a.shape == sharp.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert gan.blur(sharp[None], seed=3).shape == (1, 40, 44, 3)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a BGAN checkpoint"):
        BlurGAN.load(tmp_path / "other.pt")


def test_train_bgan_command(folders):
    result = CliRunner().invoke(cli, [
        "train-bgan", "--sharp", str(folders / "sharp"), "--blurry", str(folders / "blurry"),
        "-o", str(folders / "cli"), "--iters", "2", "--batch", "1", "--patch", "32",
        "--vgg-layer", "conv1_2", "--vgg-weights", str(folders / "vgg19.pth"), "--no-bf16",
        "--warmup", "3", "--cpu-bf16", "--content-weight", "0.5", "--content-scale", "4",
        "--noise", "vector", "--scale", "2", "--channels", "8", "--blocks", "1",
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (folders / "cli" / "checkpoints" / "latest.pt").exists()
    written = json.loads((folders / "cli" / "config.json").read_text())
    assert written["bf16"] is False and written["cpu_bf16"] and written["warmup"] == 3
    assert (written["content_weight"], written["content_scale"], written["noise"]) == (
        0.5,
        4,
        "vector",
    )
    generator = BlurGAN.load(folders / "cli" / "checkpoints" / "latest.pt").generator
    assert (generator.noise, generator.scale, generator.config["channels"]) == ("vector", 2, 8)
    folders_args = ["--sharp", str(folders / "sharp"), "--blurry", str(folders / "blurry")]
    again = CliRunner().invoke(cli, ["train-bgan", *folders_args, "-o", str(folders / "cli")])
    assert again.exit_code == 1 and "--resume" in again.output


def test_datasets_and_blur_command_with_a_trained_bgan(folders):
    import h5py

    from blurgen.bgan.infer import BganBlur
    from blurgen.h5 import verify_pairs
    from blurgen.pipeline import DatasetConfig, make_dataset, regenerate

    BganTrainer(tiny(folders), folders / "run").train()
    checkpoint = folders / "run" / "checkpoints" / "latest.pt"
    sources = sorted((folders / "sharp").glob("*.png"))
    config = DatasetConfig(patch=24, per_image=12, kernel_size=5, bgan=str(checkpoint),
                           mix=(("motion", 0.5), ("bgan", 0.5)))  # fmt: skip
    with pytest.raises(ValueError, match="learned="):
        make_dataset(sources, folders / "x.h5", config)
    make_dataset(sources, folders / "one.h5", config, learned=BganBlur(checkpoint))
    # Worker processes get the blur pickled (and load the checkpoint themselves).
    make_dataset(sources, folders / "two.h5", config, learned=BganBlur(checkpoint), workers=2,
                 executor="processes")  # fmt: skip
    assert verify_pairs(folders / "one.h5")[1] == []
    with h5py.File(folders / "one.h5") as a, h5py.File(folders / "two.h5") as b:
        method = a["method"][...]
        assert set(method.tolist()) == {0, 2}
        assert np.all(a["kernel"][...][method == 2] == 0)
        assert np.all(a["noise"][...][method == 2] == 0)
        for name in ("sharp", "blurred", "kernel", "method"):
            np.testing.assert_array_equal(a[name][...], b[name][...])
        learned_row = int(np.flatnonzero(method == 2)[0])
        stored = a["blurred"][learned_row]
    # The generator's noise maps come from the record's noise seed, so the pair replays.
    assert BganTrainer(tiny(folders), folders / "other").generator.noise == "map"
    _, blurred = regenerate(folders / "one.h5", learned_row, learned=BganBlur(checkpoint))
    np.testing.assert_array_equal(blurred, stored)
    blur = ["blur", str(sources[0]), "--bgan", str(checkpoint)]
    result = CliRunner().invoke(
        cli, [*blur, "-o", str(folders / "blurred"), "--boundary", "reflect"]
    )
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(folders / "blurred" / "0_blurred.png")).shape == (48, 56, 3)
    # As for kernels, the default boundary keeps the pixels a K px kernel would leave valid.
    result = CliRunner().invoke(cli, [*blur, "-o", str(folders / "valid"), "--size", "9"])
    assert cv2.imread(str(folders / "valid" / "0_blurred.png")).shape == (40, 48, 3)
    assert DatasetConfig(blur="bgan").bgan == "builtin:lai2016"


def test_smoke_training_on_real_camera_shake(shared_data, tmp_path):
    from blurgen.pipeline import bundled_images

    torch.manual_seed(0)
    torch.save(VGG19Features("conv5_4").state_dict(), tmp_path / "vgg19.pth")
    config = BganConfig(sharp=str(bundled_images()[0].parent),
                        blurry=str(shared_data / "blurry" / "lai2016_real"), iters=3, batch=2,
                        patch=64, channels=8, blocks=1, disc_channels=8, vgg_layer="conv2_2",
                        vgg_weights=str(tmp_path / "vgg19.pth"), log_every=1)  # fmt: skip
    trainer = BganTrainer(config, tmp_path / "run")
    assert len(trainer.blurry.images) >= 60
    last = trainer.train()
    assert last["step"] == 3 and np.isfinite(last["loss_g"]) and np.isfinite(last["loss_d"])


def test_damaged_checkpoints_are_named(folders):
    BganTrainer(tiny(folders), folders / "run").train()
    latest = folders / "run" / "checkpoints" / "latest.pt"
    whole = latest.read_bytes()
    latest.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(ValueError, match="latest.pt' cannot be read"):
        BganTrainer(tiny(folders), folders / "run", resume=True)
    with pytest.raises(ValueError, match="latest.pt' cannot be read"):
        BlurGAN.load(latest)
    torch.save({"kind": "dbgan", "config": {}}, latest)
    with pytest.raises(ValueError, match="not a checkpoint of a bgan run"):
        BganTrainer(tiny(folders), folders / "run", resume=True)
    (folders / "noise.pt").write_bytes(np.random.default_rng(0).bytes(2000))
    sharp = str(folders / "sharp" / "0.png")
    for command in (["blur", "--bgan", str(folders / "noise.pt"), sharp, "-o", str(folders / "o")],
                    ["deblur", "--checkpoint", str(folders / "noise.pt"), sharp, "-o",
                     str(folders / "o")]):  # fmt: skip
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1, result.output
        assert "noise.pt' cannot be read" in result.output
        assert "Traceback" not in result.output
    assert not (folders / "o").exists() or not any((folders / "o").iterdir())


def test_no_vgg_weights_and_no_network_is_one_line(folders, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    command = ["train-bgan", "--sharp", str(folders / "sharp"), "--blurry", str(folders / "blurry"),
               "--iters", "2", "--batch", "1", "--patch", "32"]  # fmt: skip
    result = CliRunner().invoke(cli, [*command, "-o", str(folders / "offline")])
    assert result.exit_code == 1, result.output
    assert "--vgg-weights" in result.output and "Traceback" not in result.output
    assert not (folders / "offline" / "checkpoints").exists()
    # without the perceptual term there is nothing to download
    result = CliRunner().invoke(
        cli, [*command, "-o", str(folders / "adversarial"), "--perceptual-weight", "0"]
    )
    assert result.exit_code == 0, result.output
    log = (folders / "adversarial" / "log.jsonl").read_text().splitlines()
    assert "perceptual" not in json.loads(log[-1]) and "adversarial" in json.loads(log[-1])


def plain_physics(kernel_size=9):
    from blurgen.degradation import Degradation
    from blurgen.pipeline import DatasetConfig

    degradation = Degradation(space="naive", quantise=False)
    return DatasetConfig(kernel_size=kernel_size, degradation=degradation)


def test_pretraining_targets_are_blurgen_kernel_blur():
    from blurgen import blur
    from blurgen.bgan.train import physics_blur

    rng = np.random.default_rng(0)
    sharp = rng.random((3, 20, 24, 3), dtype=np.float32)
    sharp[:, :, :12] = 0  # a dark left half: a left-right mix-up of the layout shows
    tensor = torch.from_numpy(sharp[:, :, :20]).permute(0, 3, 1, 2).contiguous()
    blurred, kernels = physics_blur(tensor, plain_physics(), [11, 12, 13])
    assert blurred.shape == (3, 3, 20, 20) and kernels.shape == (3, 9, 9)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1, atol=1e-5)
    assert not np.allclose(kernels[0], kernels[1])  # one kernel per patch
    for image, kernel, result in zip(sharp[:, :, :20], kernels, blurred, strict=True):
        expected = blur(image, kernel, boundary="reflect")
        np.testing.assert_allclose(result.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    again, _ = physics_blur(tensor, plain_physics(), [11, 12, 13])
    torch.testing.assert_close(again, blurred, rtol=0, atol=0)


def test_pretraining_learns_the_physics_blur_then_hands_over(folders):
    from blurgen.bgan.train import physics_blur

    physics = plain_physics().to_dict()
    config = tiny(folders, iters=82, pretrain=80, physics=physics, lr=2e-3, log_every=1,
                  checkpoint_every=82, sample_every=82, perceptual_weight=0)  # fmt: skip
    trainer = BganTrainer(config, folders / "run")
    sharp = trainer.sharp.sample(6, np.random.default_rng(7))
    target, _ = physics_blur(sharp, trainer.physics, np.arange(6))
    z = torch.randn(6, *trainer.generator.noise_shape(32, 32))
    with torch.no_grad():
        before = (trainer.generator(sharp, z) - target).abs().mean().item()
    trainer.train()
    with torch.no_grad():
        after = (trainer.generator(sharp, z) - target).abs().mean().item()
    # The untrained generator is the identity: its error is what the blur changes. On noise
    # photos blurred by random kernels much of it cannot be predicted (0.74 of it was left
    # after these 80 steps; 0.86 after 40).
    assert after < 0.8 * before
    lines = [json.loads(line) for line in (folders / "run" / "log.jsonl").read_text().splitlines()]
    assert all("pretrain_l1" in line and "loss_d" not in line for line in lines[:80])
    assert all("loss_d" in line for line in lines[80:])
    with pytest.raises(ValueError, match="must fit"):
        tiny(folders, pretrain=2, physics=plain_physics(kernel_size=33).to_dict())
    with pytest.raises(ValueError, match="physics"):
        tiny(folders, pretrain=2)


def test_resume_during_pretraining_gives_the_uninterrupted_weights(folders):
    config = tiny(folders, pretrain=3, physics=plain_physics().to_dict(), checkpoint_every=1)
    straight = BganTrainer(config, folders / "a")
    straight.train()
    with pytest.raises(KeyboardInterrupt):
        BganTrainer(config, folders / "b").train(progress=interrupt_after(2))
    resumed = BganTrainer(config, folders / "b", resume=True)
    assert resumed.step == 2
    resumed.train()
    for (name, a), (_, b) in zip(straight.generator.state_dict().items(),
                                 resumed.generator.state_dict().items(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_runs_export_the_generator_alone(folders):
    BganTrainer(tiny(folders), folders / "run").train()
    exported = folders / "run" / "generator.pt"
    state = torch.load(exported, weights_only=True)
    assert state["kind"] == "bgan-generator" and state["step"] == 4
    assert {"opt_g", "discriminator", "opt_d"}.isdisjoint(state)
    assert exported.stat().st_size < (folders / "run" / "checkpoints" / "latest.pt").stat().st_size
    sharp = np.random.default_rng(2).random((32, 36, 3)).astype(np.float32)
    from_checkpoint = BlurGAN.load(folders / "run" / "checkpoints" / "latest.pt")
    np.testing.assert_array_equal(BlurGAN.load(exported).blur(sharp, 5),
                                  from_checkpoint.blur(sharp, 5))  # fmt: skip


def test_the_shipped_bgan_loads_without_pickled_code_and_blurs():
    from blurgen.bgan.infer import BUILTIN, resolve
    from blurgen.io import read_image
    from blurgen.pipeline import bundled_images

    path = resolve("builtin:lai2016")
    assert path == BUILTIN["lai2016"] and path.stat().st_size < 5_000_000
    state = torch.load(path, weights_only=True)
    assert state["kind"] == "bgan-generator" and "opt_g" not in state
    gan = BlurGAN.load("builtin:lai2016")
    sharp = read_image(bundled_images()[0])[:128, :128]
    blurred = gan.blur(sharp, seed=0)

    def energy(image):
        grey = image.mean(axis=2)
        return (np.diff(grey, axis=0) ** 2).mean() + (np.diff(grey, axis=1) ** 2).mean()

    assert energy(blurred) < 0.8 * energy(sharp)
    assert abs(blurred.mean() - sharp.mean()) < 0.02
    with pytest.raises(ValueError, match="no builtin generator 'nope'"):
        BlurGAN.load("builtin:nope")


def test_commands_use_the_shipped_bgan_without_a_path(tmp_path):
    import h5py

    from blurgen.bgan.infer import BganBlur
    from blurgen.pipeline import bundled_images, regenerate

    photo = str(bundled_images()[1])
    result = CliRunner().invoke(cli, ["blur", photo, "--bgan", "-o", str(tmp_path / "out"),
                                      "--boundary", "reflect"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "blur.json").read_text())
    assert report["config"]["bgan"] == "builtin:lai2016"
    pairs = tmp_path / "pairs.h5"
    result = CliRunner().invoke(cli, ["make-dataset", photo, "-o", str(pairs), "--blur", "bgan",
                                      "--patch", "48", "--per-image", "3", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with h5py.File(pairs) as f:
        assert json.loads(f.attrs["config"])["bgan"] == "builtin:lai2016"
        # --blur replaces the default preset's mix of motion and linear blur.
        assert set(f["method"][...].tolist()) == {2}
        stored = f["blurred"][2]
    _, blurred = regenerate(pairs, 2, learned=BganBlur("builtin:lai2016"))
    np.testing.assert_array_equal(blurred, stored)


def test_a_run_may_start_from_another_generator(folders):
    BganTrainer(tiny(folders), folders / "first").train()
    exported = folders / "first" / "generator.pt"
    second = BganTrainer(tiny(folders, init=str(exported)), folders / "second")
    for (name, a), (_, b) in zip(BlurGAN.load(exported).generator.state_dict().items(),
                                 second.generator.state_dict().items(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="holds a generator of"):
        BganTrainer(tiny(folders, channels=16, init=str(exported)), folders / "third")


def test_multi_scale_gradient_discriminators_and_noise_mixing_train_and_save(folders):
    config = tiny(folders, arch="kernels", kernel_size=9, cell=16, latent=3, channels=16,
                  perceptual_weight=0, discriminator="patch", disc_layers=1, disc_scales=2,
                  disc_input="gradients", sensor_noise=True, noise_mixing=True)  # fmt: skip
    BganTrainer(config, folders / "run").train()
    saved = torch.load(folders / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["discriminator"]["nets.1.features.0.weight"].shape == (8, 6, 4, 4)
    generator = BlurGAN.load(folders / "run" / "generator.pt").generator
    assert generator.config["noise_mixing"] is True
    assert not torch.equal(generator.noise_mix * LOGIT_GAIN, torch.eye(3))
    with pytest.raises(ValueError, match="disc_scales applies to the patch discriminator"):
        tiny(folders, disc_scales=2)
    with pytest.raises(ValueError, match="disc_input applies to the patch discriminator"):
        tiny(folders, disc_input="gradients")
    with pytest.raises(ValueError, match="noise_mixing needs sensor_noise"):
        tiny(folders, arch="kernels", kernel_size=9, cell=16, noise_mixing=True)


@pytest.mark.parametrize("form", ["softmax", "path"])
def test_a_kernel_generator_trains_saves_and_makes_datasets(folders, form):
    """With a patch discriminator."""
    from blurgen.bgan.infer import BganBlur
    from blurgen.bgan.nets import KernelBlurGenerator
    from blurgen.pipeline import DatasetConfig, make_dataset, regenerate

    result = CliRunner().invoke(cli, [
        "train-bgan", "--sharp", str(folders / "sharp"), "--blurry", str(folders / "blurry"),
        "-o", str(folders / "run"), "--iters", "3", "--batch", "2", "--patch", "32",
        "--perceptual-weight", "0", "--arch", "kernels", "--kernel-size", "9", "--cell", "16",
        "--latent", "3", "--channels", "16", "--blocks", "1", "--pretrain", "1",
        "--physics", "none", "--warmup", "0", "--discriminator", "patch", "--disc-layers", "1",
        "--kernel-form", form,
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    written = json.loads((folders / "run" / "config.json").read_text())
    assert (written["arch"], written["kernel_size"], written["channels"]) == ("kernels", 9, 16)
    assert (written["discriminator"], written["disc_layers"]) == ("patch", 1)
    saved = torch.load(folders / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["discriminator"]["features.0.weight"].shape == (64, 3, 4, 4)
    exported = folders / "run" / "generator.pt"
    generator = BlurGAN.load(exported).generator
    assert isinstance(generator, KernelBlurGenerator)
    assert generator.config == {"arch": "kernels", "kernel_size": 9, "cell": 16, "latent": 3,
                                "channels": 16, "blocks": 1, "sensor_noise": False,
                                "variation_gain": 1.0, "form": form,
                                "noise_kernel": 1, "noise_mixing": False}  # fmt: skip
    # It learned something: its kernels are no longer the ones it started with.
    start = KernelBlurGenerator(9, 16, 3, 16, 1, form=form)
    z = torch.randn(1, 3, 1, 1)
    assert not torch.allclose(generator.kernels(z), start.kernels(z), atol=1e-4)
    sources = sorted((folders / "sharp").glob("*.png"))
    config = DatasetConfig(patch=24, per_image=4, kernel_size=5, blur="bgan", bgan=str(exported))
    make_dataset(sources, folders / "pairs.h5", config, learned=BganBlur(exported))
    make_dataset(sources, folders / "two.h5", config, learned=BganBlur(exported), workers=2)
    import h5py

    with h5py.File(folders / "pairs.h5") as a, h5py.File(folders / "two.h5") as b:
        np.testing.assert_array_equal(a["blurred"][...], b["blurred"][...])
        stored = a["blurred"][2]
        assert not np.array_equal(a["blurred"][...], a["sharp"][...])
    _, blurred = regenerate(folders / "pairs.h5", 2, learned=BganBlur(exported))
    np.testing.assert_array_equal(blurred, stored)
    # Its own settings only.
    with pytest.raises(ValueError, match="scale and noise are the resnet generator's"):
        tiny(folders, arch="kernels", scale=2)
    with pytest.raises(
        ValueError, match="sensor_noise, noise_kernel, noise_mixing and kernel_form are the kernel"
    ):
        tiny(folders, sensor_noise=True)
    with pytest.raises(ValueError, match="kernel_size must be odd and cell even"):
        tiny(folders, arch="kernels", kernel_size=8)
    with pytest.raises(ValueError, match="kernel_size must be under twice the patch"):
        tiny(folders, arch="kernels", kernel_size=65)
    with pytest.raises(ValueError, match="path kernels must be at least 9 px, got 7"):
        tiny(folders, arch="kernels", kernel_size=7, kernel_form="path")
    with pytest.raises(
        ValueError, match="sensor_noise, noise_kernel, noise_mixing and kernel_form are the kernel"
    ):
        tiny(folders, kernel_form="path")
    widths = tiny(folders, arch="kernels", channels=None, blocks=None).generator()
    assert (widths["channels"], widths["blocks"]) == (256, 2)
    widths = tiny(folders, channels=None, blocks=None).generator()
    assert (widths["channels"], widths["blocks"]) == (64, 9)
