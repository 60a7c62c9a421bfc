"""6-DoF camera shake against kernel blur: speed, blur extents, and a picture of kernel fields.

Both methods make pairs from the bundled photos as make-dataset does (P=256 by default, K=31,
the default forward model), in one process, the same samples' crops: kernel blur
(``--blur motion``: one trajectory kernel, one convolution) and camera shake (``--blur
camera``: T=32 recorded poses, sampled densely enough that no pixel jumps more than half a px,
each a warp of the crop). Prints pairs/s of both and their ratio, the poses warped per pair, and
the blur extents (the standard deviation of a kernel's mass along its longest axis) of the
motion kernels and of the camera samples' kernels at the patch centres, which the camera model
is sized to match. Writes JSON and a picture: for a few samples, the blurred patch and its 4 x 4
kernel field.

    python bench/camera.py           # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import write_json

import blurgen
from blurgen.io import Photo, write_png
from blurgen.kernels import kernel_extent
from blurgen.kernels.bank import kernel_grid
from blurgen.methods.camera import FIELD_GRID, kernel_fields
from blurgen.pipeline import DatasetConfig, bundled_images
from blurgen.sample import Synthesiser, sample_rng

HERE = Path(__file__).resolve().parent


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--kernel-size", type=int, default=31)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "camera.json")
    parser.add_argument("--figure", type=Path,
                        default=HERE.parent / "docs" / "figures" / "camera_fields.png")  # fmt: skip
    args = parser.parse_args()

    rows, kept = {}, {}
    for method in ("motion", "camera"):
        config = DatasetConfig(patch=args.patch, kernel_size=args.kernel_size, blur=method)
        make_pairs(config, 4)  # warm up: imports, OpenCV's threads
        seconds, records, kernels, pairs = make_pairs(config, args.samples)
        rows[method] = {"pairs": args.samples, "seconds": seconds,
                        "pairs_per_s": args.samples / seconds,
                        "extent_px_median": float(np.median(kernel_extent(kernels))),
                        "extent_px_quartiles": np.percentile(kernel_extent(kernels),
                                                             [25, 75]).tolist()}  # fmt: skip
        if method == "camera":
            shape = (config.crop, config.crop)
            poses = [len(r.drawn.homographies(shape)) for r in records]
            rows[method]["poses_per_pair_mean"] = float(np.mean(poses))
            kept = {"config": config, "records": records, "pairs": pairs}
    ratio = rows["camera"]["pairs_per_s"] / rows["motion"]["pairs_per_s"]
    print(f"P={args.patch}, K={args.kernel_size}, {args.samples} pairs each, one process")
    print("| blur | pairs/s | blur extent, median (quartiles), px |")
    print("| --- | ---: | ---: |")
    for method, row in rows.items():
        low, high = row["extent_px_quartiles"]
        print(f"| {method} | {row['pairs_per_s']:.1f} | {row['extent_px_median']:.2f} "
              f"({low:.2f}-{high:.2f}) |")  # fmt: skip
    print(
        f"camera shake makes pairs at {ratio:.2f}x the rate of kernel blur; "
        f"{rows['camera']['poses_per_pair_mean']:.0f} poses warped per pair on average"
    )

    config, records, pairs = kept["config"], kept["records"], kept["pairs"]
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
    write_json(args.json, {"benchmark": "camera", "blurgen_version": blurgen.__version__,
                           "patch": args.patch, "kernel_size": args.kernel_size,
                           "rows": rows, "camera_over_motion": ratio})  # fmt: skip


if __name__ == "__main__":
    main()
