"""``blurgen realism``: how close a set of blurred images is to real blurry photos."""

from __future__ import annotations

import json
from pathlib import Path

import click

import blurgen
from blurgen.io import atomic_path, write_png

from .options import progress_bar, real_option, strict_option, user_errors, verbosity_option


@click.command("realism")
@click.argument("blurred", nargs=-1, required=True, type=click.Path(path_type=Path))
@real_option
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the distances, medians and per-image statistics here.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the two distributions of each statistic side by side (PNG).",
)
@strict_option
@verbosity_option
@user_errors
def realism_command(blurred, real, json_path, plot, strict, verbosity):
    """How close BLURRED images look to the real blurry photos of --real.

    BLURRED are image files, folders, .txt lists, or pairs files from make-dataset (their
    blurred images). Each image is measured at its native resolution (photos over 2048 px on
    their central 2048x2048 crop): spectral fall-off, directionality of the gradient energy,
    blur extent (px, from the autocorrelation of the gradients), fine detail left, and noise
    level (8-bit levels). Per statistic, the distance is the 1-Wasserstein distance between
    the two sets over the real set's standard deviation; the overall distance is their mean.
    For scale: two halves of one set of real photos are typically 0.3-0.4 apart, sharp photos
    several units from blurry ones. Unreadable images are skipped with the reason (exit
    status 1), or stop the run with --strict; each side needs at least 5 usable images.

    \b
    Example:
      blurgen realism pairs.h5 --real real_photos/ --json realism.json --plot realism.png
    """
    from blurgen.realism import (
        STATISTICS,
        UNITS,
        compare,
        count_images,
        measure,
        plot_distributions,
    )

    sides = {}
    for label, items in (("blurred", blurred), ("real", real)):
        with progress_bar(count_images(items), f"measuring {label}", verbosity) as advance:
            sides[label] = measure(items, strict=strict, progress=advance)
        for skipped in sides[label][1]:
            click.echo(f"skipped {skipped['name']}: {skipped['reason']}", err=True)
    (ours, ours_skipped), (theirs, theirs_skipped) = sides["blurred"], sides["real"]
    result = compare(ours, theirs)
    if verbosity:
        click.echo(f"{'statistic':16s} {'unit':>14s} {'blurred':>9s} {'real':>9s} {'distance':>9s}")
        for name in STATISTICS:
            mine, real_median = result.medians[name]
            click.echo(f"{name:16s} {UNITS[name]:>14s} {mine:9.3f} {real_median:9.3f} "
                       f"{result.distances[name]:9.3f}")  # fmt: skip
        click.echo(f"{'overall':16s} {'':>14s} {'':>9s} {'':>9s} {result.overall:9.3f}")
        click.echo(f"({result.counts[0]} blurred and {result.counts[1]} real images; medians "
                   "shown)")  # fmt: skip
    else:
        click.echo(f"{result.overall:.4f}")
    if json_path is not None:
        report = {"blurgen_version": blurgen.__version__, **result.to_dict(),
                  "blurred": ours, "real": theirs,
                  "skipped": ours_skipped + theirs_skipped}  # fmt: skip
        with atomic_path(json_path) as temporary:
            temporary.write_text(json.dumps(report, indent=2) + "\n")
    if plot is not None:
        write_png(plot, plot_distributions(ours, theirs))
    if ours_skipped or theirs_skipped:
        raise SystemExit(1)
