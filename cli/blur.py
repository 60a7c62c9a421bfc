"""``blurgen blur``: blur a few images for a quick look, with the kernels used beside them."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

import blurgen
from blurgen.backend import check_device, check_torch_device, to_numpy, xp_for_device
from blurgen.io import atomic_path, read_image, write_png
from blurgen.kernels import MotionModel, motion_kernels_from
from blurgen.kernels.bank import kernel_grid, read_bank

from .options import (
    degradation_options,
    device_option,
    overwrite_option,
    seed_option,
    user_errors,
    verbosity_option,
)


@click.command("blur")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for NAME_blurred.png, NAME_kernel.png and blur.json.",
)
@click.option(
    "--kernels",
    "bank",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take kernels from this bank (image i gets kernel i mod N) instead of "
    "drawing camera-shake kernels.",
)
@click.option(
    "--size",
    type=click.IntRange(min=3),
    default=31,
    show_default=True,
    help="Size of drawn kernels in px.",
)
@click.option(
    "--bgan",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Blur with this trained BGAN (noise vector from the seed) instead of kernels.",
)
@seed_option
@device_option
@degradation_options
@overwrite_option
@verbosity_option
@user_errors
def blur_command(images, outdir, bank, size, bgan, seed, device, degradation, overwrite, verbosity):
    """Blur IMAGES with random camera shake and the forward model; write PNGs to look at.

    Image i uses numpy.random.default_rng([seed, i]) for its kernel (unless --kernels is given)
    and its noise, or for the BGAN's noise vector with --bgan, so a run is reproducible.
    Unreadable images are reported by name and skipped; the exit status is then 1.

    \b
    Example:
      blurgen blur photo.jpg -o out --shot 0.001,0.004 --read 0.002,0.01 --jpeg 80,95
    """
    device = check_device(device)
    if bgan is not None:
        check_torch_device(device)
    xp = xp_for_device(device)
    bank_kernels = read_bank(bank)[0] if bank is not None else None
    if not outdir.parent.is_dir():
        raise FileNotFoundError(f"output folder's parent '{outdir.parent}' does not exist")
    outdir.mkdir(exist_ok=True)
    stems = [path.stem for path in images]
    if len(set(stems)) != len(stems):
        raise click.UsageError("two inputs have the same file name; blur them separately")
    parts = ("blurred",) if bgan is not None else ("blurred", "kernel")
    targets = [outdir / f"{stem}_{part}.png" for stem in stems for part in parts]
    existing = [str(t) for t in [*targets, outdir / "blur.json"] if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace it")

    gan = None
    if bgan is not None:
        from blurgen.bgan.infer import BlurGAN

        gan = BlurGAN.load(bgan, device)
    report, failed = [], 0
    for i, path in enumerate(images):
        rng = np.random.default_rng([seed, i])
        try:
            sharp = read_image(path)
            if gan is not None:
                z = rng.standard_normal(4)
                write_png(
                    outdir / f"{path.stem}_blurred.png", gan.blur_with(sharp[None], z[None])[0]
                )
                report.append({"image": str(path), "bgan": str(bgan), "z": z.tolist()})
                continue
            if bank_kernels is not None:
                kernel = xp.asarray(bank_kernels[i % len(bank_kernels)])
            else:
                kernel = motion_kernels_from([rng], size, MotionModel(), device=device)[0]
            blurred, params = degradation.apply(xp.asarray(sharp), kernel, rng)
        except (OSError, ValueError) as exc:
            failed += 1
            reason = str(exc)
            click.echo(
                f"skipped: {reason}" if str(path) in reason else f"skipped {path}: {reason}",
                err=True,
            )
            continue
        write_png(outdir / f"{path.stem}_blurred.png", to_numpy(blurred))
        write_png(outdir / f"{path.stem}_kernel.png", kernel_grid(to_numpy(kernel)[None]))
        report.append({"image": str(path), "kernel": f"bank {bank} #{i % len(bank_kernels)}"
                       if bank_kernels is not None else f"drawn, size {size}",
                       "params": params.__dict__})  # fmt: skip
        if verbosity:
            click.echo(f"{path} -> {outdir / (path.stem + '_blurred.png')}", err=True)
    summary = {"blurgen_version": blurgen.__version__, "seed": seed,
               "degradation": degradation.to_dict(), "images": report}  # fmt: skip
    with atomic_path(outdir / "blur.json") as temporary:
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
    if failed:
        raise SystemExit(1)
