"""``blurgen train-bgan``: learn realistic blur from unpaired sharp and blurry photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from blurgen.backend import check_torch_device

from .options import (
    PRESET_NAMES,
    progress_bar,
    seed_option,
    strict_option,
    torch_device_option,
    user_errors,
    verbosity_option,
)


def stacked(*options: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """One decorator applying click ``options`` as if stacked in this order above a command."""

    def apply(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


# The perceptual loss's network.
vgg_options = stacked(
    click.option(
        "--vgg-layer",
        default="conv3_3",
        show_default=True,
        help="VGG-19 layer of the perceptual loss.",
    ),
    click.option(
        "--vgg-weights",
        type=click.Path(exists=True, dir_okay=False),
        help="torchvision vgg19 weights file; without it torch.hub downloads and caches them.",
    ),
)

# A run folder's checkpoints.
run_options = stacked(
    click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000, show_default=True),
    click.option(
        "--keep",
        type=click.IntRange(min=1),
        default=3,
        show_default=True,
        help="Step checkpoints kept besides latest.pt (and best.pt): the newest N.",
    ),
    click.option(
        "--resume",
        is_flag=True,
        help="Continue the run in the output folder. Options must be the run's, except --iters "
        "(a new length re-times the learning-rate decay) and the --*-every intervals.",
    ),
)

# The learning-rate schedule both trainers share.
lr_options = stacked(
    click.option(
        "--lr",
        type=float,
        default=1e-4,
        show_default=True,
        help="Adam learning rate; decays linearly to 0 over the second half.",
    ),
    click.option(
        "--warmup",
        type=click.IntRange(min=0),
        default=200,
        show_default=True,
        help="Steps over which the learning rate rises linearly to --lr; it keeps a fresh "
        "network's last layers from going silent at high rates (0: none).",
    ),
)

# Training precision, on CUDA and on the CPU.
bf16_options = stacked(
    click.option(
        "--bf16/--no-bf16",
        default=True,
        show_default=True,
        help="bf16 autocast on CUDA; --no-bf16 trains in float32 there.",
    ),
    click.option(
        "--cpu-bf16",
        is_flag=True,
        help="bf16 autocast on the CPU too: about 1.5-2x as fast where the CPU has AVX-512 BF16 "
        "or AMX (slower where it has not); the weights differ slightly from float32's.",
    ),
)


@click.command("train-bgan")
@click.option(
    "--sharp",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Folder (or list) of sharp photos.",
)
@click.option(
    "--blurry",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Folder (or list) of real blurry photos; need not match the sharp ones.",
)
@click.option(
    "-o",
    "--output",
    "run",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: config, log.jsonl, checkpoints/, samples/.",
)
@click.option("--iters", type=click.IntRange(min=1), default=10000, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--patch", type=click.IntRange(min=32), default=128, show_default=True)
@lr_options
@click.option("--perceptual-weight", type=float, default=1.0, show_default=True)
@click.option("--adversarial-weight", type=float, default=0.005, show_default=True)
@click.option(
    "--content-weight",
    type=float,
    default=0.0,
    show_default=True,
    help="Weight of an MSE to the sharp input that holds colour and brightness (0 in the paper).",
)
@click.option(
    "--content-scale",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="The content MSE compares means over squares of this many px, what blur preserves "
    "(1: pixels, which fights the blur).",
)
@click.option(
    "--noise",
    type=click.Choice(["map", "vector"]),
    default="map",
    show_default=True,
    help="The generator's noise: per-pixel maps, also injected into every residual block (the "
    "blur can vary across the image), or the paper's 4-vector repeated over the image.",
)
@click.option(
    "--pretrain",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Steps, counted in --iters, in which the generator first learns to reproduce "
    "blurgen's own blur (--physics) of the sharp photos; the adversarial steps then move it "
    "toward the real blurry photos.",
)
@click.option(
    "--physics",
    type=click.Choice([*PRESET_NAMES, "none"]),
    default="camera-shake",
    show_default=True,
    help="make-dataset preset whose kernels and degradation --pretrain imitates.",
)
@click.option(
    "--init",
    metavar="CHECKPOINT",
    help="Start the generator from these weights (a checkpoint, generator.pt, or "
    "builtin:lai2016 to adapt the shipped one to your photos); same network shape.",
)
@click.option(
    "--channels",
    type=click.IntRange(min=4),
    default=64,
    show_default=True,
    help="Generator feature channels (64 in the paper).",
)
@click.option(
    "--scale",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="The generator works on SCALE x SCALE cells of pixels stacked as channels, so it "
    "reaches SCALE times as far (blur paths are tens of px) for the same work; 1: the paper's.",
)
@click.option(
    "--blocks",
    type=click.IntRange(min=1),
    default=9,
    show_default=True,
    help="Generator residual blocks (9 in the paper).",
)
@click.option("--disc-channels", type=click.IntRange(min=4), default=64, show_default=True,
              help="Discriminator channels of the first stage.")  # fmt: skip
@vgg_options
@click.option("--sample-every", type=click.IntRange(min=1), default=500, show_default=True)
@run_options
@seed_option
@torch_device_option
@bf16_options
@strict_option
@verbosity_option
@user_errors
def train_bgan_command(
    sharp,
    blurry,
    run,
    iters,
    batch,
    patch,
    lr,
    warmup,
    perceptual_weight,
    adversarial_weight,
    content_weight,
    content_scale,
    noise,
    pretrain,
    physics,
    init,
    channels,
    scale,
    blocks,
    disc_channels,
    vgg_layer,
    vgg_weights,
    checkpoint_every,
    keep,
    sample_every,
    resume,
    seed,
    device,
    bf16,
    cpu_bf16,
    strict,
    verbosity,
):
    """Train the blur generator (BGAN) of "Deblurring by Realistic Blurring".

    The generator takes a sharp image and random noise (per-pixel maps by default, --noise
    vector for the paper's 4-vector) and learns to blur like the camera of the blurry photos;
    the losses are a VGG-19 perceptual loss to the sharp input and a relativistic-average
    least-squares adversarial loss against the real blurry photos.
    Checkpoints are written every --checkpoint-every steps and on Ctrl-C. Photos that cannot be
    read (damaged, truncated) or are smaller than a patch are skipped with a warning, or stop the
    run with --strict.
    """
    from blurgen.bgan.train import BganConfig, BganTrainer

    from .dataset import preset_config

    config = BganConfig(
        sharp=str(sharp),
        blurry=str(blurry),
        iters=iters,
        batch=batch,
        patch=patch,
        lr=lr,
        warmup=warmup,
        seed=seed,
        perceptual_weight=perceptual_weight,
        adversarial_weight=adversarial_weight,
        content_weight=content_weight,
        content_scale=content_scale,
        noise=noise,
        pretrain=pretrain,
        physics=preset_config(physics).to_dict() if pretrain else None,
        init=init,
        channels=channels,
        scale=scale,
        blocks=blocks,
        disc_channels=disc_channels,
        vgg_layer=vgg_layer,
        vgg_weights=vgg_weights,
        checkpoint_every=checkpoint_every,
        keep=keep,
        sample_every=sample_every,
        bf16=bf16,
        cpu_bf16=cpu_bf16,
    )
    trainer = BganTrainer(config, run, device=check_torch_device(device), resume=resume,
                          strict=strict)  # fmt: skip
    remaining = config.iters - trainer.step
    with progress_bar(remaining, "steps", verbosity) as advance:
        last = trainer.train(progress=advance)
    if verbosity and last:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "step")
        click.echo(f"step {last['step']}: {losses}; checkpoint in {run}/checkpoints", err=True)
    elif verbosity:
        click.echo(f"nothing to do: the run in {run} is at step {trainer.step}", err=True)


@click.command("train-deblur")
@click.option(
    "--data",
    "data",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pairs file from make-dataset (repeat for more).",
)
@click.option(
    "--val",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pairs file to validate on (repeatable); default: hold out --val-split.",
)
@click.option("--val-split", type=float, default=0.05, show_default=True)
@click.option(
    "-o",
    "--output",
    "run",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: config, log.jsonl, checkpoints/ (best.pt by validation PSNR), samples/.",
)
@click.option("--iters", type=click.IntRange(min=1), default=20000, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--patch", type=click.IntRange(min=16), default=128, show_default=True)
@lr_options
@click.option(
    "--transpose/--no-transpose",
    default=True,
    show_default=True,
    help="Transpose training crops at random: with the random flips, each pair is seen in all "
    "8 orientations (its 90° rotations and their mirrors).",
)
@click.option("--no-gan", is_flag=True, help="Train on content + perceptual losses only.")
@click.option(
    "--content-loss",
    type=click.Choice(("mse", "l1")),
    default="mse",
    show_default=True,
    help="Pixel loss to the sharp image: mse (the paper's) or l1, which leaves flat areas "
    "alone more readily.",
)
@click.option("--content-weight", type=float, default=1.0, show_default=True)
@click.option("--perceptual-weight", type=float, default=1.0, show_default=True)
@click.option("--adversarial-weight", type=float, default=0.01, show_default=True)
@click.option("--channels", type=click.IntRange(min=4), default=64, show_default=True)
@click.option("--blocks", type=click.IntRange(min=1), default=16, show_default=True)
@vgg_options
@click.option("--val-every", type=click.IntRange(min=1), default=500, show_default=True)
@run_options
@seed_option
@torch_device_option
@bf16_options
@verbosity_option
@user_errors
def train_deblur_command(
    data,
    val,
    val_split,
    run,
    iters,
    batch,
    patch,
    lr,
    warmup,
    transpose,
    no_gan,
    content_loss,
    content_weight,
    perceptual_weight,
    adversarial_weight,
    channels,
    blocks,
    vgg_layer,
    vgg_weights,
    val_every,
    checkpoint_every,
    keep,
    resume,
    seed,
    device,
    bf16,
    cpu_bf16,
    verbosity,
):
    """Train the deblurring network (DBGAN) on pairs files from make-dataset."""
    from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer

    config = DeblurConfig(
        data=tuple(map(str, data)),
        val=tuple(map(str, val)),
        val_split=val_split,
        iters=iters,
        batch=batch,
        patch=patch,
        lr=lr,
        warmup=warmup,
        seed=seed,
        transpose=transpose,
        gan=not no_gan,
        content_loss=content_loss,
        content_weight=content_weight,
        perceptual_weight=perceptual_weight,
        adversarial_weight=adversarial_weight,
        channels=channels,
        blocks=blocks,
        vgg_layer=vgg_layer,
        vgg_weights=vgg_weights,
        val_every=val_every,
        checkpoint_every=checkpoint_every,
        keep=keep,
        bf16=bf16,
        cpu_bf16=cpu_bf16,
    )
    trainer = DeblurTrainer(config, run, device=check_torch_device(device), resume=resume)
    with progress_bar(config.iters - trainer.step, "steps", verbosity) as advance:
        trainer.train(progress=advance)
    if verbosity:
        click.echo(
            f"best validation PSNR {trainer.best_psnr:.2f} dB; {run}/checkpoints/best.pt", err=True
        )
