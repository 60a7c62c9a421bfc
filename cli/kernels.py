"""``blurgen kernels``: write a bank of random blur kernels, and a picture of them."""

from __future__ import annotations

import time
from pathlib import Path

import click

from blurgen import methods as registry
from blurgen.backend import check_device
from blurgen.kernels.bank import (
    FAMILIES,
    BankConfig,
    generate,
    resumable_count,
    save_preview,
    write_bank,
)
from blurgen.settings import Setting, parsed

from .options import (
    built,
    device_option,
    overwrite_option,
    progress_bar,
    seed_option,
    settings_options,
    user_errors,
    verbosity_option,
    workers_option,
)

MOTION = registry.get("motion")
# The straight lines' settings.
LINE_SETTINGS = (
    Setting("length", "linear: length in px, fixed (L) or drawn (LOW,HIGH) [1 to the longest "
            "that fits].", kind="range"),
    Setting("angle", "linear: angle in degrees counter-clockwise from horizontal, fixed or "
            "LOW,HIGH [0,180].", kind="range"),
)  # fmt: skip

PREVIEW_COUNT = 64


@click.command("kernels")
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Number of kernels.",
)
@click.option(
    "--size",
    type=click.IntRange(min=3),
    default=64,
    show_default=True,
    help="Kernel size K in pixels (K x K).",
)
@click.option(
    "--family",
    type=click.Choice(FAMILIES),
    default="motion",
    show_default=True,
    help="motion: random camera-shake trajectories; linear: straight streaks.",
)
@seed_option
@device_option
@workers_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HDF5 bank to write (schema blurgen-kernels/1).",
)
@click.option(
    "--preview",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"PNG grid of the first {PREVIEW_COUNT} kernels.",
)
@overwrite_option
@settings_options(*MOTION.settings, *LINE_SETTINGS)
@verbosity_option
@user_errors
def kernels_command(
    count,
    size,
    family,
    seed,
    device,
    workers,
    output,
    preview,
    overwrite,
    settings,
    verbosity,
):
    """Generate random blur kernels into an HDF5 bank and/or a preview picture.

    Kernel i depends only on the options, the seed and i, so banks are reproducible and an
    interrupted run resumes where it stopped when run again with the same options. Kernels sum
    to 1 with their centroid on pixel (K//2, K//2), the convolution's anchor.

    \b
    Examples:
      blurgen kernels -n 10000 -o bank.h5 --preview bank.png
      blurgen kernels -n 64 --family linear --length 10,40 --preview lines.png
    """
    if output is None and preview is None:
        raise click.UsageError("nothing to write: give -o/--output, --preview, or both")
    params = _family_params(family, settings)
    config = BankConfig(family=family, n=count, size=size, params=params)
    device = check_device(device)
    if verbosity > 1:
        click.echo(f"config: {config.to_json()}", err=True)
    began = time.perf_counter()
    resumed = 0
    if output is not None:
        resumed = resumable_count(output, config, seed)
        if resumed and verbosity:
            click.echo(f"resuming: {resumed} of {count} kernels are already written", err=True)
        with progress_bar(count, "kernels", verbosity) as advance:
            write_bank(
                output,
                config,
                seed,
                device=device,
                workers=workers,
                overwrite=overwrite,
                progress=advance,
            )
    if preview is not None:
        save_preview(preview, generate(config, seed, 0, min(count, PREVIEW_COUNT), device))
    seconds = time.perf_counter() - began
    if verbosity and output is not None:
        megabytes = output.stat().st_size / 1e6
        made = count - resumed
        click.echo(
            f"wrote {count} {family} kernels of {size}x{size} px (seed {seed}) to {output}: "
            f"{megabytes:.1f} MB in {seconds:.1f} s ({made / seconds:,.0f} kernels/s)",
            err=True,
        )
    if verbosity and preview is not None:
        click.echo(f"wrote a preview of {min(count, PREVIEW_COUNT)} kernels to {preview}", err=True)


def _family_params(family: str, settings: dict) -> dict:
    typed = built(parsed, (*MOTION.settings, *LINE_SETTINGS), settings)
    motion, linear = (
        {s.name: typed[s.name] for s in group if typed[s.name] is not None}
        for group in (MOTION.settings, LINE_SETTINGS)
    )
    chosen, other = (motion, linear) if family == "motion" else (linear, motion)
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise click.UsageError(f"{flags} do(es) not apply to --family {family}")
    return chosen
