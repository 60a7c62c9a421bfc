"""DBGAN training on pairs files and on pairs made on the fly: validation, best checkpoint,
resume, CLI."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields, replace

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen import presets
from blurgen.bgan.data import StepBatches
from blurgen.bgan.infer import Deblurrer
from blurgen.bgan.losses import CONTENT_LOSSES
from blurgen.bgan.train import BganConfig
from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer
from blurgen.bgan.vgg import VGG19Features
from blurgen.cli.main import cli
from blurgen.cli.train import train_bgan_command, train_deblur_command
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset
from blurgen.torch import SyntheticPairs


@pytest.fixture
def pairs(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        pixels = (np.random.default_rng(i).random((60, 60, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(paths[-1]), pixels)
    make_dataset(paths, tmp_path / "pairs.h5", DatasetConfig(patch=32, per_image=4, kernel_size=7))
    torch.manual_seed(0)
    torch.save(VGG19Features("conv5_4").state_dict(), tmp_path / "vgg.pth")
    return tmp_path


def tiny(folder, **changes):
    settings = dict(data=(str(folder / "pairs.h5"),), val_split=0.25, iters=4, batch=2, patch=16,
                    channels=4, blocks=1, growth=4, disc_channels=8, vgg_layer="conv1_2",
                    vgg_weights=str(folder / "vgg.pth"), checkpoint_every=2, sample_every=2,
                    log_every=1, val_every=2, warmup=0)  # fmt: skip
    settings.update(changes)
    return DeblurConfig(**settings)


def test_run_validates_and_keeps_the_best(pairs):
    trainer = DeblurTrainer(tiny(pairs), pairs / "run")
    assert len(trainer.val_index) == 4 and len(trainer.train_index) == 8
    assert not set(trainer.val_index) & set(trainer.train_index)
    trainer.train()
    lines = [json.loads(line) for line in (pairs / "run" / "log.jsonl").read_text().splitlines()]
    val = [line for line in lines if "val_psnr" in line]
    assert [line["step"] for line in val] == [2, 4]
    assert (pairs / "run" / "checkpoints" / "best.pt").exists()
    model = Deblurrer.load(pairs / "run" / "checkpoints" / "best.pt", tile=32, overlap=8)
    assert model.deblur(np.zeros((40, 40, 3), np.float32)).shape == (40, 40, 3)
    grid = cv2.imread(str(pairs / "run" / "samples" / "step_0000004.png"))
    assert grid.shape == (2 * 16, 3 * 16, 3)


def test_validation_holds_out_whole_source_images(pairs, tmp_path):
    sources = [tmp_path / f"q{i}.png" for i in range(10)]
    for i, path in enumerate(sources):
        pixels = (np.random.default_rng(10 + i).random((50, 50, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(path), pixels)
    make_dataset(sources, tmp_path / "more.h5", DatasetConfig(patch=32, per_image=5, kernel_size=7))
    data = (str(pairs / "pairs.h5"), str(tmp_path / "more.h5"))
    for seed in range(4):
        trainer = DeblurTrainer(
            tiny(pairs, data=data, seed=seed, val_split=0.2), tmp_path / f"r{seed}"
        )
        photo = trainer.train_data.sources()
        held = {tuple(p) for p in photo[trainer.val_index]}
        trained = {tuple(p) for p in photo[trainer.train_index]}
        assert held and trained and not held & trained  # no photo on both sides
        assert len(trainer.val_index) + len(trainer.train_index) == 62
        assert 0.2 * 62 <= len(trainer.val_index) < 0.2 * 62 + 5
    make_dataset(
        sources[:1], tmp_path / "one.h5", DatasetConfig(patch=32, per_image=5, kernel_size=7)
    )
    with pytest.raises(ValueError, match="one source image"):
        DeblurTrainer(tiny(pairs, data=(str(tmp_path / "one.h5"),)), tmp_path / "single")


def one_photo_pairs(path):
    """A pairs file of 4 pairs made from one photo."""
    photo = path.with_suffix(".png")
    pixels = (np.random.default_rng(7).random((60, 60, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(photo), pixels)
    make_dataset([photo], path, DatasetConfig(patch=32, per_image=4, kernel_size=7))
    return path


def test_val_split_0_trains_on_one_photo_without_validation(pairs):
    one = one_photo_pairs(pairs / "one.h5")
    run = pairs / "run"
    command = ["train-deblur", "--data", str(one), "-o", str(run), "--iters", "2", "--batch", "1",
               "--patch", "16", "--arch", "resnet", "--channels", "4", "--blocks", "1", "--no-gan",
               "--perceptual-weight", "0", "--log-every", "1", "--val-every", "1"]  # fmt: skip
    refused = CliRunner().invoke(cli, command)
    assert refused.exit_code == 1 and "--val-split 0" in refused.output
    result = CliRunner().invoke(cli, [*command, "--val-split", "0"])
    assert result.exit_code == 0, result.output
    assert f"no validation (--val-split 0); {run}/checkpoints/latest.pt" in result.output
    assert json.loads((run / "config.json").read_text())["val_split"] == 0
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert not [key for line in lines for key in line if key.startswith("val_")]
    checkpoints = sorted(path.name for path in (run / "checkpoints").iterdir())
    assert checkpoints == ["latest.pt", "step_0000002.pt"]  # no best.pt
    model = Deblurrer.load(run / "checkpoints" / "latest.pt", tile=32, overlap=8)
    assert model.deblur(np.zeros((40, 40, 3), np.float32)).shape == (40, 40, 3)
    trainer = DeblurTrainer(tiny(pairs, data=(str(one),), val_split=0), pairs / "api")
    assert trainer.val_data is None and trainer.train_index.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no validation pairs"):
        trainer.validate()
    with pytest.raises(ValueError, match=r"val_split must be in \[0, 1\)"):
        tiny(pairs, val_split=-0.1)


@pytest.mark.parametrize("val_split", [0, 0.25, 5])
def test_val_files_are_validated_on_whatever_the_val_split(pairs, val_split):
    val = one_photo_pairs(pairs / "val.h5")
    trainer = DeblurTrainer(tiny(pairs, val=(str(val),), val_split=val_split), pairs / "run")
    assert trainer.val_data.paths == [str(val)]
    assert trainer.val_index.tolist() == [0, 1, 2, 3]
    assert trainer.train_index.tolist() == list(range(12))  # all of --data
    trainer.train()
    lines = [json.loads(line) for line in (pairs / "run" / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "val_psnr" in line] == [2, 4]
    assert (pairs / "run" / "checkpoints" / "best.pt").exists()


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_resume_and_no_gan(pairs, cpu_bf16):
    config = tiny(pairs, gan=False, cpu_bf16=cpu_bf16, workers=0)
    straight = DeblurTrainer(config, pairs / "a")
    straight.train()
    seen = []

    def stop(count):
        seen.append(count)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        DeblurTrainer(config, pairs / "b").train(progress=stop)
    # Resumed with data loaded by two processes: the same batches, the same weights.
    resumed = DeblurTrainer(replace(config, workers=2), pairs / "b", resume=True)
    resumed.train()
    for a, b in zip(straight.generator.parameters(), resumed.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.best_psnr == straight.best_psnr


def test_the_number_of_workers_changes_nothing_and_waits_are_logged(pairs):
    weights = []
    for workers in (0, 1, 2):
        trainer = DeblurTrainer(tiny(pairs, workers=workers), pairs / f"w{workers}")
        trainer.train()
        weights.append(torch.cat([p.detach().flatten() for p in trainer.generator.parameters()]))
        lines = (pairs / f"w{workers}" / "log.jsonl").read_text().splitlines()
        waits = [json.loads(line)["data_s"] for line in lines if "loss_g" in json.loads(line)]
        assert len(waits) == 4 and all(0 <= wait < 60 for wait in waits)
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])
    assert DeblurTrainer(tiny(pairs), pairs / "default").workers == 0  # on the CPU
    with pytest.raises(ValueError, match="workers must be at least 0"):
        tiny(pairs, workers=-1)


def test_checkpoints_hold_only_what_the_run_trains(pairs):
    keys = {}
    for gan in (True, False):
        trainer = DeblurTrainer(tiny(pairs, gan=gan), pairs / f"gan_{gan}")
        assert (trainer.discriminator is None) != gan
        trainer.train()
        latest = pairs / f"gan_{gan}" / "checkpoints" / "latest.pt"
        keys[gan] = set(torch.load(latest, weights_only=True))
    assert {"discriminator", "opt_d"} <= keys[True]
    assert keys[True] - keys[False] == {"discriminator", "opt_d"}


def test_content_loss_is_checked_and_changes_training(pairs):
    with pytest.raises(ValueError, match="content_loss must be one of mse, l1"):
        tiny(pairs, content_loss="l2")
    weights = {}
    for kind in CONTENT_LOSSES:
        trainer = DeblurTrainer(tiny(pairs, gan=False, content_loss=kind), pairs / kind)
        trainer.train()
        weights[kind] = torch.cat([w.detach().flatten() for w in trainer.generator.parameters()])
    assert not torch.equal(weights["mse"], weights["l1"])
    with pytest.raises(ValueError, match=r"other settings \(content_loss\)"):
        DeblurTrainer(tiny(pairs, gan=False, content_loss="mse"), pairs / "l1", resume=True)


def test_train_deblur_command(pairs):
    run = pairs / "runs" / "cli"  # its folders made, as every ML tool does
    result = CliRunner().invoke(cli, [
        "train-deblur", "--data", str(pairs / "pairs.h5"), "-o", str(run),
        "--iters", "2", "--batch", "1", "--patch", "16", "--channels", "4", "--blocks", "1",
        "--vgg-layer", "conv1_1", "--vgg-weights", str(pairs / "vgg.pth"), "--val-split", "0.2",
        "--val-every", "1", "--content-loss", "l1", "--content-weight", "2",
        "--perceptual-weight", "0.5", "--adversarial-weight", "0.02", "--no-bf16",
        "--no-transpose", "--cpu-bf16",
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "best.pt").exists()
    config = json.loads((run / "config.json").read_text())
    assert (config["content_loss"], config["content_weight"]) == ("l1", 2.0)
    assert (config["perceptual_weight"], config["adversarial_weight"]) == (0.5, 0.02)
    assert config["bf16"] is False and config["transpose"] is False and config["cpu_bf16"]
    choices = next(p for p in train_deblur_command.params if p.name == "content_loss").type
    assert tuple(choices.choices) == CONTENT_LOSSES


def conv_dtypes_in_training(trainer):
    """The dtypes the generator's first convolution produced in training steps (not validation)."""
    conv = next(m for m in trainer.generator.modules() if isinstance(m, torch.nn.Conv2d))
    seen = set()
    handle = conv.register_forward_hook(lambda m, i, o: seen.add(o.dtype) if m.training else None)
    trainer.train()
    handle.remove()
    return seen


def test_bf16_on_the_cpu_only_when_asked(pairs):
    assert conv_dtypes_in_training(DeblurTrainer(tiny(pairs), pairs / "run")) == {torch.float32}
    trainer = DeblurTrainer(tiny(pairs, cpu_bf16=True), pairs / "cpu_bf16")
    assert conv_dtypes_in_training(trainer) == {torch.bfloat16}
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())


def test_cpu_bf16_warns_where_the_cpu_lacks_it(pairs, monkeypatch, caplog):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    DeblurTrainer(tiny(pairs), pairs / "float32")
    assert "no native bf16" not in caplog.text
    DeblurTrainer(tiny(pairs, cpu_bf16=True), pairs / "emulated")
    assert "no native bf16" in caplog.text


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch finds no CUDA device")
@pytest.mark.parametrize("bf16", [True, False])
def test_trains_on_cuda_with_and_without_bf16(pairs, bf16):
    trainer = DeblurTrainer(tiny(pairs, bf16=bf16), pairs / "run", device="cuda")
    assert conv_dtypes_in_training(trainer) == {torch.bfloat16 if bf16 else torch.float32}
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())
    model = Deblurrer.load(pairs / "run" / "checkpoints" / "best.pt", "cuda", tile=32, overlap=8)
    assert model.deblur(np.full((40, 40, 3), 0.5, np.float32)).shape == (40, 40, 3)


def test_resumes_a_checkpoint_written_before_a_setting_existed(pairs):
    trainer = DeblurTrainer(tiny(pairs, gan=False), pairs / "run")
    trainer.train()
    latest = pairs / "run" / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=False)
    for name in ("bf16", "cpu_bf16", "warmup", "transpose"):
        del state["config"][name]
    torch.save(state, latest)
    # bf16 and cpu_bf16 existed with their defaults' behaviour; before warmup existed, runs had
    # none (0), and before transpose their crops were not transposed
    with pytest.raises(ValueError, match=r"other settings \(transpose\)"):
        DeblurTrainer(tiny(pairs, gan=False), pairs / "run", resume=True)
    old = tiny(pairs, gan=False, transpose=False)
    assert DeblurTrainer(old, pairs / "run", resume=True).step == 4
    with pytest.raises(ValueError, match=r"other settings \(bf16\)"):
        DeblurTrainer(replace(old, bf16=False), pairs / "run", resume=True)
    with pytest.raises(ValueError, match=r"other settings \(cpu_bf16\)"):
        DeblurTrainer(replace(old, cpu_bf16=True), pairs / "run", resume=True)
    with pytest.raises(ValueError, match=r"other settings \(warmup\)"):
        DeblurTrainer(replace(old, warmup=200), pairs / "run", resume=True)


def test_no_perceptual_term_needs_no_vgg_weights(pairs, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    command = ["train-deblur", "--data", str(pairs / "pairs.h5"), "--iters", "2", "--batch", "1",
               "--patch", "16", "--channels", "4", "--blocks", "1", "--no-gan"]  # fmt: skip
    result = CliRunner().invoke(cli, [*command, "-o", str(pairs / "a"), "--perceptual-weight", "0"])
    assert result.exit_code == 0, result.output
    assert (pairs / "a" / "checkpoints" / "best.pt").exists()
    result = CliRunner().invoke(cli, [*command, "-o", str(pairs / "b")])
    assert result.exit_code == 1 and "--vgg-weights" in result.output


def test_the_perceptual_settings_leave_the_random_draws_alone(pairs):
    states = []
    for changes in ({"perceptual_weight": 0.0}, {}, {"vgg_layer": "conv3_3"}):
        trainer = DeblurTrainer(tiny(pairs, **changes), pairs / str(len(states)))
        networks = (trainer.generator, trainer.discriminator)
        states.append(
            (torch.get_rng_state(), [p.detach() for n in networks for p in n.parameters()])
        )
    for rng, weights in states[1:]:
        assert torch.equal(rng, states[0][0])
        for a, b in zip(weights, states[0][1], strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("command", "config"), [(train_bgan_command, BganConfig), (train_deblur_command, DeblurConfig)]
)
def test_every_setting_is_an_option_with_the_fields_default_and_help(command, config):
    params = {p.name: p for p in command.params}
    for f in fields(config):
        if "help" not in f.metadata:  # resolved from other settings (synthesis)
            assert f.name not in params
            continue
        param = params[f.name]
        assert param.help == f.metadata["help"], f.name
        if f.name == "physics":  # a preset's name on the command line, its config in the run
            assert param.default == "camera-shake"
        elif f.default is MISSING:
            assert param.required, f.name
        else:
            assert param.default == f.default, f.name


def test_train_deblur_reads_a_config_file_and_flags_override_it(pairs):
    job = pairs / "job.yaml"
    job.write_text(
        f"data: [{pairs / 'pairs.h5'}, {pairs / 'pairs.h5'}]\n"
        "iters: 3\nbatch: 1\npatch: 16\narch: resnet\nchannels: 4\nblocks: 1\ngann: false\n"
    )
    result = CliRunner().invoke(cli, ["train-deblur", "--config", str(job), "-o", str(pairs / "r")])
    assert result.exit_code == 2 and "unknown setting: gann" in result.output
    # An off switch is written as the flag is, and acts as it does.
    job.write_text(job.read_text().replace("gann: false", "no_gan: true\nperceptual_weight: 0"))
    result = CliRunner().invoke(cli, ["train-deblur", "--config", str(job), "--iters", "2",
                                      "--workers", "0", "-o", str(pairs / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((pairs / "r" / "config.json").read_text())
    assert config["data"] == [str(pairs / "pairs.h5")] * 2
    assert (config["iters"], config["arch"], config["gan"], config["workers"]) == (
        2, "resnet", False, 0,
    )  # fmt: skip
    state = torch.load(pairs / "r" / "generator.pt", weights_only=True)
    assert state["generator_config"] == {"arch": "resnet", "channels": 4, "blocks": 1}


def test_compile_runs_the_training_steps_through_torch_compile(pairs, monkeypatch):
    # The real compiler takes minutes on this machine; bench/train_speed.py times it. Here a
    # stand-in records what is compiled and counts the calls that go through it.
    calls = {}

    def compile_(network):
        def step(*args):
            calls[type(network).__name__] = calls.get(type(network).__name__, 0) + 1
            return network(*args)

        return step

    monkeypatch.setattr(torch, "compile", compile_)
    plain = DeblurTrainer(tiny(pairs, workers=0), pairs / "plain")
    plain.train()
    assert calls == {}
    trainer = DeblurTrainer(tiny(pairs, workers=0, compile=True), pairs / "compiled")
    trainer.train()
    # Per step: one generator pass; the discriminator once on sharp and output together
    # for its update, and on each for the generator's.
    assert calls == {"RRDBDeblurGenerator": 4, "Discriminator": 4 * 3}
    for a, b in zip(plain.generator.parameters(), trainer.generator.parameters(), strict=True):
        assert torch.equal(a, b)
    saved = torch.load(pairs / "compiled" / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["generator"].keys() == plain.generator.state_dict().keys()
    # Compiling or not may change when a run is resumed.
    DeblurTrainer(tiny(pairs, workers=0), pairs / "compiled", resume=True)


# The bundled photos, their folder, and what a run on pairs made from them sets.
PHOTOS = [str(path) for path in bundled_images()]
PHOTO_FOLDER = str(bundled_images()[0].parent)
SYNTHESISED = {"data": (), "synthesise": PHOTOS, "per_image": 2, "synth_patch": 32,
               "val_split": 0.2}  # fmt: skip
# A small network, no VGG-19, and pairs made from the bundled photos: 5 photos x 2 pairs.
SMALL = ["--synth-patch", "32", "--per-image", "2", "--patch", "16", "--batch", "2", "--arch",
         "resnet", "--channels", "4", "--blocks", "1", "--no-gan", "--perceptual-weight", "0",
         "--val-split", "0.2", "--warmup", "0", "--log-every", "1"]  # fmt: skip


def test_trains_on_pairs_made_on_the_fly_and_records_their_config(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train-deblur", "--synthesise", PHOTO_FOLDER, *SMALL, "--iters", "2", "--val-every", "1",
        "--workers", "2", "-o", str(run),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == [] and config["synthesise"] == [PHOTO_FOLDER]
    assert (config["preset"], config["per_image"], config["synth_patch"]) == ("camera-shake", 2, 32)
    made = DatasetConfig.from_dict(config["synthesis"])
    assert made == presets.load("camera-shake", patch=32, per_image=2)
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "val_psnr" in line] == [1, 2]
    assert (run / "checkpoints" / "best.pt").exists()


@pytest.mark.parametrize("blur", ["camera-shake", "bgan"])
def test_pairs_made_on_the_fly_are_the_files_pairs(pairs, blur):
    # A preset file that draws the shipped BGAN (a learned blur), or a shipped preset.
    preset = blur
    made = ["--preset", blur]
    if blur == "bgan":
        preset = str(pairs / "learned.yaml")
        (pairs / "learned.yaml").write_text("blur: bgan\nkernel_size: 9\n")
        made = ["--preset", "none", "--config", preset]
    file = pairs / "made.h5"
    result = CliRunner().invoke(cli, ["make-dataset", *made, "--patch", "32", "--per-image", "2",
                                      "--seed", "3", "-o", str(file), "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    on_file = DeblurTrainer(tiny(pairs, data=(str(file),), val_split=0.2, seed=3, workers=0),
                            pairs / "file")  # fmt: skip
    config = tiny(pairs, **SYNTHESISED, preset=preset, seed=3, workers=2)
    on_the_fly = DeblurTrainer(config, pairs / "fly")
    # The same photos held out, the same batches, byte for byte ...
    assert len(on_file.val_index) and on_file.val_index.tolist() == on_the_fly.val_index.tolist()
    assert on_file.train_index.tolist() == on_the_fly.train_index.tolist()
    batches = [StepBatches(t.train_data, t.train_index, 2, 3) for t in (on_file, on_the_fly)]
    for step in range(4):
        for a, b in zip(batches[0][step], batches[1][step], strict=True):
            assert torch.equal(a, b)
    # ... and the same run, its batches made by two loader processes.
    on_file.train()
    on_the_fly.train()
    for a, b in zip(on_file.generator.parameters(), on_the_fly.generator.parameters(), strict=True):
        assert torch.equal(a, b)
    assert on_file.best_psnr == on_the_fly.best_psnr


def test_pairs_made_on_the_fly_validate_on_held_out_photos_files_or_nothing(pairs):
    held = DeblurTrainer(tiny(pairs, **SYNTHESISED), pairs / "held")
    photo = held.train_data.sources()[:, 1]
    assert len(held.val_index) == 2 and len(held.train_index) == 8
    assert not set(photo[held.val_index]) & set(photo[held.train_index])
    assert isinstance(held.val_data, SyntheticPairs) and held.val_data.crop is None
    val = str(pairs / "pairs.h5")
    files = DeblurTrainer(tiny(pairs, **SYNTHESISED, val=(val,)), pairs / "files")
    assert files.val_data.paths == [val] and files.train_index.tolist() == list(range(10))
    alone = DeblurTrainer(tiny(pairs, **{**SYNTHESISED, "val_split": 0}), pairs / "alone")
    assert alone.val_data is None and alone.train_index.tolist() == list(range(10))
    alone.train()
    assert sorted(path.name for path in (pairs / "alone" / "checkpoints").iterdir()) == [
        "latest.pt", "step_0000002.pt", "step_0000004.pt",
    ]  # fmt: skip


def test_what_pairs_to_train_on_is_checked(pairs):
    command = ["train-deblur", "-o", str(pairs / "run"), *SMALL]
    data, synthesise = ["--data", str(pairs / "pairs.h5")], ["--synthesise", PHOTO_FOLDER]
    for given, message in (
        ([*data, *synthesise], "give pairs files (--data) or photos to make pairs from "
                               "(--synthesise), not both"),
        ([], "give pairs files to train on (--data), or photos to make them from (--synthesise)"),
        ([*synthesise, "--preset", "nope"], "no preset 'nope': not a file, nor one of"),
        ([*synthesise, "--patch", "64"], "the training crops (patch 64) must fit in the pairs "
                                         "made (synth_patch 32)"),
    ):  # fmt: skip
        result = CliRunner().invoke(cli, [*command, *given])
        assert result.exit_code == 1 and f"Error: {message}" in result.output, result.output
    with pytest.raises(ValueError, match="preset, per_image apply only to pairs made on the fly"):
        tiny(pairs, preset="none", per_image=2)
    with pytest.raises(ValueError, match="per_image is 3, but synthesis makes 2"):
        replace(tiny(pairs, **SYNTHESISED), per_image=3)
    # A learned blur that cannot make the pairs stops the run as it starts, saying why.
    (pairs / "learned.yaml").write_text("blur: bgan\n")
    config = tiny(pairs, **{**SYNTHESISED, "synth_patch": 24}, preset=str(pairs / "learned.yaml"))
    with pytest.raises(ValueError, match="cannot make the pairs to train on: images must be over"):
        DeblurTrainer(config, pairs / "learned")
    assert not (pairs / "learned").exists()


def test_a_resumed_run_makes_the_pairs_it_began_with(tmp_path, caplog):
    preset = tmp_path / "calibrated.yaml"
    preset.write_text("kernel_size: 9\nblur: motion\n")
    command = ["train-deblur", "--synthesise", PHOTO_FOLDER, "--preset", str(preset), *SMALL,
               "--val-every", "2", "--checkpoint-every", "1"]  # fmt: skip

    def train(run, iters, *more):
        return CliRunner().invoke(cli, [*command, "-o", str(tmp_path / run), "--iters", str(iters),
                                        *more])  # fmt: skip

    assert train("straight", 4).exit_code == 0
    assert train("resumed", 2).exit_code == 0
    recorded = (tmp_path / "resumed" / "config.json").read_text()
    preset.write_text("kernel_size: 15\nblur: motion\n")  # calibrated again, say
    result = train("resumed", 4, "--resume")
    assert result.exit_code == 0, result.output
    assert "not what it was when the run began" in caplog.text
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["synthesis"] == (
        json.loads(recorded)["synthesis"]
    )  # fmt: skip
    weights = [torch.load(tmp_path / run / "checkpoints" / "latest.pt", weights_only=True)
               for run in ("straight", "resumed")]  # fmt: skip
    assert weights[1]["step"] == 4
    for name, value in weights[0]["generator"].items():
        assert torch.equal(value, weights[1]["generator"][name]), name
    # Other settings are refused as ever; the file may even be gone.
    result = train("resumed", 5, "--resume", "--per-image", "3")
    assert result.exit_code == 1
    assert "other settings (per_image, synthesis)" in result.output
    preset.unlink()
    assert train("resumed", 5, "--resume").exit_code == 0
