"""``blurgen blur``: blur a few images for a quick look, with the kernels used beside them."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

import blurgen
from blurgen import methods as registry
from blurgen.backend import check_device, to_numpy, xp_for_device
from blurgen.degradation import DEGRADATION_SETTINGS, Degradation
from blurgen.io import Photo, atomic_path, write_png
from blurgen.kernels.bank import kernel_grid, read_bank
from blurgen.methods.learned import DEFAULT_BGAN
from blurgen.pipeline import DATASET_SETTINGS
from blurgen.presets import NONE, parse_mix, sections
from blurgen.sample import SampleConfig, Synthesiser, sample_rng
from blurgen.settings import parsed

from .options import (
    blur_or_mix,
    built,
    config_option,
    device_option,
    learned_blur,
    method_settings,
    overwrite_option,
    preset_choice,
    refuse_unused,
    seed_option,
    setting_layer,
    settings_options,
    strict_option,
    user_errors,
    verbosity_option,
)

# make-dataset's --mix: a preset's mix of methods draws each image's.
MIX = next(setting for setting in DATASET_SETTINGS if setting.name == "mix")


@click.command("blur")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for NAME_blurred.png, NAME_kernel.png (the kernel, or where the blur varies "
    "across the image, its kernels on a grid over the image) and blur.json.",
)
@click.option(
    "--blur",
    "method",
    type=click.Choice(registry.drawn_names()),
    default=registry.names()[0],
    show_default=True,
    help="The blur: "
    + "; ".join(f"{m.name}: {m.help}" for m in registry.methods() if m.source == "photo")
    + ". --size bounds its reach. A method's setting named as the method (--bgan) chooses it.",
)
@click.option(
    "--kernels",
    "bank",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take kernels from this bank (image i gets kernel i mod N) instead of "
    "drawing them (methods that draw kernels).",
)
@click.option(
    "--size",
    "--kernel-size",
    "size",
    type=click.IntRange(min=3),
    default=31,
    show_default=True,
    help="Size of drawn kernels in px.",
)
@settings_options(MIX, *method_settings(), *DEGRADATION_SETTINGS,
                  bgan={"is_flag": False, "flag_value": DEFAULT_BGAN})  # fmt: skip
@preset_choice(NONE)
@config_option
@seed_option
@device_option
@overwrite_option
@strict_option
@verbosity_option
@user_errors
def blur_command(
    images, outdir, method, bank, size, settings, seed, device, overwrite, strict, verbosity,
):  # fmt: skip
    """Blur IMAGES with random camera shake and the forward model; write PNGs to look at.

    Each image is one sample as make-dataset draws it (see `blurgen make-dataset --help`), the
    whole photo instead of a crop, without flips: its random choices come from the seed and a
    fingerprint of the file's bytes, so a run is reproducible, and blur.json records them. The
    settings start from --preset (none: the plain defaults shown below; camera-shake, or a
    camera such as phone or realblur, to see what make-dataset's pairs of it look like), then
    --config, then flags.
    Unreadable or damaged images are reported by name and skipped (exit status 1), or stop the
    run with --strict; a run that stops (--strict, a full disk, Ctrl-C) removes what it wrote,
    and one that blurs no image writes nothing.

    \b
    Example:
      blurgen blur photo.jpg -o out --shot 0.001,0.004 --read 0.002,0.01 --jpeg 80,95
    """
    device = check_device(device)
    mix, level = blur_or_mix("method", settings.pop("mix"))
    mix = built(parse_mix, mix)
    if not setting_layer("method") and not mix:
        # A method's setting named as the method chooses it (--bgan CHECKPOINT).
        method = next((m.name for m in registry.methods() if settings.get(m.name) is not None),
                      method)  # fmt: skip
    methods = [m for m, weight in mix if weight > 0] if mix else [method]
    refuse_unused(methods, level, "--blur {name} or a --mix that draws it")
    own = [m for m in methods if not registry.get(m).draws_kernel]
    if bank is not None and own:
        raise click.UsageError(f"--blur {own[0]} draws its own blur: without --kernels")
    bank_kernels = read_bank(bank)[0] if bank is not None else None
    if bank_kernels is not None:
        size = bank_kernels.shape[-1]
    typed = built(parsed, (*method_settings(), *DEGRADATION_SETTINGS), settings)
    config = built(lambda: SampleConfig(kernel_size=size, blur=method, mix=mix, flips=False,
                                        **sections(typed),
                                        degradation=Degradation.from_settings(typed)))  # fmt: skip
    if not outdir.parent.is_dir():
        raise FileNotFoundError(f"output folder's parent '{outdir.parent}' does not exist")
    stems = [path.stem for path in images]
    if len(set(stems)) != len(stems):
        raise click.UsageError("two inputs have the same file name; blur them separately")
    shows = any(registry.get(m).has_kernel for m in methods)
    parts = ("blurred", "kernel") if shows else ("blurred",)
    targets = [outdir / f"{stem}_{part}.png" for stem in stems for part in parts]
    existing = [str(t) for t in [*targets, outdir / "blur.json"] if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace it")
    created = not outdir.is_dir()
    outdir.mkdir(exist_ok=True)

    synthesiser = Synthesiser(config, learned_blur(config, device), device)
    xp = xp_for_device(device)
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
            (record,), kernels = synthesiser.draw([sample_rng(seed, photo.fingerprint, 0)],
                                                  [photo.size], None, given)  # fmt: skip
            kernel = xp.asarray(kernels[0])
            chosen = registry.get(record.method)
            # The photo as decoded, rendered strip by strip where the method can: a float copy
            # of a 100-megapixel photo would be 1.2 GB.
            blurred = synthesiser.render(photo.rgb(), kernel, record, dtype=np.uint8)[1]
            shown = chosen.shown_kernels(record, to_numpy(kernel), config, photo.size)
            # The decoded photo is released before encoding.
            fingerprint, photo = photo.fingerprint, None
            written.append(write_png(outdir / f"{path.stem}_blurred.png", to_numpy(blurred)))
            del blurred
            entry = {"image": str(path), "fingerprint": fingerprint, "method": record.method,
                     "params": record.params.to_dict(),
                     **chosen.report(record, config)}  # fmt: skip
            if shown is not None:
                kernels_shown, columns = shown
                written.append(write_png(outdir / f"{path.stem}_kernel.png",
                                         kernel_grid(kernels_shown, columns=columns)))  # fmt: skip
            if chosen.draws_kernel:
                entry["kernel"] = (f"bank {bank} #{i % len(bank_kernels)}" if bank_kernels
                                   is not None else f"drawn, size {size}")  # fmt: skip
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
