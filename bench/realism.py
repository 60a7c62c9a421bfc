"""Speed of the realism measure: 100 photos of 1 megapixel, against decoding them alone.

The bundled photos are cropped or scaled to 1000x1000 px, blurred by a Gaussian of 0.5 to 3 px
(a different one per photo) and saved as JPEG (quality 90), 100 files. In one run the bench
times decoding them all (the baseline: what any measure must do) and `blurgen.realism.measure`
on the same folder (decoding included), in this process, once each after a warm-up on 5 of
them. Prints a table, writes JSON.

    python bench/realism.py          # about half a minute on 2 cores
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import write_json

import blurgen
from blurgen.io import Photo
from blurgen.pipeline import bundled_images, expand_sources
from blurgen.realism import measure

HERE = Path(__file__).resolve().parent


def make_photos(folder: Path, count: int, side: int) -> None:
    """``count`` JPEGs of side x side px from the bundled photos, each blurred differently."""
    rng = np.random.default_rng(0)
    sources = [cv2.imread(str(p)) for p in bundled_images()]
    for i in range(count):
        image = cv2.resize(sources[i % len(sources)], (side, side), interpolation=cv2.INTER_CUBIC)
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 3.0)))
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--side", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "realism.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        make_photos(folder, args.count, args.side)
        paths = expand_sources([folder])
        measure(paths[:5])
        began = time.perf_counter()
        for path in paths:
            Photo.open(path).crop(0, 0, args.side, args.side)
        decode = time.perf_counter() - began
        began = time.perf_counter()
        measured, skipped = measure([folder])
        seconds = time.perf_counter() - began
    assert len(measured) == args.count and not skipped
    print(f"{args.count} photos of {args.side}x{args.side} px, {os.cpu_count()} CPUs")
    print(f"| {'work':28s} | seconds | per photo (ms) | ratio |")
    for label, value in (("decode only (baseline)", decode), ("realism measure", seconds)):
        print(f"| {label:28s} | {value:7.1f} | {1000 * value / args.count:14.0f} | "
              f"{value / decode:5.1f} |")  # fmt: skip
    write_json(args.json, {"blurgen_version": blurgen.__version__, "count": args.count,
                           "side": args.side, "cpus": os.cpu_count(), "decode_s": decode,
                           "measure_s": seconds, "ratio": seconds / decode})  # fmt: skip


if __name__ == "__main__":
    main()
