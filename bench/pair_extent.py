"""How much blur do captured blur/sharp pairs hold, and was it made on encoded values or in
linear light? The same estimates for real pairs and for each preset's pairs.

Each pair's kernel is estimated from its two images alone (:func:`blurgen.alignment.
estimate_kernel`, ``--size`` px): real pairs in tiles of ``--tile`` px (their blur varies
across a frame), synthetic pairs whole.

* **Extent.** From the kernel estimated on the encoded values, values under 30 % of its peak
  dropped: JPEG and noise leave a floor over the whole window that would swell the extent
  (with 5 %, the estimate of a JPEG preset's pairs was 3.8 times their kernels' extent; with
  30 %, within 0.14 px in the median, as on noise-free pairs). The extent is
  :func:`blurgen.kernels.kernel_extent`, the standard deviation of the mass along the kernel's
  longest axis. For the presets' pairs the extent of the kernel each pair recorded is given
  too: the estimator's own error.
* **Space.** A kernel is estimated twice, on the encoded values and on linear light (the sRGB
  curve undone), and each estimate's prediction of the blurred image is compared with it in
  8-bit levels (RMS, the linear one encoded again). A blur made by averaging encoded values is
  a convolution of them, and one made in linear light a convolution there: the smaller error
  says which. The presets' pairs, whose spaces are known, check the test.

Real pairs are ``DIR/blur/NAME.png`` and ``DIR/sharp/NAME.png`` (as ``deblur_real_kernels.py
--pairs`` reads them); the presets' pairs come from the skimage photos of the reference data,
made by make-dataset with ``--per-image`` pairs of ``--patch`` px. Prints a table, writes JSON.

    python bench/pair_extent.py --pairs gopro_pairs/ --presets deblurgan,camera-shake,fitted.yaml
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import h5py
import numpy as np
import scipy.signal
from common import run_record, write_json
from deblur_real_kernels import label_of, real_pairs

from blurgen.alignment import estimate_kernel
from blurgen.color import as_unit_float, linear_to_srgb, srgb_to_linear
from blurgen.kernels import kernel_extent
from blurgen.pipeline import expand_sources, make_dataset
from blurgen.presets import load

HERE = Path(__file__).resolve().parent
FLOOR = 0.3  # of a kernel's peak


def measure(sharp: np.ndarray, blurred: np.ndarray, size: int) -> dict:
    """A pair's extent (px) and the RMS errors (8-bit levels) of convolutions estimated on its
    encoded values and on its linear light."""
    sharp, blurred = (np.asarray(as_unit_float(i), np.float32) for i in (sharp, blurred))
    half = size // 2
    target = blurred[half:-half, half:-half].astype(np.float64)
    out = {}
    for space in ("encoded", "linear"):
        s, b = (sharp, blurred) if space == "encoded" else (srgb_to_linear(sharp),
                                                           srgb_to_linear(blurred))  # fmt: skip
        kernel = estimate_kernel(s, b, size)
        if space == "encoded":
            kept = np.where(kernel > FLOOR * kernel.max(), kernel, 0)
            out["extent"] = float(kernel_extent(kept))
        predicted = np.stack([scipy.signal.fftconvolve(s[..., c].astype(np.float64), kernel,
                                                       mode="valid")
                              for c in range(s.shape[2])], -1)  # fmt: skip
        if space == "linear":
            predicted = linear_to_srgb(np.clip(predicted, 0, 1).astype(np.float32))
        out[f"error_{space}"] = float(np.sqrt(np.mean((predicted - target) ** 2)) * 255)
    return out


def tiles(image: np.ndarray, side: int) -> list[tuple[int, int]]:
    """Top-left corners of the whole ``side`` px tiles of an image, row by row."""
    height, width = image.shape[:2]
    return [(y, x) for y in range(0, height - side + 1, side)
            for x in range(0, width - side + 1, side)]  # fmt: skip


def summary(values: list[float]) -> dict:
    """Count, median and the 10th, 25th, 75th and 90th percentiles."""
    low, q1, q3, high = np.percentile(values, [10, 25, 75, 90])
    return {"count": len(values), "median": float(np.median(values)), "p10": float(low),
            "q1": float(q1), "q3": float(q3), "p90": float(high)}  # fmt: skip


def row_of(measured: list[dict], recorded: np.ndarray | None = None) -> dict:
    """A table row: the extents', errors' and (given) recorded kernels' summaries, and the
    share of pairs whose encoded-value convolution fits better."""
    row = {name: summary([m[name] for m in measured])
           for name in ("extent", "error_encoded", "error_linear")}  # fmt: skip
    row["encoded_fits_better"] = float(np.mean([m["error_encoded"] < m["error_linear"]
                                                for m in measured]))  # fmt: skip
    if recorded is not None:
        row["recorded_extent"] = summary(kernel_extent(recorded).tolist())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="real pairs: DIR/blur, DIR/sharp")
    parser.add_argument("--presets", default="deblurgan,camera-shake",
                        help="shipped names or preset files, comma-separated")  # fmt: skip
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--size", type=int, default=65, help="estimated kernels' side, px")
    parser.add_argument("--tile", type=int, default=256, help="real pairs' tiles, px")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--per-image", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "pair_extent.json")
    args = parser.parse_args()

    photos = expand_sources([args.shared / "sharp" / "skimage"])
    if not photos:
        parser.error(f"no skimage photos under {args.shared}")
    rows: dict[str, dict] = {}
    real, t = [], args.tile
    for pair in real_pairs(args.pairs, 0):
        sharp, blurred = pair["sharp"], pair["blurred"]
        real += [measure(sharp[y : y + t, x : x + t], blurred[y : y + t, x : x + t], args.size)
                 for y, x in tiles(sharp, t)]  # fmt: skip
    rows[f"real pairs ({args.pairs.name}), {t} px tiles"] = row_of(real)
    with tempfile.TemporaryDirectory() as folder:
        for preset in args.presets.split(","):
            out = Path(folder) / "pairs.h5"
            config = load(preset, patch=args.patch, per_image=args.per_image)
            make_dataset(photos, out, config, seed=args.seed, overwrite=True)
            with h5py.File(out) as f:
                sharp, blurred, kernels = f["sharp"][...], f["blurred"][...], f["kernel"][...]
            measured = [measure(s, b, args.size) for s, b in zip(sharp, blurred, strict=True)]
            name = f"{label_of(preset)} (space: {config.degradation.space})"
            rows[name] = row_of(measured, kernels)
    print("| pairs | kernels | extent, median (quartiles; 10th-90th), px | recorded kernels' "
          "extent | error, encoded / linear (levels) | encoded fits better |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        e, r = row["extent"], row.get("recorded_extent")
        recorded = f"{r['median']:.2f} ({r['q1']:.2f}-{r['q3']:.2f})" if r else ""
        print(f"| {name} | {e['count']} | {e['median']:.2f} ({e['q1']:.2f}-{e['q3']:.2f}; "
              f"{e['p10']:.2f}-{e['p90']:.2f}) | {recorded} | "
              f"{row['error_encoded']['median']:.2f} / {row['error_linear']['median']:.2f} | "
              f"{row['encoded_fits_better']:.0%} |")  # fmt: skip
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(args.json, {**run_record("pair_extent"), "settings": settings, "rows": rows})


if __name__ == "__main__":
    main()
