"""Peak memory of ``blurgen make-dataset`` and ``blurgen blur`` on a very large photo.

A bundled photo is scaled up to SIDE×SIDE px (100 megapixels by default) and saved as PNG.
Fresh processes then run, and the kernel reports each one's peak resident memory (``wait4``):
the baseline decodes the photo and converts it whole to float32 RGB (what both commands did
before they kept photos as decoded and converted only what they use), ``blurgen make-dataset``
makes 8 pairs of P=256 px from it with one worker (only the crops are converted), and
``blurgen blur`` blurs the whole photo with shot and read noise and JPEG (strip by strip, the
8-bit result written as PNG). Prints a table, writes JSON.

    python bench/source_memory.py               # about two minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_json

import blurgen

HERE = Path(__file__).resolve().parent
WHOLE = "import sys; from blurgen.io import read_image; print(read_image(sys.argv[1]).shape)"
MAKE_PHOTO = """
import sys, cv2
from blurgen.pipeline import bundled_images
small = cv2.imread(str(next(p for p in bundled_images() if p.stem == "astronaut")))
side = int(sys.argv[2])
cv2.imwrite(sys.argv[1], cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC))
"""


def peak_of(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in a fresh process; its seconds and peak RSS in MB."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{command[:4]} failed: {process.stderr.read().decode()}")
    return time.perf_counter() - began, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10000, help="photo side in px")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "source_memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "large.png"
        # Made in a process of its own: Linux carries a process's peak RSS over to the
        # processes it starts (fork, then exec), so this one must stay small for theirs to
        # count only their own.
        subprocess.run([sys.executable, "-c", MAKE_PHOTO, str(photo), str(args.side)], check=True)
        rows = {
            "whole photo as float32 (baseline)": peak_of([sys.executable, "-c", WHOLE, str(photo)]),
            "blurgen make-dataset": peak_of(
                [
                    "blurgen",
                    "make-dataset",
                    str(photo),
                    "-o",
                    str(Path(folder) / "pairs.h5"),
                    "--patch",
                    str(args.patch),
                    "--workers",
                    "1",
                    "-q",
                ]  # fmt: skip
            ),
            "blurgen blur (noise, JPEG)": peak_of(
                [
                    "blurgen",
                    "blur",
                    str(photo),
                    "-o",
                    str(Path(folder) / "blurred"),
                    "--shot",
                    "0.001,0.004",
                    "--read",
                    "0.002,0.01",
                    "--jpeg",
                    "80,95",
                    "-q",
                ]  # fmt: skip
            ),
        }
        megabytes = photo.stat().st_size / 1e6
    print(f"{args.side}x{args.side} PNG ({megabytes:.0f} MB file), P={args.patch}")
    print(f"| {'process':36s} | seconds | peak RSS (MB) |")
    for name, (seconds, peak) in rows.items():
        print(f"| {name:36s} | {seconds:7.1f} | {peak:13.0f} |")
    write_json(args.json, {
        "blurgen_version": blurgen.__version__, "side": args.side, "patch": args.patch,
        "file_mb": megabytes,
        "rows": {name: {"seconds": s, "peak_rss_mb": m} for name, (s, m) in rows.items()},
    })  # fmt: skip


if __name__ == "__main__":
    main()
