"""``blurgen train-bgan`` and ``blurgen train-deblur``: the two trainings.

Their options are built from the fields of the configs they fill (``BganConfig``,
``DeblurConfig``): each field's name, default and help are written once, in the dataclass, and
every field can be set from the command line or a ``--config`` file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from types import UnionType
from typing import Any

import click

from blurgen import presets
from blurgen.backend import BackendUnavailable, check_torch_device
from blurgen.bgan.config import BganConfig, DeblurConfig

from .options import (
    config_option,
    progress_bar,
    strict_option,
    torch_device_option,
    user_errors,
    verbosity_option,
)

PATHS = {
    "file": click.Path(exists=True, dir_okay=False),
    "folder": click.Path(exists=True, file_okay=False),
    "any": click.Path(exists=True),
}


def field_option(f: dataclasses.Field, kind: Any) -> Callable[[Callable], Callable]:
    """The click option of one config field: ``--field-name``, its default and help; numbers
    with a ``min`` hint are range-checked, ``choices`` and ``path`` hints set the type, bools
    are ``--x/--no-x`` switches and tuples repeatable options."""
    flag = "--" + f.name.replace("_", "-")
    meta = f.metadata
    required = f.default is dataclasses.MISSING
    default = None if required else f.default
    common = {"help": meta["help"], "show_default": default not in (None, ())}
    if kind is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", f.name, default=default, **common)
    if typing.get_origin(kind) is tuple:
        paths = PATHS.get(meta.get("path"))
        return click.option(flag, f.name, multiple=True, required=required, type=paths,
                            default=default, **common)  # fmt: skip
    if isinstance(kind, UnionType):  # X | None
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if "choices" in meta:
        value_type: Any = click.Choice(meta["choices"])
    elif "path" in meta:
        value_type = PATHS[meta["path"]]
    elif kind is int:
        value_type = click.IntRange(min=meta.get("min"))
    elif kind is float and "min" in meta:
        value_type = click.FloatRange(min=meta["min"])
    else:
        value_type = kind
    return click.option(flag, f.name, type=value_type, default=default, required=required,
                        **common)  # fmt: skip


def config_options(
    config: type, **replaced: Callable[[Callable], Callable]
) -> Callable[[Callable], Callable]:
    """A decorator adding one option per field of the dataclass ``config`` (the required ones
    first, then in field order), or the option given in ``replaced`` under the field's name (for
    fields whose command-line form differs from the value, which the command then converts).
    Fields without help (values resolved from other fields) have no option."""
    hints = typing.get_type_hints(config)
    settable = [f for f in dataclasses.fields(config) if "help" in f.metadata]
    ordered = sorted(settable, key=lambda f: f.default is not dataclasses.MISSING)
    options = [replaced.get(f.name) or field_option(f, hints[f.name]) for f in ordered]

    def apply(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def run_folder_options(command: Callable) -> Callable:
    """``-o/--output`` (the run folder) and ``--resume``."""
    command = click.option(
        "--resume",
        is_flag=True,
        help="Continue the run in the output folder. Settings must be the run's, except --iters "
        "(a new length re-times the learning-rate decay), the --*-every intervals, --keep, "
        "--workers and --compile.",
    )(command)
    return click.option(
        "-o",
        "--output",
        "run",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Run folder: config.json, log.jsonl, checkpoints/, generator.pt, samples/.",
    )(command)


# How long a process that leaves an error to the first on its machine waits for torchrun to
# end it: torchrun ends every process as soon as one exits non-zero, so one that exited at once
# could have the first ended before it says what is wrong. One still running after the wait
# (the first did not meet the error, or the launcher ends no one) says it after all.
QUIET_EXIT_WAIT_S = 30.0


def _said_by_the_first() -> None:
    """Return at once where this process is the first on its machine (it reports the error);
    otherwise after waiting QUIET_EXIT_WAIT_S for torchrun to end it."""
    from blurgen.bgan.distributed import first_on_machine

    if not first_on_machine():
        time.sleep(QUIET_EXIT_WAIT_S)


class TrainCommand(click.Command):
    """A training command. Under torchrun every process reads the same command line: where it
    is wrong, the first process on each machine says so, and the others exit without a word."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:  # fmt: skip
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException:
            _said_by_the_first()
            raise


@contextlib.contextmanager
def set_up_once() -> Iterator[None]:
    """Setting up a run: under torchrun, where it fails on what a user can fix, the first
    process on each machine says why and the others exit with status 1 without a word. Every
    process there checks the same settings against the same files (a rank's own failures,
    of its device or the process group, are other errors, which every process reports)."""
    try:
        yield
    except (ValueError, OSError, BackendUnavailable):
        _said_by_the_first()
        raise


physics_option = click.option(
    "--physics",
    type=click.Choice([*presets.names(), presets.NONE]),
    default="camera-shake",
    show_default=True,
    help="make-dataset preset whose kernels and degradation --pretrain imitates.",
)


def train(trainer: Any, run: Path, verbosity: int) -> tuple[dict, int]:
    """Run ``trainer`` to its end under a progress bar, then leave the process group if under
    torchrun. Returns the last step's losses, and the verbosity left for the caller's report
    (0 in all but the main process)."""
    from blurgen.bgan.distributed import leave

    verbosity = verbosity if trainer.ranks.main else 0
    try:
        with progress_bar(trainer.config.iters - trainer.step, "steps", verbosity) as advance:
            last = trainer.train(progress=advance)
    finally:
        leave()
    if verbosity and not last:
        click.echo(f"nothing to do: the run in {run} is at step {trainer.step}", err=True)
    return last, verbosity


@click.command("train-bgan", cls=TrainCommand)
@config_option
@config_options(BganConfig, physics=physics_option)
@run_folder_options
@torch_device_option
@strict_option
@verbosity_option
@user_errors
def train_bgan_command(run, resume, device, strict, verbosity, **settings):
    """Train the blur generator (BGAN) of "Deblurring by Realistic Blurring".

    The generator takes a sharp image and random noise (per-pixel maps by default, --noise
    vector for the paper's 4-vector) and learns to blur like the camera of the blurry photos;
    the losses are a VGG-19 perceptual loss to the sharp input and a relativistic-average
    least-squares adversarial loss against the real blurry photos. --arch kernels replaces the
    paper's ResNet by a network that turns each --cell's noise into a blur kernel and blurs the
    image by them, blended between cells: it can only blur, keeps brightness and colour, and
    its kernels can be looked at.
    Checkpoints are written every --checkpoint-every steps and on Ctrl-C. Photos that cannot be
    read (damaged, truncated) or are smaller than a patch are skipped with a warning, or stop the
    run with --strict. Under torchrun it trains in DDP (see train-deblur).
    """
    from blurgen.bgan.train import BganTrainer

    physics = settings.pop("physics")
    with set_up_once():
        config = BganConfig(
            physics=presets.load(physics).to_dict() if settings["pretrain"] else None, **settings
        )
        trainer = BganTrainer(config, run, device=check_torch_device(device), resume=resume,
                              strict=strict)  # fmt: skip
    last, verbosity = train(trainer, run, verbosity)
    if verbosity and last:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "step")
        click.echo(f"step {last['step']}: {losses}; checkpoint in {run}/checkpoints", err=True)


@click.command("train-deblur", cls=TrainCommand)
@config_option
@config_options(DeblurConfig)
@run_folder_options
@torch_device_option
@verbosity_option
@user_errors
def train_deblur_command(run, resume, device, verbosity, **settings):
    """Train the deblurring network (DBGAN) on pairs files from make-dataset, or on pairs made
    on the fly from photos.

    --synthesise PHOTOS trains on the pairs make-dataset would write from PHOTOS with --preset
    (a shipped preset, none, or a YAML file of make-dataset settings, such as `blurgen
    calibrate` writes), --per-image, --synth-patch and --seed, made in the --workers processes
    as they are needed; nothing is written. The preset is read when the run starts and its
    settings kept in config.json (synthesis): --resume goes on with them. --val-split holds out
    whole photos, as for files.

    The generator is the published DBGAN (--arch rrdb) or a lighter residual network (--arch
    resnet); the losses are a pixel loss, a VGG-19 perceptual loss and a relativistic
    adversarial loss. Batches are loaded ahead by --workers processes. Validation PSNR and
    SSIM are logged every --val-every steps and the best checkpoint kept as best.pt; with
    --val-split 0 and no --val the run trains on all its pairs without validation, and its
    checkpoint is latest.pt.

    Under torchrun it trains in several processes with DistributedDataParallel (gloo on the
    CPU, nccl with --device cuda, a GPU each): --batch is the batch of all of them together,
    each loads its share, and rank 0 alone logs, validates and saves. A run may be resumed
    with another number of processes.

    \b
    Example, 4 GPUs:
      torchrun --nproc-per-node 4 -m blurgen.cli train-deblur --data pairs.h5 \\
        -o runs/dbgan --device cuda --batch 32
    Example, pairs made on the fly from a folder of photos, by 8 processes:
      blurgen train-deblur --synthesise photos/ --preset camera-shake --per-image 16 \\
        --synth-patch 256 -o runs/dbgan --device cuda --workers 8
    """
    from blurgen.bgan.train_deblur import DeblurTrainer, recorded_synthesis

    with set_up_once():
        if resume and settings["synthesise"]:
            settings["synthesis"] = recorded_synthesis(run, settings)
        config = DeblurConfig(**settings)
        trainer = DeblurTrainer(config, run, device=check_torch_device(device), resume=resume)
    _, verbosity = train(trainer, run, verbosity)
    if verbosity and trainer.val_data is None:
        click.echo(f"no validation (--val-split 0); {run}/checkpoints/latest.pt", err=True)
    elif verbosity:
        click.echo(
            f"best validation PSNR {trainer.best_psnr:.2f} dB; {run}/checkpoints/best.pt", err=True
        )
