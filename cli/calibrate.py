"""``blurgen calibrate``: fit make-dataset's blur and noise to real blurry photos."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import yaml

import blurgen
from blurgen.io import atomic_path
from blurgen.parameters import described

from .options import (
    progress_bar,
    real_option,
    seed_option,
    strict_option,
    user_errors,
    verbosity_option,
)


@click.command("calibrate")
@real_option
@click.option(
    "--sharp",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Sharp photos to blur (repeatable); default: the photos bundled with blurgen.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Preset YAML to write (make-dataset --config takes it).",
)
@click.option(
    "--kernels",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Kernels estimated for real photos (.npy or grey images; files or folders): the fit "
    "must draw kernels whose extents cover theirs between its 5th and 95th percentiles.",
)
@click.option(
    "--fit",
    default=None,
    metavar="NAME,...",
    help=f"Parameters to fit: {described()}",
)
@click.option(
    "--budget",
    type=click.IntRange(min=10),
    default=400,
    show_default=True,
    help="Candidate settings to try (each renders and measures every sample).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Samples per sharp photo for each candidate.",
)
@click.option(
    "--patch",
    type=click.IntRange(min=96),
    default=256,
    show_default=True,
    help="Patch side in px (as make-dataset's --patch).",
)
@click.option(
    "--hold-out",
    is_flag=True,
    help="Fit on every other real photo (by sorted name) and report the distance on the rest.",
)
@seed_option
@strict_option
@verbosity_option
@user_errors
def calibrate_command(real, sharp, output, kernels, fit, budget, samples, patch, hold_out, seed,
                      strict, verbosity):  # fmt: skip
    """Fit the kernel model and the degradation to real blurry photos.

    Differential evolution (SciPy; fixed seed and budget, so the result is reproducible)
    searches kernel size, path length, exposure fractions, explosiveness, the share of
    straight-line kernels, shot and read noise, JPEG quality, highlight boost and gamma for the
    make-dataset settings whose pairs, made from the sharp photos, are closest to the real
    photos by `blurgen realism`. Each candidate renders the same samples (P px crops, blurred
    in valid mode, so P - K + 1 px are measured). Prints the score of make-dataset's built-in
    settings (--preset none) and of the fit, and writes the fit as a preset YAML whose comment
    lines record the run. With --kernels, the kernels' extents count too: their distance from
    the real kernels' joins the image statistics, and a fit must cover the real extents between
    its 5th and 95th percentiles. With --hold-out, the distance on the photos kept out is the
    honest figure.

    \b
    Example:
      blurgen calibrate --real my_camera/ -o my_camera.yaml --budget 600
      blurgen make-dataset photos/ -o pairs.h5 --config my_camera.yaml
    """
    from blurgen.calibrate import (
        DEFAULT_FIT,
        Renderer,
        calibrate,
        coverage_shortfall,
        drawn_extents,
        preset_of,
        read_kernel_extents,
    )
    from blurgen.pipeline import bundled_images, expand_sources
    from blurgen.realism import compare, measure

    extents = read_kernel_extents(kernels) if kernels else None
    names = DEFAULT_FIT if fit is None else tuple(n.strip() for n in fit.split(",") if n.strip())
    measured, skipped = measure(real, strict=strict)
    for item in skipped if verbosity else ():
        click.echo(f"skipped {item['name']}: {item['reason']}", err=True)
    measured.sort(key=lambda s: s["name"])
    fitted, held = (measured[0::2], measured[1::2]) if hold_out else (measured, [])
    renderer = Renderer(expand_sources(sharp) if sharp else bundled_images(), samples, patch, seed)
    with progress_bar(budget, "calibrating", verbosity) as advance:
        result = calibrate(fitted, renderer, fit=names, budget=budget, seed=seed,
                           kernel_extents=extents, progress=advance)  # fmt: skip
    what = "score" if extents is not None else "distance"
    lines = [
        f"{what} of the built-in settings: {result.before:.3f}",
        f"{what} of the fit ({result.evaluations} candidates): {result.after:.3f}",
    ]
    if extents is not None:
        drawn = drawn_extents(result.config, 4000)
        shortfall = coverage_shortfall(drawn, extents)
        low, high = np.percentile(drawn, [5, 95])
        short = "" if shortfall == 0 else f"; {shortfall:.2f} px short of covering them"
        lines.append(f"extents of 4000 kernels: 5th-95th percentile {low:.2f}-{high:.2f} px, "
                     f"median {np.median(drawn):.2f}; of the {len(extents)} real kernels: "
                     f"{extents.min():.2f}-{extents.max():.2f} px, median "
                     f"{np.median(extents):.2f}{short}")  # fmt: skip
    if held:
        samples_stats = renderer.statistics(result.config)
        held_distance = compare(samples_stats, held).overall
        lines.append(f"held-out real photos ({len(held)}): {held_distance:.3f}")
    header = [f"blurgen {blurgen.__version__} calibrate: {len(fitted)} real photos, "
              f"{len(renderer.photos)} sharp photos x {samples} samples of {patch} px, "
              f"budget {budget}, seed {seed}", *lines,
              "fitted: " + ", ".join(f"{k}={v:.4g}" for k, v in result.values.items())]  # fmt: skip
    text = "".join(f"# {line}\n" for line in header)
    text += yaml.safe_dump(preset_of(result.config), sort_keys=False)
    with atomic_path(output) as temporary:
        temporary.write_text(text)
    if verbosity:
        for line in lines:
            click.echo(line)
        click.echo(f"wrote {output}")
