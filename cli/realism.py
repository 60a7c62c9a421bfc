"""``blurgen realism``: how close a set of blurred images is to real blurry photos."""

from __future__ import annotations

import json
from pathlib import Path

import click

import blurgen
from blurgen.io import atomic_path, write_png
from blurgen.realism import (
    MAX_SIDE,
    MIN_SIDE,
    STATISTICS,
    UNITS,
    Comparison,
    Difference,
    compare,
    compare_two,
    count_images,
    measure,
    plot_distributions,
    typical_side,
)

from .options import (
    progress_bar,
    real_option,
    seed_option,
    strict_option,
    user_errors,
    verbosity_option,
)

# Sets whose sizes differ more than this get a note: the smaller one's distance has a higher
# floor by chance alone (see blurgen.realism.compare_two).
SIZE_RATIO = 2
# Sets whose images' typical sides differ more than this get a note: the statistics depend on
# the size measured (blurgen.realism.measure), a 256 px crop's detail half a decade above a
# 512 px one's.
SIDE_RATIO = 1.5


@click.command("realism")
@click.argument("blurred", nargs=-1, required=True, type=click.Path(path_type=Path))
@real_option
@click.option(
    "--against",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A second set of blurred images, B, read like BLURRED (repeatable): say whether "
    "BLURRED (A) or B is closer to --real.",
)
@click.option(
    "--paired",
    is_flag=True,
    help="With --against: resample A's and B's images together, by position. For sets of the "
    "same length made from the same sharp photos in the same order (e.g. two pairs files of "
    "the same sources and --per-image), whose differences of content then cancel, so smaller "
    "differences show. Every image must be usable.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Bootstrap resamplings of the images behind the intervals (0: no intervals, and no "
    "verdict with --against). --seed fixes them.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Coverage of the intervals.",
)
@click.option(
    "--crop",
    type=click.IntRange(MIN_SIDE, MAX_SIDE),
    default=MAX_SIDE,
    show_default=True,
    metavar="PX",
    help="Measure every image, of every set, on its central PX x PX crop (smaller images "
    "whole). The statistics depend on the size measured: compare a dataset's patches with "
    "larger photos at the patches' side, e.g. --crop 256 for --patch 256.",
)
@seed_option
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the distances, intervals, medians and per-image statistics here.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the distributions of each statistic side by side (PNG).",
)
@strict_option
@verbosity_option
@user_errors
def realism_command(
    blurred, real, against, paired, resamples, confidence, crop, seed, json_path, plot, strict,
    verbosity,
):  # fmt: skip
    """How close BLURRED images look to the real blurry photos of --real.

    BLURRED are image files, folders, .txt lists, or pairs files from make-dataset (their
    blurred images). Each image is measured at its native resolution, on its central
    2048x2048 crop at most (--crop sets a smaller one): spectral fall-off, directionality of
    the gradient energy, blur extent (px, from the autocorrelation of the gradients), fine
    detail left, and noise level (8-bit levels). Per statistic, the distance is the
    1-Wasserstein distance between the two sets over the real set's standard deviation; the
    overall distance is their mean. For scale: the two halves of Lai et al.'s 70 real photos
    are 0.39 (95 % interval 0.25-0.58) apart, sharp photos several units from blurry ones.
    Unreadable images are skipped with the reason (exit status 1), or stop the run with
    --strict; each side needs at least 5 usable images.

    Sizes matter: the statistics of one photo change with the size measured (fine detail
    most), so a dataset's 256 px patches and 1280x720 photos are compared fairly with --crop
    256. A note says when the sets' images differ in size by more than 1.5 times.

    Error bars: the images of both sets are drawn again with replacement --resamples times
    and the distances recomputed from their statistics. A distance's interval is where the
    distance of another draw of as many images would fall.

    With --against B, the difference of the distances, A's minus B's, gets an interval from
    the same resamplings (the real photos drawn once for both; A and B independently, or by
    position with --paired), and the verdict: "A is closer" where the whole interval is below
    0, "B is closer" where it is above, "no difference" otherwise. A smaller set sits farther
    from the real photos by chance alone: compare sets of similar size.

    \b
    Example:
      blurgen realism pairs.h5 --real real_photos/ --json realism.json --plot realism.png
      blurgen realism a.h5 --against b.h5 --paired --real real_photos/
    """
    if paired and not against:
        raise click.UsageError("--paired pairs BLURRED's images with --against's: give --against")
    sides = {}
    for label, items in (("blurred", blurred), ("against", against), ("real", real)):
        if not items:
            continue
        with progress_bar(count_images(items), f"measuring {label}", verbosity) as advance:
            sides[label] = measure(items, strict=strict, progress=advance, crop=crop)
        for skipped in sides[label][1]:
            click.echo(f"skipped {skipped['name']}: {skipped['reason']}", err=True)
    ours, theirs = sides["blurred"][0], sides["real"][0]
    others = sides["against"][0] if against else None
    typical = {label: typical_side(measured) for label, (measured, _) in sides.items() if measured}
    if typical and max(typical.values()) > SIDE_RATIO * min(typical.values()):
        click.echo("note: the images measured are about "
                   + ", ".join(f"{side} px ({label})" for label, side in typical.items())
                   + " on their shorter side; the statistics depend on the size measured, so "
                   f"--crop {min(typical.values())} would compare them at one size",
                   err=True)  # fmt: skip
    skipped = [item for _, missing in sides.values() for item in missing]
    bootstrap = {"resamples": resamples, "confidence": confidence, "seed": seed}
    report = {"blurgen_version": blurgen.__version__, "crop": crop}
    if others is not None:
        if paired and (sides["blurred"][1] or sides["against"][1]):
            raise ValueError("--paired pairs A's and B's images by position, but some could not "
                             "be measured (above): remove their counterparts, or leave out "
                             "--paired")  # fmt: skip
        result = compare_two(ours, others, theirs, paired=paired, **bootstrap)
        _show_two(result, verbosity, seed)
        report |= {**result.a.to_dict(), "seed": seed,
                   "against": {**result.b.to_dict(), "images": others},
                   "difference": result.to_dict()}  # fmt: skip
    else:
        result = compare(ours, theirs, **bootstrap)
        _show_one(result, verbosity, seed)
        report |= {**result.to_dict(), "seed": seed}
    if json_path is not None:
        report |= {"blurred": ours, "real": theirs, "skipped": skipped}
        with atomic_path(json_path) as temporary:
            temporary.write_text(json.dumps(report, indent=2) + "\n")
    if plot is not None:
        labels = ("blurred", "real") if others is None else ("A, blurred", "real", "B, against")
        write_png(plot, plot_distributions(ours, theirs, labels, against=others))
    if skipped:
        raise SystemExit(1)


def _show_one(result: Comparison, verbosity: int, seed: int) -> None:
    """The table of a :class:`~blurgen.realism.Comparison`, or its overall distance alone."""
    if not verbosity:
        click.echo(f"{result.overall:.4f}")
        return
    click.echo(f"{'statistic':16s} {'unit':>14s} {'blurred':>9s} {'real':>9s} {'distance':>9s}  "
               f"{_level(result)} interval")  # fmt: skip
    for name in STATISTICS:
        mine, real_median = result.medians[name]
        click.echo(f"{name:16s} {UNITS[name]:>14s} {mine:9.3f} {real_median:9.3f} "
                   f"{result.distances[name]:9.3f}  {_span(result.intervals, name)}")  # fmt: skip
    click.echo(f"{'overall':16s} {'':>14s} {'':>9s} {'':>9s} {result.overall:9.3f}  "
               f"{_span(result.interval)}")  # fmt: skip
    click.echo(f"({result.counts[0]} blurred and {result.counts[1]} real images; medians shown"
               f"{_resampled(result, seed)})")  # fmt: skip


_VERDICTS = {
    "A is closer": "A is closer to the real photos",
    "B is closer": "B is closer to the real photos",
    "no difference": "no difference between A and B",
    None: "no verdict without resamplings",
}


def _show_two(result: Difference, verbosity: int, seed: int) -> None:
    """The table of a :class:`~blurgen.realism.Difference` and its verdict, or the verdict
    alone (the difference where there is none)."""
    if not verbosity:
        click.echo(result.verdict or f"{result.difference:.4f}")
        return
    sizes = (result.a.counts[0], result.b.counts[0])
    if max(sizes) > SIZE_RATIO * min(sizes):
        click.echo(f"note: A has {sizes[0]} images and B {sizes[1]}: the smaller set sits "
                   "farther from the real photos by chance alone", err=True)  # fmt: skip
    click.echo(f"{'statistic':16s} {'unit':>14s} {'A':>9s} {'B':>9s} {'real':>9s} {'A dist':>9s} "
               f"{'B dist':>9s} {'A - B':>9s}  {_level(result)} interval")  # fmt: skip
    for name in STATISTICS:
        (a_median, real_median), (b_median, _) = result.a.medians[name], result.b.medians[name]
        click.echo(f"{name:16s} {UNITS[name]:>14s} {a_median:9.3f} {b_median:9.3f} "
                   f"{real_median:9.3f} {result.a.distances[name]:9.3f} "
                   f"{result.b.distances[name]:9.3f} {result.differences[name]:9.3f}  "
                   f"{_span(result.intervals, name)}")  # fmt: skip
    click.echo(f"{'overall':16s} {'':>14s} {'':>9s} {'':>9s} {'':>9s} {result.a.overall:9.3f} "
               f"{result.b.overall:9.3f} {result.difference:9.3f}  "
               f"{_span(result.interval)}")  # fmt: skip
    for label, side in (("A", result.a), ("B", result.b)):
        click.echo(f"{label}: {_with_interval(side.overall, side.interval, _level(result))}")
    click.echo(f"{_VERDICTS[result.verdict]}: A - B = "
               f"{_with_interval(result.difference, result.interval, _level(result))}")  # fmt: skip
    how = "by position" if result.paired else "independently"
    click.echo(f"({sizes[0]} A, {sizes[1]} B and {result.a.counts[1]} real images; medians "
               f"shown{_resampled(result, seed)}; A and B resampled {how})")  # fmt: skip


def _level(result: Comparison | Difference) -> str:
    return f"{result.confidence * 100:g} %"


def _span(interval: tuple[float, float] | dict | None, name: str | None = None) -> str:
    """``low-high`` (``low to high`` where low is negative) of an interval, or of ``name``'s in
    a dict of them; empty without."""
    if interval is None:
        return ""
    low, high = interval if name is None else interval[name]
    return f"{low:.2f}{'-' if low >= 0 else ' to '}{high:.2f}"


def _with_interval(value: float, interval: tuple[float, float] | None, level: str) -> str:
    """``0.640 (95 % interval 0.55-0.78)``, or the value alone without an interval."""
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({level} interval {_span(interval)})"


def _resampled(result: Comparison | Difference, seed: int) -> str:
    if result.interval is None:
        return "; no intervals (--resamples 0)"
    return f"; {_level(result)} intervals from {result.resamples} resamplings, seed {seed}"
