"""``blurgen deblur`` and ``blurgen evaluate``: apply and score a deblurring checkpoint."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click
import numpy as np

from blurgen.backend import check_torch_device
from blurgen.color import as_uint
from blurgen.io import atomic_path, load_image, read_image, write_png
from blurgen.pipeline import IMAGE_SUFFIXES, expand_sources

from .options import (
    overwrite_option,
    strict_option,
    torch_device_option,
    user_errors,
    verbosity_option,
)

checkpoint_option = click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Deblurring (DBGAN) checkpoint.",
)
tile_option = click.option(
    "--tile",
    type=click.IntRange(min=32),
    default=512,
    show_default=True,
    help="Tile side in px: memory stays bounded whatever the image size.",
)


@click.command("deblur")
@checkpoint_option
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the deblurred PNGs (same names, size and bit depth).",
)
@tile_option
@torch_device_option
@overwrite_option
@strict_option
@verbosity_option
@user_errors
def deblur_command(checkpoint, images, outdir, tile, device, overwrite, strict, verbosity):
    """Deblur IMAGES (files, or folders searched for images) of any size, in overlapping tiles.

    Each output is OUTDIR/NAME.png; inputs that share a name but not a suffix (x.png and x.jpg)
    keep theirs (x.png.png, x.jpg.png). Unreadable or damaged images are reported by name and
    skipped (exit status 1), or stop the run with --strict.
    """
    paths = expand_sources(images)
    if not paths:
        raise click.UsageError("no images found in the given inputs")
    targets = output_names(paths, outdir)
    model = _model(checkpoint, device, tile)
    if not outdir.parent.is_dir():
        raise FileNotFoundError(f"output folder's parent '{outdir.parent}' does not exist")
    outdir.mkdir(exist_ok=True)
    failed = 0
    for path, target in zip(paths, targets, strict=True):
        if target.exists() and not overwrite:
            raise FileExistsError(f"'{target}' already exists; pass --overwrite to replace it")
        try:
            image, bits = load_image(path)
        except (OSError, ValueError) as exc:
            if strict:
                raise ValueError(f"{exc} (stopped: --strict)") from None
            failed += 1
            click.echo(f"skipped: {exc}", err=True)
            continue
        write_png(target, as_written(model.deblur(image), bits))
        if verbosity:
            click.echo(f"{path} -> {target}", err=True)
    if failed:
        raise SystemExit(1)


def as_written(image: np.ndarray, input_bits: int) -> np.ndarray:
    """A deblurred image as ``blurgen deblur`` writes it (and ``evaluate`` scores it).

    Args:
        image: (H, W, 3) float, nominally in [0, 1]; values outside are clipped.
        input_bits: bits per channel of the image that was deblurred (8, 16, or 32 for float
            files).

    Returns:
        (H, W, 3) uint16 for inputs of more than 8 bits, else uint8, rounded to nearest.
    """
    return as_uint(image, 16 if input_bits > 8 else 8)


def output_names(paths: list[Path], outdir: Path) -> list[Path]:
    """OUTDIR/STEM.png per input; NAME.png where two inputs share a stem.

    Raises:
        click.UsageError: two inputs have the same name (in different folders).
    """
    stems = Counter(path.stem for path in paths)
    names = [f"{p.stem if stems[p.stem] == 1 else p.name}.png" for p in paths]
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise click.UsageError(f"several inputs would be written to '{outdir / repeated[0]}'; "
                               "deblur them separately")  # fmt: skip
    return [outdir / name for name in names]


@click.command("evaluate")
@checkpoint_option
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A pairs file from make-dataset.",
)
@click.option(
    "--pairs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder in the GoPro layout: blur/ and sharp/ with matching names.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the per-image scores and means as JSON here.",
)
@click.option(
    "--y-channel",
    "luma",
    is_flag=True,
    help="Score the Y channel of BT.601 YCbCr (as MATLAB's rgb2ycbcr and BasicSR's "
    "test_y_channel compute it) instead of RGB, as many published tables do.",
)
@tile_option
@torch_device_option
@strict_option
@user_errors
def evaluate_command(checkpoint, data, pairs, json_path, luma, tile, device, strict):
    """PSNR and SSIM of the blurred input and of the deblurred output, per image and mean.

    The output is scored as deblur writes it: rounded to 8 bits, or to 16 for inputs of more
    than 8 bits (pairs files hold 8-bit images). PSNR is over all pixels and channels. SSIM is
    Wang et al.'s per RGB channel, averaged, with an 11 px Gaussian window (sigma 1.5) where
    it fits inside the image: scikit-image's structural_similarity with gaussian_weights=True,
    use_sample_covariance=False, data_range=1. torchmetrics' SSIM (from 1.4.2) also scores
    reflect-padded borders; BasicSR's crops borders and can score the Y channel, as
    --y-channel does. Each line and JSON record says what was scored.

    With --pairs, the images of blur/ (by suffix, as make-dataset lists them; other files are
    ignored) are matched by name with sharp/. Pairs that cannot be read are reported by name
    and skipped (the scores of the others are still printed and written, the JSON lists the
    skipped ones, and the exit status is 1), or stop the run with --strict.
    """
    from blurgen.metrics import psnr, ssim, y_channel

    if (data is None) == (pairs is None):
        raise click.UsageError("give exactly one of --data and --pairs")
    model = _model(checkpoint, device, tile)
    channels, view = ("Y channel (BT.601)", y_channel) if luma else ("RGB", np.asarray)
    rows, skipped = [], []
    for name, blurred, sharp, bits in _pairs(data, pairs, strict, skipped):
        output = as_written(model.deblur(blurred), bits)
        scored = f"{8 * output.dtype.itemsize}-bit output, {channels}"
        blurred, output, sharp = view(blurred), view(output), view(sharp)
        rows.append(
            {
                "name": name,
                "scored": scored,
                "psnr_input": psnr(blurred, sharp),
                "ssim_input": ssim(blurred, sharp),
                "psnr_output": psnr(output, sharp),
                "ssim_output": ssim(output, sharp),
            }
        )
    if not rows:
        raise ValueError("no pairs to evaluate" + (" (all were skipped)" if skipped else ""))
    keys = ("psnr_input", "ssim_input", "psnr_output", "ssim_output")
    means = {
        "scored": "; ".join(sorted({row["scored"] for row in rows})),
        **{key: float(np.mean([row[key] for row in rows])) for key in keys},
    }
    click.echo(f"{'pair':24s} {'PSNR in':>8s} {'SSIM in':>8s} {'PSNR out':>9s} {'SSIM out':>9s}"
               "  scored")  # fmt: skip
    for row in [*rows, {"name": "mean", **means}]:
        click.echo(
            f"{row['name'][:24]:24s} {row['psnr_input']:8.2f} {row['ssim_input']:8.4f} "
            f"{row['psnr_output']:9.2f} {row['ssim_output']:9.4f}  {row['scored']}"
        )
    if json_path is not None:
        report = {"pairs": rows, "mean": means, "skipped": skipped}
        with atomic_path(json_path) as temporary:
            temporary.write_text(json.dumps(report, indent=2) + "\n")
    if skipped:
        click.echo(f"{len(skipped)} pair(s) skipped; the mean is over the other {len(rows)}",
                   err=True)  # fmt: skip
        raise SystemExit(1)


def _model(checkpoint: Path, device: str, tile: int):
    """The checkpoint's deblurrer, tiled as :class:`~blurgen.bgan.infer.Deblurrer` does by
    default."""
    from blurgen.bgan.infer import Deblurrer

    return Deblurrer.load(checkpoint, check_torch_device(device), tile=tile)


def _pairs(data: Path | None, folder: Path | None, strict: bool, skipped: list[dict]):
    """(name, blurred, sharp, bits) from a pairs file or a GoPro-layout folder: the images as
    stored (uint8) or read (float32 in [0, 1]), and the blurred image's bits per channel;
    pairs that cannot be read go to ``skipped`` as ``{"name", "reason"}``."""
    if data is not None:
        from blurgen.h5 import open_pairs

        with open_pairs(data) as f:
            bits = 8 * f["blurred"].dtype.itemsize
            for i in range(len(f["sharp"])):
                yield f"{i:06d}", f["blurred"][i], f["sharp"][i], bits
        return
    blur_dir, sharp_dir = folder / "blur", folder / "sharp"
    if not blur_dir.is_dir() or not sharp_dir.is_dir():
        raise FileNotFoundError(f"'{folder}' needs blur/ and sharp/ folders (the GoPro layout)")
    for path in sorted(p for p in blur_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            counterpart = sharp_dir / path.name
            if not counterpart.is_file():
                raise FileNotFoundError(f"'{path}' has no sharp counterpart '{counterpart}'")
            (blurred, bits), sharp = load_image(path), read_image(counterpart)
        except (OSError, ValueError) as exc:
            if strict:
                raise ValueError(f"{exc} (stopped: --strict)") from None
            click.echo(f"skipped: {exc}", err=True)
            skipped.append({"name": path.name, "reason": str(exc)})
            continue
        yield path.name, blurred, sharp, bits
