"""6-DoF camera shake against kernel blur: speed, render error, blur extents, and a picture of
kernel fields.

Both methods make pairs from the bundled photos as make-dataset does, in one process, the same
samples' crops, at two settings: blurgen's plain defaults (P=256, K=31) and the camera-shake
preset's (K=101; P=192, as the bundled photos are too small for 356 px crops). Kernel blur
(``--blur motion``: one trajectory kernel, one convolution) is the baseline; camera shake
(``--blur camera``: T=32 recorded poses, sampled densely enough that no pixel jumps more than
half a px) is rendered as make-dataset renders it, in runs of poses that differ by
translations to within a quarter px (one convolution and one warp each), and as exact warps,
one per pose. Each row is the median of ``--rounds`` interleaved rounds. Prints pairs/s and
their ratios, the poses and warps per pair, the render error of both against warps 10 times as
dense (8-bit sRGB levels), and the blur extents (the standard deviation of a kernel's mass
along its longest axis) of the motion kernels and of the camera samples' kernels at the patch
centres. Writes JSON and a picture: for a few samples, the blurred patch and its 4 x 4 kernel
field.

    python bench/camera.py           # about two minutes on 2 cores
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import write_json

import blurgen
from blurgen import presets
from blurgen.color import linear_to_srgb, srgb_to_linear
from blurgen.forward import warp_blur, warp_runs
from blurgen.io import Photo, read_image, write_png
from blurgen.kernels import kernel_extent
from blurgen.kernels.bank import kernel_grid
from blurgen.kernels.camera import crop_probes
from blurgen.methods import camera as camera_method
from blurgen.methods.camera import FIELD_GRID, RENDER_TOLERANCE_PX, kernel_fields
from blurgen.pipeline import DatasetConfig, bundled_images
from blurgen.sample import Synthesiser, sample_rng

HERE = Path(__file__).resolve().parent
# Label: (preset, patch).
SETTINGS = {"plain defaults, K=31, P=256": ("none", 256),
            "camera-shake preset, K=101, P=192": ("camera-shake", 192)}  # fmt: skip
# The renders' reference: warps this many px apart (the renders' are MAX_GAP_PX, 0.5).
REFERENCE_GAP_PX = 0.05


def make_pairs(config: DatasetConfig, samples: int) -> tuple[float, list, np.ndarray, list]:
    """Draw and render ``samples`` pairs round the bundled photos; returns the seconds, the
    records, the kernels and the (sharp, blurred) pairs."""
    photos = [Photo.open(path) for path in bundled_images()]
    chosen = [photos[i % len(photos)] for i in range(samples)]
    rngs = [sample_rng(0, photo.fingerprint, i) for i, photo in enumerate(chosen)]
    began = time.perf_counter()
    made = Synthesiser(config).make(chosen, rngs, config.crop)
    pairs = list(zip(made.sharp, made.blurred, strict=True))
    return time.perf_counter() - began, made.records, made.kernels, pairs


def render_errors(records: list, config: DatasetConfig, count: int) -> dict:
    """8-bit sRGB differences from the dense reference of the exact warps and of the runs,
    over ``count`` camera samples' shakes applied to the bundled photos' central crops."""
    photos = [read_image(path) for path in bundled_images()]
    size, side = config.kernel_size, config.crop
    errors: dict[str, list] = {"exact warps": [], "runs": []}
    warps, runs = [], []
    for k, record in enumerate(records[:count]):
        photo = photos[k % len(photos)]
        y, x = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        light = srgb_to_linear(np.ascontiguousarray(photo[y : y + side, x : x + side]))
        shake = record.drawn
        maps = shake.homographies((side, side))
        dense = shake.homographies((side, side), gap=REFERENCE_GAP_PX)
        reference = linear_to_srgb(np.clip(warp_blur(light, dense, size), 0, 1)) * 255
        for name, tolerance in (("exact warps", None), ("runs", RENDER_TOLERANCE_PX)):
            out = warp_blur(light, maps, size, tolerance=tolerance)
            errors[name].append(np.abs(linear_to_srgb(np.clip(out, 0, 1)) * 255 - reference))
        o = size - 1 - size // 2
        grouped = warp_runs(maps, crop_probes(side - size + 1, side - size + 1) + o,
                            RENDER_TOLERANCE_PX, side - size + 1)  # fmt: skip
        warps.append(len(maps))
        runs.append(len(grouped))
    out = {"samples": min(count, len(records)), "poses_per_pair_mean": float(np.mean(warps)),
           "warps_per_pair_mean_with_runs": float(np.mean(runs))}  # fmt: skip
    for name, values in errors.items():
        values = np.stack(values)
        out[name] = {"mean_levels": float(values.mean()),
                     "p99_9_levels": float(np.percentile(values, 99.9)),
                     "max_levels": float(values.max())}  # fmt: skip
    return out


def measure(label: str, preset: str, patch: int, samples: int, rounds: int) -> dict:
    """One setting's rows: kernel blur, camera shake in runs and in exact warps."""
    configs = {
        "kernel blur": presets.load(preset, blur="motion", patch=patch),
        "camera shake": presets.load(preset, blur="camera", patch=patch),
        "camera shake, exact warps": presets.load(preset, blur="camera", patch=patch),
    }
    tolerances = {"camera shake, exact warps": None}
    seconds: dict[str, list] = {name: [] for name in configs}
    kept = {}
    for round_ in range(rounds + 1):  # round 0 warms up: imports, OpenCV's threads
        for name, config in configs.items():
            camera_method.RENDER_TOLERANCE_PX = tolerances.get(name, RENDER_TOLERANCE_PX)
            try:
                took, records, kernels, pairs = make_pairs(config, 4 if not round_ else samples)
            finally:
                camera_method.RENDER_TOLERANCE_PX = RENDER_TOLERANCE_PX
            if round_:
                seconds[name].append(took)
                kept[name] = (records, kernels, pairs)
    rows = {}
    for name, times in seconds.items():
        _, kernels, _ = kept[name]
        extents = kernel_extent(kernels)
        rows[name] = {"pairs": samples, "seconds": times,
                      "pairs_per_s": samples / float(np.median(times)),
                      "extent_px_median": float(np.median(extents)),
                      "extent_px_quartiles": np.percentile(extents, [25, 75]).tolist()}  # fmt: skip
    base = rows["kernel blur"]["pairs_per_s"]
    for row in rows.values():
        row["of_kernel_blur"] = row["pairs_per_s"] / base
    config = configs["camera shake"]
    records = kept["camera shake"][0]
    return {"preset": preset, "patch": patch, "kernel_size": config.kernel_size, "rows": rows,
            "render": render_errors(records, config, 16), "config": config,
            "records": records, "pairs": kept["camera shake"][2]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "camera.json")
    parser.add_argument("--figure", type=Path,
                        default=HERE.parent / "docs" / "figures" / "camera_fields.png")  # fmt: skip
    args = parser.parse_args()

    results = {label: measure(label, preset, patch, args.samples, args.rounds)
               for label, (preset, patch) in SETTINGS.items()}  # fmt: skip
    print(f"{args.samples} pairs a row, the median of {args.rounds} rounds, one process")
    print("| settings | blur | pairs/s | of kernel blur | blur extent, median (quartiles), px |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, result in results.items():
        for name, row in result["rows"].items():
            low, high = row["extent_px_quartiles"]
            print(f"| {label} | {name} | {row['pairs_per_s']:.1f} | {row['of_kernel_blur']:.2f} "
                  f"| {row['extent_px_median']:.2f} ({low:.2f}-{high:.2f}) |")  # fmt: skip
    print("\nRender error against warps 10x as dense, 8-bit sRGB levels:")
    print(
        "| settings | poses a pair | warps a pair in runs | exact warps: mean, 99.9th pct | "
        "runs: mean, 99.9th pct |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, result in results.items():
        render = result["render"]
        exact, runs = render["exact warps"], render["runs"]
        print(f"| {label} | {render['poses_per_pair_mean']:.0f} | "
              f"{render['warps_per_pair_mean_with_runs']:.1f} | {exact['mean_levels']:.3f}, "
              f"{exact['p99_9_levels']:.2f} | {runs['mean_levels']:.3f}, "
              f"{runs['p99_9_levels']:.2f} |")  # fmt: skip

    first = next(iter(results.values()))
    config, records, pairs = first["config"], first["records"], first["pairs"]
    fields = kernel_fields(records[:4], (config.crop, config.crop), config)
    tiles = []
    for (_, blurred), field in zip(pairs[:4], fields, strict=True):
        side = blurred.shape[0]  # the grid is FIELD_GRID cells and gaps of 2 px, within it
        grid = kernel_grid(field.reshape(-1, *field.shape[2:]), columns=FIELD_GRID,
                           cell=(side - 2) // FIELD_GRID - 2)  # fmt: skip
        grid = np.pad(grid, ((0, side - len(grid)), (0, 0), (0, 0)), constant_values=40)
        tiles.append(np.concatenate([blurred, grid], axis=1))
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    write_png(args.figure, np.concatenate(tiles, axis=0))
    print(f"wrote {args.figure}")
    for result in results.values():
        for name in ("config", "records", "pairs"):
            del result[name]
    write_json(args.json, {"benchmark": "camera", "blurgen_version": blurgen.__version__,
                           "samples": args.samples, "rounds": args.rounds,
                           "render_tolerance_px": RENDER_TOLERANCE_PX,
                           "reference_gap_px": REFERENCE_GAP_PX,
                           "settings": results})  # fmt: skip


if __name__ == "__main__":
    main()
