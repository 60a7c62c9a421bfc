"""Does a camera's processing (``--isp``) bring the pairs closer to real blurry photos?

Needs the reference data (``--shared``, default ../shared/data beside the checkout). The same
samples of the skimage sharp photos (8 a photo, 256 px, seed 0) are rendered under the
camera-shake preset, the same with the ISP (without and with in-camera sharpening), and the
realblur and phone presets, and measured (:mod:`blurgen.realism`) against two sets of real
photos: the half of Lai et al.'s camera-shake photos that camera-shake was not fitted on, and
the GoPro frames (another camera). Every distance carries its 95 % bootstrap interval; each ISP
variant is compared with the preset it adds to by a paired bootstrap (the same samples, the
same real photos in each resampling), and a verdict is given only where the interval of the
difference excludes 0. Then a picture: 64 px crops of a flat and of an edged region of one
sample under each, beside a real photo's. Prints tables, writes JSON and the picture.

    python bench/isp_realism.py        # under a minute on 2 cores
    python bench/isp_realism.py --fitted no_isp.yaml isp.yaml   # two calibrated presets too
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from common import paired_differences, realism_table, run_record, write_json

from blurgen import presets
from blurgen.calibrate import Renderer
from blurgen.io import Photo, write_png
from blurgen.isp import Isp
from blurgen.pipeline import expand_sources
from blurgen.realism import measure, statistics_of

HERE = Path(__file__).resolve().parent
CROP = 64


def configs(fitted: list[Path] | None = None) -> dict:
    """The sets to render, by label; each ISP variant names the one it adds to. ``fitted``:
    two presets ``blurgen calibrate`` fitted, without and with the ISP, the second compared
    with the first."""
    base = presets.load("camera-shake")
    with_isp = replace(base, degradation=replace(base.degradation, isp=Isp()))
    sharpened = replace(base, degradation=replace(base.degradation,
                                                  isp=Isp(sharpen=(0.5, 1.5))))  # fmt: skip
    return {
        "camera-shake": (base, None),
        "camera-shake + ISP": (with_isp, "camera-shake"),
        "camera-shake + ISP, sharpened": (sharpened, "camera-shake"),
        "realblur": (presets.load("realblur"), "camera-shake"),
        "phone": (presets.load("phone"), "camera-shake"),
        **({"fitted without ISP": (presets.load(fitted[0]), None),
            "fitted with ISP": (presets.load(fitted[1]), "fitted without ISP")}
           if fitted else {}),
    }  # fmt: skip


def corners(image: np.ndarray) -> list[tuple[int, int]]:
    """The corners of the flattest and the most edged 64 px crop of an image (by gradient
    energy)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2
    steps = range(0, image.shape[0] - CROP + 1, CROP // 2)
    scores = {(y, x): float(energy[y : y + CROP, x : x + CROP].mean())
              for y in steps for x in range(0, image.shape[1] - CROP + 1, CROP // 2)}  # fmt: skip
    return [min(scores, key=scores.get), max(scores, key=scores.get)]


def column(image: np.ndarray, chosen: list[tuple[int, int]], label: str) -> np.ndarray:
    """The crops at ``chosen`` corners, enlarged 3 times and stacked, under ``label``."""
    tiles = [cv2.resize(image[y : y + CROP, x : x + CROP], (3 * CROP, 3 * CROP),
                        interpolation=cv2.INTER_NEAREST) for y, x in chosen]  # fmt: skip
    header = np.full((40, 3 * CROP, 3), 255, np.uint8)
    lines, line = [], ""
    for word in label.split():  # at most two lines of about 26 characters
        if line and len(line) + len(word) >= 26:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    for k, text in enumerate([*lines, line]):
        cv2.putText(header, text, (4, 15 + 17 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0),
                    1, cv2.LINE_AA)  # fmt: skip
    return np.concatenate([header, *tiles], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "isp_realism.json")
    parser.add_argument("--figure", type=Path,
                        default=HERE.parent / "docs" / "figures" / "isp_crops.png")  # fmt: skip
    parser.add_argument(
        "--fitted",
        type=Path,
        nargs=2,
        metavar=("NO_ISP", "ISP"),
        help="two calibrated presets, without and with the ISP, to compare",
    )
    args = parser.parse_args()
    lai, _ = measure([args.shared / "blurry" / "lai2016_real"])
    lai.sort(key=lambda s: s["name"])
    gopro = measure([args.shared / "blurry" / "gopro_frames"])[0]
    references = {"Lai, held out": lai[1::2], "GoPro frames": gopro}
    renderer = Renderer(expand_sources([args.shared / "sharp" / "skimage"]), 8, 256, 0)
    rendered, measured = {}, {}
    for label, (config, _) in configs(args.fitted).items():
        rendered[label] = list(renderer.pairs(config))
        measured[label] = statistics_of(blurred for _, _, blurred in rendered[label])
    result = {**run_record("isp_realism"), "references": {}}
    for name, reference in references.items():
        print(f"\ndistance to {name} ({len(reference)} photos)")
        rows = realism_table(measured, reference)
        against = {label: other for label, (_, other) in configs(args.fitted).items() if other}
        # The same samples of the same sharp photos: A's and B's images pair by position.
        differences = paired_differences(measured, against, reference)
        result["references"][name] = {"rows": rows, "differences": differences}
    sample = 5  # one sample of one photo, under every config
    real = Photo.open(sorted(expand_sources([args.shared / "blurry" / "lai2016_real"]))[1])
    real_rgb = np.clip(np.rint(real.crop(0, 0, *real.size) * 255), 0, 255).astype(np.uint8)
    # Sets whose sample covers the same part of the photo (its crop and kernel size) show the
    # same content: the crops the first of them chose.
    chosen: dict = {}
    tiles = [column(real_rgb, corners(real_rgb), "real (Lai, held out)")]
    for label, pairs in rendered.items():
        record, _, blurred = pairs[sample]
        where = chosen.setdefault((record.origin, blurred.shape), corners(blurred))
        tiles.append(column(blurred, where, label))
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    picture = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    write_png(args.figure, picture)
    print(f"wrote {args.figure}: columns real, " + ", ".join(rendered) + "; rows flat, edged")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
