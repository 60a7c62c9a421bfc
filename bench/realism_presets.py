"""How real each preset's pairs look, and whether the default's kernels cover real ones.

Needs the reference data (``--shared``, default ../shared/data beside the checkout): Lai et
al.'s 70 real camera-shake photos, the skimage sharp photos, the GoPro frames, and the 30
kernels estimated for Lai's photos. The real photos are split as `blurgen calibrate --hold-out`
splits them (sorted by name, every other one): the even ones are what `camera-shake` was
fitted on, the odd ones were kept out, and every distance here is to the odd ones.

Rows: the noise floor (the even half itself), sharp photos, GoPro frames, and make-dataset's
samples (8 per sharp photo, 256 px, seed 0) under the presets and under deliberately too weak
and too strong blur. Then 4000 kernels drawn from the default preset against the real kernels:
their extents (std of the mass along the principal axis) and the default's 5th and 95th
percentiles, as a histogram picture. Prints tables, writes JSON and the pictures.

    python bench/realism_presets.py        # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import yaml
from common import write_json

import blurgen
from blurgen.calibrate import (
    Renderer,
    configure,
    coverage_shortfall,
    drawn_extents,
    read_kernel_extents,
)
from blurgen.io import write_png
from blurgen.pipeline import DatasetConfig, expand_sources
from blurgen.realism import STATISTICS, compare, measure, plot_distributions

HERE = Path(__file__).resolve().parent
PRESETS = Path(blurgen.__file__).resolve().parent / "presets"


def preset_config(name: str) -> DatasetConfig:
    """The DatasetConfig make-dataset builds from a shipped preset (its own parser)."""
    from click.testing import CliRunner

    from blurgen.cli.main import cli

    result = CliRunner().invoke(cli, ["make-dataset", "--preset", name, "-o", "unused.h5",
                                      "--dry-run", "--json"])  # fmt: skip
    if result.exit_code:
        raise RuntimeError(result.output)
    return DatasetConfig.from_dict(json.loads(result.output)["config"])


def histogram(groups: dict[str, np.ndarray], marks: tuple[float, float]) -> np.ndarray:
    """Side-by-side histograms of kernel extents (share per bin), with two vertical marks."""
    width, height, left, bottom, top = 720, 300, 40, 260, 40
    edges = np.linspace(0, max(g.max() for g in groups.values()) * 1.05, 31)
    colours = ((230, 120, 20), (40, 110, 200))
    canvas = np.full((height, width, 3), 255, np.uint8)
    shares = [np.histogram(g, edges)[0] / len(g) for g in groups.values()]
    tallest = max(s.max() for s in shares)
    bar = (width - 2 * left) / (len(edges) - 1) / 2
    for k, share in enumerate(shares):
        for b, value in enumerate(share):
            x0 = int(left + b * 2 * bar + k * bar)
            y0 = int(bottom - (bottom - top) * value / tallest)
            cv2.rectangle(canvas, (x0, y0), (int(x0 + bar) - 1, bottom), colours[k], -1)
    scale = (width - 2 * left) / edges[-1]
    for mark in marks:
        x = int(left + mark * scale)
        cv2.line(canvas, (x, top - 10), (x, bottom), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for value in range(0, int(edges[-1]) + 1, 5):
        cv2.putText(canvas, str(value), (int(left + value * scale) - 5, bottom + 20), font, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    for k, label in enumerate(groups):
        cv2.rectangle(
            canvas, (width - 300, 20 + 25 * k), (width - 280, 35 + 25 * k), colours[k], -1
        )
        cv2.putText(canvas, label, (width - 270, 33 + 25 * k), font, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
    cv2.putText(canvas, "kernel extent (px): std of the mass along the principal axis",
                (left, height - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "realism_presets.json")
    parser.add_argument("--kernels", type=int, default=4000)
    args = parser.parse_args()
    real, _ = measure([args.shared / "blurry" / "lai2016_real"])
    real.sort(key=lambda s: s["name"])
    fitted, held = real[0::2], real[1::2]
    renderer = Renderer(expand_sources([args.shared / "sharp" / "skimage"]), 8, 256, 0)
    configs = {name: preset_config(name) for name in ("camera-shake", "deblurgan", "none")}
    default = configs["camera-shake"]
    weak = configure(replace(default, motion=replace(default.motion, max_len=None)),
                     {"kernel_size": 9})  # fmt: skip
    strong = configure(default, {"kernel_size": 151, "path": 1.0, "min_fraction": 1.0,
                                 "expl_scale": 0.1})  # fmt: skip
    sets = {
        "real, the fitted half (noise floor)": fitted,
        "sharp photos (skimage)": measure([args.shared / "sharp" / "skimage"])[0],
        "GoPro frames (other real blur)": measure([args.shared / "blurry" / "gopro_frames"])[0],
        **{f"make-dataset --preset {n}": renderer.statistics(c) for n, c in configs.items()},
        "too weak: 9 px kernels": renderer.statistics(weak),
        "too strong: 151 px straight streaks": renderer.statistics(strong),
    }
    rows = {}
    print(f"distance to the {len(held)} held-out real photos (Lai et al.)")
    print(f"| {'set':38s} | overall | " + " | ".join(STATISTICS) + " |")
    for label, measured in sets.items():
        result = compare(measured, held)
        rows[label] = result.to_dict()
        print(f"| {label:38s} | {result.overall:7.2f} | "
              + " | ".join(f"{result.distances[n]:.2f}" for n in STATISTICS) + " |")  # fmt: skip
    figures = HERE.parent / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    write_png(figures / "realism_camera_shake.png",
              plot_distributions(sets["make-dataset --preset camera-shake"], held,
                                 ("camera-shake preset", "real, held out")))  # fmt: skip

    real_extents = read_kernel_extents([args.shared / "kernels" / "lai2016_real_estimated"])
    ours = drawn_extents(default, args.kernels)
    low, high = np.percentile(ours, [5, 95])
    covered = coverage_shortfall(ours, real_extents) == 0
    print(f"default kernel extents: 5th-95th percentile {low:.2f}-{high:.2f} px, median "
          f"{np.median(ours):.2f}; real: {real_extents.min():.2f}-{real_extents.max():.2f} px, "
          f"median {np.median(real_extents):.2f}; covered: {covered}")  # fmt: skip
    write_png(
        figures / "kernel_extents.png",
        histogram(
            {
                f"camera-shake preset ({args.kernels})": ours,
                f"estimated real kernels ({len(real_extents)})": real_extents,
            },
            (low, high),
        ),
    )
    write_json(args.json, {
        "blurgen_version": blurgen.__version__, "held_out": len(held), "rows": rows,
        "kernel_extents": {"default_p5": low, "default_p95": high,
                           "default_median": float(np.median(ours)),
                           "real": sorted(real_extents.tolist()), "covered": covered},
        "presets": {n: yaml.safe_load((PRESETS / f"{n}.yaml").read_text())
                    for n in ("camera-shake", "deblurgan")},
    })  # fmt: skip


if __name__ == "__main__":
    main()
