"""``blurgen blur``: blur a few images for a quick look, with the kernels used beside them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np

import blurgen
from blurgen.backend import check_device, check_torch_device, to_numpy, xp_for_device
from blurgen.io import Photo, atomic_path, write_png
from blurgen.kernels.bank import kernel_grid, read_bank
from blurgen.sample import (
    DEFAULT_BGAN,
    FIELD_GRID,
    SampleConfig,
    camera_fields,
    draw_samples,
    render_sample,
    sample_rng,
)

from .options import (
    CAMERA_OPTIONS,
    camera_options,
    degradation_options,
    device_option,
    overwrite_option,
    seed_option,
    set_by_user,
    strict_option,
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
    help="Folder for NAME_blurred.png, NAME_kernel.png (with --blur camera, the kernels on a "
    "4 x 4 grid over the image) and blur.json.",
)
@click.option(
    "--blur",
    "method",
    type=click.Choice(["motion", "camera"]),
    default="motion",
    show_default=True,
    help="Random camera-shake kernels, one per image, or 6-DoF camera shake (rotations and "
    "translations of the camera), whose blur varies across the image; --size bounds its "
    "reach.",
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
    metavar="[CHECKPOINT]",
    is_flag=False,
    flag_value=DEFAULT_BGAN,
    help="Blur with a trained BGAN instead of kernels (its noise drawn from the seed): alone, "
    "the one shipped with blurgen; or a checkpoint or generator.pt from train-bgan, or "
    "builtin:NAME.",
)
@camera_options
@seed_option
@device_option
@degradation_options
@overwrite_option
@strict_option
@verbosity_option
@user_errors
def blur_command(
    images, outdir, method, bank, size, bgan, camera, seed, device, degradation,
    overwrite, strict, verbosity,
):  # fmt: skip
    """Blur IMAGES with random camera shake and the forward model; write PNGs to look at.

    Each image is one sample as make-dataset draws it (see `blurgen make-dataset --help`), the
    whole photo instead of a crop, without flips: its random choices come from the seed and a
    fingerprint of the file's bytes, so a run is reproducible, and blur.json records them.
    Unreadable or damaged images are reported by name and skipped (exit status 1), or stop the
    run with --strict; a run that stops (--strict, a full disk, Ctrl-C) removes what it wrote,
    and one that blurs no image writes nothing.

    \b
    Example:
      blurgen blur photo.jpg -o out --shot 0.001,0.004 --read 0.002,0.01 --jpeg 80,95
    """
    device = check_device(device)
    if method == "camera" and (bgan is not None or bank is not None):
        raise click.UsageError("--blur camera draws its own blur: without --bgan or --kernels")
    camera_given = set_by_user(CAMERA_OPTIONS)
    if camera_given and method != "camera":
        verb = "applies" if len(camera_given) == 1 else "apply"
        raise click.UsageError(f"{', '.join(camera_given)} only {verb} to --blur camera")
    if bgan is not None:
        check_torch_device(device)
        method = "bgan"
    xp = xp_for_device(device)
    bank_kernels = read_bank(bank)[0] if bank is not None else None
    if bank_kernels is not None:
        size = bank_kernels.shape[-1]
    config = SampleConfig(kernel_size=size, blur=method, bgan=str(bgan) if bgan else None,
                          flips=False, camera=camera, degradation=degradation)  # fmt: skip
    if not outdir.parent.is_dir():
        raise FileNotFoundError(f"output folder's parent '{outdir.parent}' does not exist")
    created = not outdir.is_dir()
    outdir.mkdir(exist_ok=True)
    stems = [path.stem for path in images]
    if len(set(stems)) != len(stems):
        raise click.UsageError("two inputs have the same file name; blur them separately")
    parts = ("blurred",) if bgan is not None else ("blurred", "kernel")
    targets = [outdir / f"{stem}_{part}.png" for stem in stems for part in parts]
    existing = [str(t) for t in [*targets, outdir / "blur.json"] if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace it")

    learned = None
    if bgan is not None:
        from blurgen.bgan.infer import BganBlur

        learned = BganBlur(bgan, device)
    report, failed, written = [], 0, []
    try:
        for i, path in enumerate(images):
            try:
                photo = Photo.open(path)
            except (OSError, ValueError) as exc:
                if strict:
                    raise ValueError(f"{exc} (stopped: --strict)") from None
                failed += 1
                reason = str(exc)
                click.echo(
                    f"skipped: {reason}" if str(path) in reason else f"skipped {path}: {reason}",
                    err=True,
                )
                continue
            given = None if bank_kernels is None else bank_kernels[i % len(bank_kernels)][None]
            (record,), kernels = draw_samples([sample_rng(seed, photo.fingerprint, 0)],
                                              [photo.size], config, None, device=device,
                                              kernels=given)  # fmt: skip
            kernel = xp.asarray(kernels[0])
            if method == "camera":
                shown = camera_fields([record], photo.size, config)[0].reshape(-1, size, size)
                _, blurred = render_sample(photo.crop(0, 0, *photo.size), to_numpy(kernel), record,
                                           degradation)  # fmt: skip
            elif learned is None:
                # Strip by strip from the photo as decoded: a float copy of a 100-megapixel photo
                # would be 1.2 GB.
                blurred = degradation.render(photo.rgb(), kernel, record.params, dtype=np.uint8)
            else:
                _, blurred = render_sample(xp.asarray(photo.crop(0, 0, *photo.size)), kernel,
                                           record, degradation, learned)  # fmt: skip
            # The decoded photo is released before encoding.
            fingerprint, photo = photo.fingerprint, None
            written.append(write_png(outdir / f"{path.stem}_blurred.png", to_numpy(blurred)))
            del blurred
            entry = {"image": str(path), "fingerprint": fingerprint, "method": record.method,
                     "params": asdict(record.params)}  # fmt: skip
            if method == "camera":
                written.append(write_png(outdir / f"{path.stem}_kernel.png",
                                         kernel_grid(shown, columns=FIELD_GRID)))  # fmt: skip
                entry["camera"] = {"trajectory": record.shake.trajectory.tolist(),
                                   "intrinsics": list(record.shake.intrinsics),
                                   "depth": record.shake.depth}  # fmt: skip
            elif bgan is None:
                written.append(write_png(outdir / f"{path.stem}_kernel.png",
                                         kernel_grid(to_numpy(kernel)[None])))  # fmt: skip
                entry["kernel"] = (f"bank {bank} #{i % len(bank_kernels)}" if bank_kernels
                                   is not None else f"drawn, size {size}")  # fmt: skip
            else:
                entry["bgan"] = str(bgan)
            report.append(entry)
            if verbosity:
                click.echo(f"{path} -> {outdir / (path.stem + '_blurred.png')}", err=True)
        if not report:
            raise ValueError("nothing written: every image was skipped")
        summary = {"blurgen_version": blurgen.__version__, "seed": seed,
                   "config": config.to_dict(), "images": report}  # fmt: skip
        with atomic_path(outdir / "blur.json") as temporary:
            temporary.write_text(json.dumps(summary, indent=2) + "\n")
    except BaseException:
        # Images without the blur.json that records them would only stand in the way of the
        # next run (it refuses to replace them without --overwrite).
        _remove(written, outdir if created else None)
        raise
    if failed:
        raise SystemExit(1)


def _remove(files: list[Path], folder: Path | None) -> None:
    """Remove ``files``, then ``folder`` (the one the run made) if nothing else is in it."""
    for file in files:
        file.unlink(missing_ok=True)
    if folder is not None and not any(folder.iterdir()):
        folder.rmdir()
