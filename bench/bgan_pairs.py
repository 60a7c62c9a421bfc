"""Learned-blur pairs against kernel-blur pairs: make-dataset's speed, peak memory, alignment.

Each run is ``blurgen make-dataset`` on the bundled photos in a fresh process, with the same
settings for both (the camera-shake preset, ``--patch``, ``--workers``), ``--blur motion``
(the baseline) or ``--blur bgan`` (the shipped generator), at each of ``--per-image``'s
sizes. The child times the command itself (Python's start-up and imports left out; the
generator's loading kept) and reports its own peak resident memory (VmHWM). The runs rotate
(motion, bgan, then the next size), ``--repeat`` times; the table gives medians, and bgan's
pairs/s as a fraction of motion's at the same size, measured back to back. Then alignment:
every pair of the smallest runs' files, the offset its blur moves the content by, estimated
from the sharp and blurred patches as written (:func:`blurgen.alignment.pair_offset`, kernels
of ``--estimate-size`` px). Prints the tables, writes JSON.

    python bench/bgan_pairs.py     # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
from common import run_record, write_json

from blurgen.alignment import pair_offset

HERE = Path(__file__).resolve().parent
BLURS = ("motion", "bgan")
CHILD = """
import sys, time
from blurgen.cli.main import cli
began = time.perf_counter()
cli.main(sys.argv[1:], standalone_mode=False)
seconds = time.perf_counter() - began
status = open("/proc/self/status").read().split()
print(seconds, int(status[status.index("VmHWM:") + 1]))
"""


def run(blur: str, per_image: int, patch: int, workers: int, out: Path) -> dict:
    """One make-dataset run in a fresh process: its pairs, seconds and peak memory (MB)."""
    command = [sys.executable, "-c", CHILD, "make-dataset", "-o", str(out), "--overwrite",
               "--blur", blur, "--patch", str(patch), "--per-image", str(per_image),
               "--workers", str(workers), "-q"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds, peak_kb = result.stdout.split()[-2:]
    with h5py.File(out) as f:
        pairs = len(f["sharp"])
    return {"pairs": pairs, "seconds": float(seconds), "peak_mb": int(peak_kb) / 1024}


def offsets(path: Path, size: int) -> dict:
    """The (dy, dx) offsets of every pair in a pairs file, px: each one's, and per axis their
    mean, median, smallest and largest."""
    with h5py.File(path) as f:
        sharp, blurred = f["sharp"][...], f["blurred"][...]
    found = np.array([pair_offset(s, b, size) for s, b in zip(sharp, blurred, strict=True)])
    summary = {"pairs": len(found), "kernel_size": size, "offsets": found.tolist()}
    for axis, name in enumerate(("dy", "dx")):
        values = found[:, axis]
        summary[name] = {"mean": values.mean(), "median": float(np.median(values)),
                         "min": values.min(), "max": values.max()}  # fmt: skip
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-image", type=int, nargs="+", default=[8, 32, 128],
                        help="sizes: pairs per bundled photo, a run of each blur each")  # fmt: skip
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="rotations of all the runs")
    # The generator's kernels are 63 px. The preset's are drawn on 101 px, but most reach under
    # 30 px, and with JPEG at quality 31-41 in the pairs an estimate that wide is mostly noise.
    parser.add_argument("--estimate-size", type=int, default=63,
                        help="side of the kernels estimated from the pairs, px (odd)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bgan_pairs.json")
    args = parser.parse_args()

    runs: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.repeat):
            for per_image in args.per_image:
                for blur in BLURS:
                    out = folder / f"{blur}_{per_image}.h5"
                    made = run(blur, per_image, args.patch, args.workers, out)
                    runs.setdefault((blur, per_image), []).append(made)
        smallest = min(args.per_image)
        alignment = {blur: offsets(folder / f"{blur}_{smallest}.h5", args.estimate_size)
                     for blur in BLURS}  # fmt: skip

    rows = []
    for (blur, per_image), made in runs.items():
        seconds = statistics.median(r["seconds"] for r in made)
        rows.append({"blur": blur, "per_image": per_image, "pairs": made[0]["pairs"],
                     "runs": made, "seconds": seconds, "pairs_per_s": made[0]["pairs"] / seconds,
                     "peak_mb": statistics.median(r["peak_mb"] for r in made)})  # fmt: skip
    baseline = {row["per_image"]: row for row in rows if row["blur"] == "motion"}
    for row in rows:
        motion = baseline[row["per_image"]]
        row["of_motion_pairs_per_s"] = row["pairs_per_s"] / motion["pairs_per_s"]
        row["of_motion_peak"] = row["peak_mb"] / motion["peak_mb"]

    print(f"make-dataset, bundled photos, camera-shake preset, {args.patch} px, {args.workers} "
          f"threads, {os.cpu_count()} cores; medians of {args.repeat} runs")  # fmt: skip
    print("| blur | pairs | seconds | pairs/s | of motion's | peak MB | of motion's |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in sorted(rows, key=lambda r: (r["per_image"], BLURS.index(r["blur"]))):
        print(f"| {row['blur']} | {row['pairs']} | {row['seconds']:.1f} | "
              f"{row['pairs_per_s']:.1f} | {row['of_motion_pairs_per_s']:.2f} | "
              f"{row['peak_mb']:.0f} | {row['of_motion_peak']:.2f} |")  # fmt: skip
    print("\nOffsets the pairs' blur moves content by, estimated from each pair (px)")
    print("| blur | pairs | kernel | dy mean | dy median | dy min, max "
          "| dx mean | dx median | dx min, max |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for blur, found in alignment.items():
        cells = [f"{found[a]['mean']:+.2f} | {found[a]['median']:+.2f} | {found[a]['min']:+.2f}"
                 f", {found[a]['max']:+.2f}" for a in ("dy", "dx")]  # fmt: skip
        print(f"| {blur} | {found['pairs']} | {found['kernel_size']} | {' | '.join(cells)} |")

    result = {
        **run_record("bgan_pairs"),
        "patch": args.patch, "workers": args.workers, "repeat": args.repeat,
        "estimate_size": args.estimate_size,
        "rows": rows, "alignment": alignment,
    }  # fmt: skip
    write_json(args.json, result)


if __name__ == "__main__":
    main()
