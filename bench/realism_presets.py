"""How real each preset's pairs look, and whether the default's kernels cover real ones.

Needs the reference data (``--shared``, default ../shared/data beside the checkout): Lai et
al.'s 70 real camera-shake photos, the skimage sharp photos, the GoPro frames, and the 30
kernels estimated for Lai's photos. The real photos are split as `blurgen calibrate --hold-out`
splits them (sorted by name, every other one): the even ones are what `camera-shake` was
fitted on, the odd ones were kept out, and every distance here is to the odd ones.

Rows: the noise floor (the even half itself), sharp photos, GoPro frames, and make-dataset's
samples (8 per sharp photo, 256 px, seed 0) under the presets, under two of them with 6-DoF
camera shake instead of their kernels (``--blur camera``: the same kernel size bounds its
reach, the same degradation), and under deliberately too weak and too strong blur; then the
other presets' distances minus the default's, paired by sample (the renderer gives every preset
the same photos, crop positions and seeds). Then 4000
kernels drawn from the default preset against the real kernels: their extents (std of the mass
along the principal axis) and the default's 5th and 95th percentiles (the vertical lines), as a
histogram picture. Prints tables, writes JSON and the pictures.

    python bench/realism_presets.py        # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml
from common import paired_differences, realism_table, write_json

import blurgen
from blurgen import presets
from blurgen.calibrate import (
    Renderer,
    configure,
    coverage_shortfall,
    drawn_extents,
    read_kernel_extents,
)
from blurgen.io import write_png
from blurgen.pipeline import expand_sources
from blurgen.realism import (
    histogram_panel,
    legend_panel,
    measure,
    plot_distributions,
)

HERE = Path(__file__).resolve().parent


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
    configs = {name: presets.load(name) for name in ("camera-shake", "deblurgan", "none")}
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
        **{
            f"make-dataset --preset {n} --blur camera": renderer.statistics(
                replace(configs[n], blur="camera", mix=())
            )
            for n in ("camera-shake", "none")
        },
        "too weak: 9 px kernels": renderer.statistics(weak),
        "too strong: 151 px straight streaks": renderer.statistics(strong),
    }
    print(f"distance to the {len(held)} held-out real photos (Lai et al.)")
    rows = realism_table(sets, held)
    print("\nthe other presets than the default, paired by sample (the same photos, crops, seeds)")
    default_label = "make-dataset --preset camera-shake"
    differences = paired_differences(
        sets, {f"make-dataset --preset {n}": default_label for n in ("none", "deblurgan")}, held
    )
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
    title = "kernel extent (px): std of the mass along the principal axis"
    panel = histogram_panel([ours, real_extents], title, size=(300, 720), bins=30,
                            marks=(low, high))  # fmt: skip
    names = [f"camera-shake preset ({args.kernels} kernels)",
             f"estimated real kernels ({len(real_extents)})"]  # fmt: skip
    legend = legend_panel(names, (300, 360))
    write_png(figures / "kernel_extents.png", np.concatenate([panel, legend], axis=1))
    write_json(args.json, {
        "blurgen_version": blurgen.__version__, "held_out": len(held), "rows": rows,
        "paired": differences,
        "kernel_extents": {"default_p5": low, "default_p95": high,
                           "default_median": float(np.median(ours)),
                           "real": sorted(real_extents.tolist()), "covered": covered},
        "presets": {n: yaml.safe_load(presets.path_of(n).read_text())
                    for n in ("camera-shake", "deblurgan")},
    })  # fmt: skip


if __name__ == "__main__":
    main()
