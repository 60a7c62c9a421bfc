"""Training under torchrun: 2 CPU processes (gloo) take the 1-process run's steps.

The processes are real: ``torchrun --standalone --nproc-per-node 2 -m blurgen.cli ...``. Each
loads half of every batch; DDP averages the gradients and the adversarial logits are gathered.
So from the same state, a step in two processes gives the one-process step's losses and
gradients up to the order of floating-point sums: that is what these tests check, tightly
(EXACT), on the first step of a run and on the first step after a resume. Later steps are only
checked to stay close (CLOSE): the relativistic loss does not change when every logit moves by
the same amount, so the gradients of the discriminator's last bias, and of the hidden biases
whose units are on one side of the LeakyReLU for the whole batch, are 0 in theory; one process
computes exactly 0 there, two processes about 1e-7 of rounding, and Adam, which divides a
gradient by its own size, turns that into a full step of lr on those weights. The runs then
drift apart as chaotically as any two GAN runs with another summation order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.bgan import train_deblur
from blurgen.bgan.config import DeblurConfig
from blurgen.bgan.distributed import Ranks
from blurgen.bgan.vgg import VGG19Features
from blurgen.cli import train as train_cli
from blurgen.cli.main import cli
from blurgen.pipeline import DatasetConfig, make_dataset
from blurgen.torch import PairsDataset

# From the same state, one step: losses and gradient norms to this relative difference, and
# generator weights to WEIGHTS (lr = 1e-3: a step moves a weight by up to 1e-3).
EXACT = 1e-4
WEIGHTS = 1e-6
# Over the steps after that: losses to this relative difference.
CLOSE = 2e-2


# Weights large enough that the discriminator's logits differ from image to image (so the
# batch means the processes must share matter), a checkpoint after every step.
COMMON = ["--vgg-layer", "conv1_2", "--lr", "1e-3", "--warmup", "0", "--init-std", "0.1",
          "--checkpoint-every", "1", "--keep", "9", "--log-every", "1", "-q"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(0)
    for name in ("sharp", "blurry"):
        (folder / name).mkdir()
    paths = []
    for i in range(4):
        image = (rng.random((56, 56, 3)) * 255).astype(np.uint8)
        paths.append(folder / "sharp" / f"{i}.png")
        cv2.imwrite(str(paths[-1]), image)
        cv2.imwrite(str(folder / "blurry" / f"{i}.png"), cv2.blur(image, (7, 1)))
    make_dataset(paths, folder / "pairs.h5", DatasetConfig(patch=32, per_image=4, kernel_size=7))
    torch.manual_seed(0)
    torch.save(VGG19Features("conv5_4").state_dict(), folder / "vgg.pth")
    return folder


def deblur_args(data, run, iters):
    return ["train-deblur", "--data", str(data / "pairs.h5"), "-o", str(run), "--iters",
            str(iters), "--batch", "4", "--patch", "16", "--arch", "resnet", "--channels", "8",
            "--blocks", "1", "--disc-channels", "8", *COMMON, "--vgg-weights",
            str(data / "vgg.pth"), "--val-every", "2",
            "--sample-every", "2", "--workers", "0"]  # fmt: skip


def bgan_args(data, run, iters):
    return ["train-bgan", "--sharp", str(data / "sharp"), "--blurry", str(data / "blurry"),
            "-o", str(run), "--iters", str(iters), "--batch", "4", "--patch", "32",
            "--channels", "8", "--blocks", "1", "--disc-channels", "8", *COMMON,
            "--vgg-weights", str(data / "vgg.pth"), "--pretrain", "1", "--physics", "none",
            "--content-scale", "4"]  # fmt: skip


def torchrun(args, processes=2):
    """Run ``blurgen ARGS`` in ``processes`` processes under torchrun; fail with their output."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", "-m", "blurgen.cli", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def one_process(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def weights(run, step):
    state = torch.load(run / "checkpoints" / f"step_{step:07d}.pt", weights_only=True)
    return state["generator"]


def log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def assert_same_steps(a, b, exact):
    """Runs ``a`` and ``b`` logged the same steps; those in ``exact`` (each the first from a
    state both runs shared) have the same losses and gradient norms to EXACT and the same
    generator after them to WEIGHTS; the others, losses within CLOSE."""
    logs = log(a), log(b)
    assert [sorted(line) for line in logs[0]] == [sorted(line) for line in logs[1]]
    for line_a, line_b in zip(*logs, strict=True):
        step = line_a["step"]
        keys = {"loss_g", "loss_d", "content", "perceptual", "adversarial", "pretrain_l1",
                "val_psnr"} & line_a.keys()  # fmt: skip
        if step in exact and "val_psnr" not in line_a:
            keys |= {"grad_g", "grad_d"} & line_a.keys()
        assert keys
        tolerance = EXACT if step in exact else CLOSE
        for key in keys:
            assert line_b[key] == pytest.approx(line_a[key], rel=tolerance), (step, key)
    for step in exact:
        weights_a, weights_b = weights(a, step), weights(b, step)
        assert max((weights_a[k] - w).abs().max().item() for k, w in weights_b.items()) <= WEIGHTS


def test_two_processes_train_the_deblurrer_as_one(data, tmp_path):
    one_process(deblur_args(data, tmp_path / "one", 4))
    two = tmp_path / "runs" / "two"  # its folders made, as for the README's runs/dbgan
    torchrun(deblur_args(data, two, 4))
    assert_same_steps(tmp_path / "one", two, exact={1})
    # Rank 0 alone writes: one line per step and validation, one sample grid per two steps.
    lines = (two / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4 + 2 and len(list((two / "samples").iterdir())) == 2
    # The tolerance is well below a step's change.
    first, second = weights(two, 1), weights(two, 2)
    assert max((w - second[k]).abs().max().item() for k, w in first.items()) > 100 * WEIGHTS


def test_two_processes_train_on_the_same_pairs_made_on_the_fly(data, tmp_path):
    # Each process reads the preset file and makes its share of every batch itself.
    preset = tmp_path / "small.yaml"
    preset.write_text("kernel_size: 7\nblur: motion\n")

    def args(run):
        files = deblur_args(data, run, 3)
        at = files.index("--data")
        return [*files[:at], "--synthesise", str(data / "sharp"), "--preset", str(preset),
                "--synth-patch", "32", "--per-image", "4", *files[at + 2 :]]  # fmt: skip

    one_process(args(tmp_path / "one"))
    torchrun(args(tmp_path / "two"))
    assert_same_steps(tmp_path / "one", tmp_path / "two", exact={1})


def test_processes_that_see_other_pairs_stop(data, monkeypatch):
    pairs = PairsDataset([data / "pairs.h5"])
    config = DeblurConfig(data=(str(data / "pairs.h5"),))

    def check():
        train_deblur.check_same_pairs(pairs, config, Ranks(0, 2), torch.device("cpu"))

    # Two processes' digests of what they see, as the gathering brings them: alike, or not.
    monkeypatch.setattr(train_deblur, "gather", lambda part, ranks: torch.cat([part, part]))
    check()
    monkeypatch.setattr(train_deblur, "gather", lambda part, ranks: torch.cat([part, 255 - part]))
    with pytest.raises(ValueError, match="the training processes see different pairs"):
        check()


def test_resumed_with_another_number_of_processes(data, tmp_path):
    torchrun(deblur_args(data, tmp_path / "two", 2))
    shutil.copytree(tmp_path / "two", tmp_path / "then_one")
    torchrun([*deblur_args(data, tmp_path / "two", 3), "--resume"])
    one_process([*deblur_args(data, tmp_path / "then_one", 3), "--resume"])
    # Step 3 is the first from the state both resumed.
    assert_same_steps(tmp_path / "two", tmp_path / "then_one", exact={1, 2, 3})


def test_two_processes_train_the_bgan_as_one(data, tmp_path):
    one_process(bgan_args(data, tmp_path / "one", 3))
    torchrun(bgan_args(data, tmp_path / "two", 3))
    # Step 1 pretrains the generator alone; step 2, the first adversarial step, starts from
    # the same discriminator (untouched so far) and a generator within WEIGHTS.
    assert_same_steps(tmp_path / "one", tmp_path / "two", exact={1, 2})


@pytest.mark.parametrize("wrong", ["batch", "option"])
def test_an_error_is_one_line_from_one_process(data, tmp_path, wrong):
    # A run that cannot be set up, and an option click refuses: every process meets them
    # alike, and the first says so. torchrun's report of the failed processes follows, at
    # length, whatever they print.
    args = deblur_args(data, tmp_path / "run", 2)
    if wrong == "batch":
        args[args.index("--batch") + 1] = "3"
        expected = ["Error: the batch (3) must divide among the 2 training processes"]
    else:
        args[args.index("--data") + 1] = str(tmp_path / "missing.h5")
        expected = [
            "Usage: python -m blurgen.cli train-deblur [OPTIONS]",
            f"Error: Invalid value for '--data': File '{tmp_path / 'missing.h5'}' does not exist.",
        ]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", "-m", "blurgen.cli", *args]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith(("Error:", "Usage:"))]
    assert ours == expected, result.stderr


class _Ended(BaseException):
    """torchrun ending a process (SIGTERM), as a test sees it."""


@pytest.mark.parametrize(("local_rank", "ended"), [("0", False), ("1", True), ("1", False)])
def test_only_the_first_process_on_a_machine_reports_what_all_meet(
    data, tmp_path, monkeypatch, local_rank, ended
):
    # torchrun's environment for one of 2 processes, without the others: both errors come
    # before the process joins any group. Another process waits to be ended by torchrun once
    # the first has said it; still running after the wait, it says it too.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    waits = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if ended:
            raise _Ended

    monkeypatch.setattr(train_cli.time, "sleep", wait)
    args = deblur_args(data, tmp_path / "run", 2)
    for wrong, code, message in (([*args, "--lr", "0"], 1, "Error: lr must be positive, got 0.0"),
                                 ([*args, "--arch", "nonet"], 2,
                                  "Error: Invalid value for '--arch'")):  # fmt: skip
        if ended:
            with pytest.raises(_Ended):  # before a word is said
                CliRunner().invoke(cli, wrong)
        else:
            result = CliRunner().invoke(cli, wrong)
            assert result.exit_code == code and message in result.output
    assert waits == ([] if local_rank == "0" else [train_cli.QUIET_EXIT_WAIT_S] * 2)
    assert not (tmp_path / "run").exists()
