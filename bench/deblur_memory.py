"""Memory and time of ``blurgen deblur`` on a large photo: tiles keep memory bounded.

The full-width deblurring generator (``--arch``: rrdb, the default, or resnet; 64 channels, 16
blocks; weights drawn at random with a fixed seed: memory and time do not depend on their
values) deblurs a bundled photo scaled to a small and to a large size, each in a fresh
``blurgen deblur`` process (``--device``, the CPU by default). The peak resident memory of each
process is read from the kernel (``wait4``); the small image is the baseline the large one is
compared with. A 1280×720 frame is also timed in
this process after a warm-up, so that start-up (and CUDA set-up) is not counted; on CUDA the
peak GPU memory is recorded too. Prints a table, writes JSON.

    python bench/deblur_memory.py --arch resnet    # about 17 minutes on 2 cores (rrdb: ~4x)
    python bench/deblur_memory.py --device cuda    # on a GPU
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import torch_device, write_json

import blurgen
from blurgen.bgan.config import DEBLUR_ARCHS
from blurgen.bgan.infer import Deblurrer
from blurgen.bgan.nets import deblur_generator
from blurgen.io import read_image, write_png
from blurgen.pipeline import bundled_images

HERE = Path(__file__).resolve().parent


def deblur_in_child(checkpoint: Path, image: Path, outdir: Path, tile: int, device: str) -> dict:
    """Run ``blurgen deblur`` on one image in a fresh process; its seconds and peak RSS (MB)."""
    command = [sys.executable, "-c", "from blurgen.cli.main import main; main()", "deblur",
               "--checkpoint", str(checkpoint), str(image), "-o", str(outdir),
               "--tile", str(tile), "--device", device, "-q"]  # fmt: skip
    began = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"blurgen deblur exited with {child.returncode} on '{image}'")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def time_frame(checkpoint: Path, photo: np.ndarray, tile: int, device: str, repeat: int) -> dict:
    """Seconds (best of ``repeat``) to deblur ``photo`` scaled to 1280×720 in this process,
    after a warm-up on one tile; on CUDA also the peak GPU memory allocated (MB)."""
    model = Deblurrer.load(checkpoint, device, tile=tile)
    frame = cv2.resize(photo, (1280, 720), interpolation=cv2.INTER_AREA)
    model.deblur(frame[:tile, :tile])
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        model.deblur(frame)
        times.append(time.perf_counter() - began)
    row = {"width": 1280, "height": 720, "seconds": min(times), "repeat": repeat}
    if device == "cuda":
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"))
    parser.add_argument("--small", type=int, nargs=2, default=(1000, 750), metavar=("W", "H"))
    parser.add_argument("--arch", choices=DEBLUR_ARCHS, default="rrdb")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--device", type=torch_device, default="cpu", help="cpu or cuda")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of the 720p frame")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "deblur_memory.json")
    args = parser.parse_args()

    photo = read_image(next(p for p in bundled_images() if p.stem == "chelsea"))
    torch.manual_seed(0)
    generator = deblur_generator(args.arch)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = folder / "dbgan.pt"
        state = {"kind": "dbgan", "generator_config": generator.config,
                 "generator": generator.state_dict()}  # fmt: skip
        torch.save(state, checkpoint)
        for width, height in (args.small, args.large):
            image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
            path = write_png(folder / f"photo_{width}x{height}.png", image)
            measured = deblur_in_child(checkpoint, path, folder / "out", args.tile, args.device)
            rate = width * height / 1e6 / measured["seconds"]
            rows.append({"width": width, "height": height, **measured, "megapixels_per_s": rate})
        frame = time_frame(checkpoint, photo, args.tile, args.device, args.repeat)

    result = {
        "benchmark": "deblur_memory",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__,
        "torch_version": torch.__version__,
        "cpu_count": os.cpu_count(),
        "network": generator.config,
        "tile": args.tile,
        "device": args.device,
        "runs": rows,
        "frame_720p": frame,
        "rss_ratio_large_to_small": rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"],
    }
    print(f"blurgen deblur, DBGAN {generator.config}, tiles of {args.tile} px, {args.device}")
    print(f"{'image':>11s} {'seconds':>8s} {'MP/s':>6s} {'peak RSS':>9s}")
    for row in rows:
        print(f"{row['width']:>5d}x{row['height']:<5d} {row['seconds']:8.1f} "
              f"{row['megapixels_per_s']:6.3f} {row['peak_rss_mb']:6.0f} MB")  # fmt: skip
    print(f"peak RSS, large / small: {result['rss_ratio_large_to_small']:.2f}")
    gpu = f", peak GPU memory {frame['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in frame else ""
    print(f"1280x720 frame in this process, after a warm-up: {frame['seconds']:.2f} s{gpu}")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
