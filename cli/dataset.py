"""``blurgen make-dataset``, ``inspect``, ``preview`` and ``export``: paired HDF5 datasets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import cv2
import numpy as np

from blurgen import methods as registry
from blurgen.cluster import SHARD_PAIRS, make_dataset_ray, shard_folder
from blurgen.degradation import DEGRADATION_SETTINGS
from blurgen.h5 import open_pairs, verify_pairs
from blurgen.io import check_output_path, write_png
from blurgen.isp import ISP_SETTINGS
from blurgen.methods.learned import DEFAULT_BGAN
from blurgen.pipeline import (
    DATASET_SETTINGS,
    EXECUTORS,
    bundled_images,
    expand_sources,
    make_dataset,
    plan,
)
from blurgen.presets import config_from_settings
from blurgen.video import KIND as VIDEO
from blurgen.video import is_video

from .options import (
    blur_or_mix,
    built,
    config_option,
    device_option,
    learned_blur,
    method_settings,
    overwrite_option,
    preset_option,
    progress_bar,
    refuse_unused,
    seed_option,
    set_by_user,
    setting_layer,
    settings_options,
    strict_option,
    user_errors,
    verbosity_option,
    workers_option,
)


@click.command("make-dataset")
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HDF5 file to write (schema blurgen-pairs/4).",
)
@settings_options(*DATASET_SETTINGS, *method_settings(), *DEGRADATION_SETTINGS,
                  bgan={"is_flag": False, "flag_value": DEFAULT_BGAN})  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="Use at most this many source images.")
@strict_option
@seed_option
@device_option
@workers_option
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="threads",
    show_default=True,
    help="How the --workers run: threads of this process (they start at once and hand over "
    "pairs without copies; most of a pair's time is NumPy, SciPy and OpenCV, which run in "
    "parallel) or spawned processes (each starts Python and imports, and hands its pairs "
    "back through shared memory, but runs Python in parallel too, which may pay on many "
    "cores). With --device cuda, threads share the GPU (two jobs on it at a time) and "
    "processes each take a CUDA context and one job's batch of GPU memory.",
)
@click.option(
    "--resume/--overwrite",
    default=True,
    show_default=True,
    help="Continue an interrupted run of the same job, or start afresh and replace "
    "an existing output.",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="auto|local|HOST:PORT",
    help="Run the jobs as Ray tasks (pip install 'ray>=2.10'): on the cluster started on "
    "this machine by `ray start` (auto), at HOST:PORT, or on a new instance here with --workers "
    "CPUs, even beside a running cluster (local). A cluster with token authentication takes "
    "HOST:PORT runs with RAY_AUTH_MODE=token and its token (`ray get-auth-token`). Each task "
    "writes a shard to OUTPUT.d/ (storage every node sees) and OUTPUT joins them as HDF5 "
    "virtual datasets: the same pairs as a local run, read as one file.",
)
@click.option(
    "--shard-pairs",
    type=click.IntRange(min=1),
    default=SHARD_PAIRS,
    show_default=True,
    help="With --ray: pairs per task and shard file.",
)
@click.option(
    "--consolidate",
    is_flag=True,
    help="With --ray: copy the shards into OUTPUT as one ordinary file, then remove them.",
)
@click.option(
    "--frames-dir",
    "frame_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of numbered frames (frame_0001.png, ...) read as one video, after SOURCES "
    "(repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (sources, pairs, bytes) and stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@preset_option
@config_option
@verbosity_option
@user_errors
def make_dataset_command(
    sources, output, settings, limit, strict, seed, device, workers, executor, resume,
    ray_address, shard_pairs, consolidate, frame_dirs, dry_run, as_json, verbosity,
):  # fmt: skip
    """Write paired sharp/blurred patches from SOURCES to an HDF5 file.

    SOURCES are image or video files, folders (searched recursively) or .txt files listing
    paths; with none, the sample photos bundled with blurgen. Each pair of a photo is a random
    crop, flips, a kernel and the forward model (see the degradation options). Each pair of a
    video (.mp4, .mov, .avi, .mkv, .webm, or a --frames-dir folder) averages a window of
    --frames consecutive frames in linear light around its sharp middle frame, then the same
    degradation. The kernel model and the degradation
    start from --preset (camera-shake: fitted to real camera-shake photos by `blurgen
    calibrate`; --preset none for the plain defaults shown below), then --config, then flags.
    The same sources, options and seed give the same file whatever --workers. The file is
    written as OUTPUT.partial and renamed when complete; after Ctrl-C or a crash the same
    command resumes. Unreadable, corrupt or too
    small images are skipped and listed in the summary and the file's `skipped` attribute.
    With --ray the jobs run on a Ray cluster; rerunning keeps the finished shards.

    \b
    Example:
      blurgen make-dataset photos/ -o pairs.h5 --patch 256 --per-image 16 --read 0,0.01
    """
    paths = expand_sources(sources) if sources or frame_dirs else bundled_images()
    paths += list(frame_dirs)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise click.UsageError("no images found in the given sources")
    settings["mix"], level = blur_or_mix("blur", settings["mix"])
    config = built(config_from_settings, settings)
    # Settings of a method left out are refused where the user gave them at the level that
    # chose the methods or above: typed after a --config file's mix, they would do nothing.
    refuse_unused(config.methods(), level, "--blur {name} or a --mix that draws it")
    video_only = set_by_user([s.name for s in registry.for_source(VIDEO).settings])
    if video_only and not any(is_video(path) for path in paths):
        verb = "applies" if len(video_only) == 1 else "apply"
        raise click.UsageError(f"{', '.join(video_only)} only {verb} to video sources, and "
                               "SOURCES hold none")  # fmt: skip
    isp_only = set_by_user([s.name for s in ISP_SETTINGS if s.name != "isp"])
    if isp_only and config.degradation.isp is None:
        verb = "applies" if len(isp_only) == 1 else "apply"
        raise click.UsageError(f"{', '.join(isp_only)} only {verb} with --isp")
    learned = learned_blur(config, device)
    if dry_run:
        summary = plan(paths, config)
        if as_json:
            click.echo(json.dumps(summary))
        else:
            click.echo(f"{summary['sources']} source images, up to {summary['pairs']} pairs of "
                       f"{config.patch}x{config.patch} px, about {summary['bytes'] / 1e6:.1f} "
                       "MB")  # fmt: skip
        return
    check_output_path(output)
    if ray_address is None and consolidate:
        raise click.UsageError("--consolidate only applies to --ray runs")
    if ray_address is not None and setting_layer("executor"):
        raise click.UsageError("--executor only applies to local runs (Ray runs each task in a "
                               "process of its own)")  # fmt: skip
    began = time.perf_counter()
    with progress_bar(len(paths), "sources", verbosity) as advance:
        if ray_address is None:
            summary = make_dataset(paths, output, config, seed, workers=workers,
                                   executor=executor, device=device, learned=learned,
                                   overwrite=not resume, strict=strict,
                                   progress=advance)  # fmt: skip
        else:
            summary = make_dataset_ray(paths, output, config, seed, address=ray_address,
                                       cpus=workers, shard_pairs=shard_pairs, device=device,
                                       learned=learned, overwrite=not resume, strict=strict,
                                       consolidated=consolidate, progress=advance)  # fmt: skip
    seconds = time.perf_counter() - began
    shards = shard_folder(output)
    size = output.stat().st_size
    if shards.is_dir():
        size += sum(shard.stat().st_size for shard in shards.glob("shard-*.h5"))
    # The rate is this run's: pairs resumed from an interrupted run took none of its time.
    kept = summary["kept"]
    made = summary["pairs"] - kept
    summary.update(seconds=round(seconds, 3), pairs_per_s=round(made / seconds, 1), bytes=size)
    for skipped in summary["skipped"] if verbosity else ():
        click.echo(f"skipped: {skipped['reason']}", err=True)
    if as_json:
        click.echo(json.dumps(summary))
    elif verbosity:
        resumed = f" ({made} made now, {kept} kept from an earlier run)" if kept else ""
        click.echo(f"wrote {summary['pairs']} pairs{resumed} from "
                   f"{len(paths) - len(summary['skipped'])} sources to {output} "
                   f"({len(summary['skipped'])} skipped) in {seconds:.1f} s: "
                   f"{summary['pairs_per_s']:.0f} pairs/s, {summary['bytes'] / 1e6:.1f} MB",
                   err=True)  # fmt: skip
        if shards.is_dir():
            click.echo(f"{summary['shards']} shards in {shards} ({summary['reused']} kept from "
                       "an earlier run)", err=True)  # fmt: skip


@click.command("inspect")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def inspect_command(path, as_json):
    """Check a pairs file against its schema; exit 1 if something is wrong."""
    info, problems = verify_pairs(path)
    if as_json:
        click.echo(json.dumps({**info, "problems": problems}))
    else:
        for key in ("schema", "pairs", "sources", "patch", "kernel_size", "root_seed",
                    "blurgen_version", "complete"):  # fmt: skip
            if key in info:
                click.echo(f"{key:16s} {info[key]}")
        if "skipped" in info:
            click.echo(f"{'skipped':16s} {len(info['skipped'])}")
        if info.get("shards"):
            click.echo(f"{'shards':16s} {info['shards']} (virtual datasets over files beside it)")
        if "config" in info:
            click.echo(f"{'config':16s} {json.dumps(info['config'])}")
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        click.echo("ok" if not problems else f"{len(problems)} problem(s)")
    if problems:
        sys.exit(1)


@click.command("preview")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG to write.",
)
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Pairs to show (the first ones).",
)
@user_errors
def preview_command(path, output, count):
    """A picture of the first pairs: rows of sharp | blurred | kernel.

    For pairs without a kernel (a learned blur's, a video's) the third column shows where the
    two differ."""
    with open_pairs(path) as f:
        n = min(count, len(f["sharp"]))
        if n == 0:
            raise ValueError(f"'{path}' holds no pairs")
        sharp, blurred, kernel = f["sharp"][:n], f["blurred"][:n], f["kernel"][:n]
    side, gap = sharp.shape[1], 4
    rows = []
    for s, b, k in zip(sharp, blurred, kernel, strict=True):
        if not k.any():
            k = np.abs(b.astype(np.float32) - s).mean(axis=2)
        peak = k.max() if k.max() > 0 else 1
        tile = np.round(np.sqrt(k / peak) * 255).astype(np.uint8)
        tile = cv2.resize(tile, (side, side), interpolation=cv2.INTER_NEAREST)
        tile = cv2.cvtColor(cv2.applyColorMap(tile, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        spacer = np.full((side, gap, 3), 255, np.uint8)
        rows.append(np.concatenate([s, spacer, b, spacer, tile], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    write_png(output, np.concatenate(rows[:-1], axis=0))


@click.command("export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@overwrite_option
@user_errors
def export_command(path, outdir, overwrite):
    """Write the pairs as PNGs in the GoPro layout, OUTDIR/blur and OUTDIR/sharp.

    This is the layout that BasicSR, NAFNet, Restormer and DeblurGAN-v2 training code read.
    A pair's two images are both written or neither: a failed write (a full disk) removes
    the other, and the error names the file that could not be written.
    """
    with open_pairs(path) as f:
        n = len(f["sharp"])
        names = [f"{i:06d}.png" for i in range(n)]
        for part in ("blur", "sharp"):
            folder = outdir / part
            if folder.exists() and any(folder.iterdir()) and not overwrite:
                raise FileExistsError(f"'{folder}' is not empty; pass --overwrite to write into it")
        for part in ("blur", "sharp"):
            (outdir / part).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pair = outdir / "blur" / names[i], outdir / "sharp" / names[i]
            try:
                write_png(pair[0], f["blurred"][i])
                write_png(pair[1], f["sharp"][i])
            except BaseException:
                # Training code pairs the folders by name: a blurred image without its sharp
                # one, or beside an earlier export's (with --overwrite), breaks or misleads it.
                for image in pair:
                    image.unlink(missing_ok=True)
                raise
    click.echo(f"wrote {n} pairs to {outdir}/blur and {outdir}/sharp", err=True)
