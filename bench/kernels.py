"""Kernel generation speed: blurgen's vectorised generator against a per-kernel Python loop.

Both make the same kernels (the loop is the scalar float64 reference the tests check against),
measured in the same run, so the ratio is meaningful on a noisy machine. Drawing each kernel's
randomness on the host (one NumPy generator per kernel, which keeps the CPU and GPU kernels
identical) is timed alone too: no generator of this model can beat the worker count divided by
that time, so it bounds the speed-up over the loop on this machine. Prints a table and writes
JSON.

    python bench/kernels.py                       # 4096 kernels of 64 x 64
    python bench/kernels.py --n 20000 --json out.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import run_record, write_json

from blurgen.backend import cuda_status
from blurgen.kernels import MotionModel, motion_kernels
from blurgen.kernels.bank import BankConfig, write_bank
from blurgen.kernels.trajectory import draw_trajectories, trajectory_rngs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from scalar_reference import reference_kernel  # noqa: E402


def best_of(repeat: int, work) -> float:
    """Shortest wall time of ``repeat`` runs of ``work()``, in seconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def python_loop(n: int, size: int, seed: int) -> None:
    """One kernel at a time: draw its randomness, integrate and splat in scalar Python."""
    model = MotionModel()
    for i in range(n):
        draws = draw_trajectories(trajectory_rngs(seed, i, 1), model, size)
        reference_kernel(draws, 0, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="kernels per timed run")
    parser.add_argument("--size", type=int, default=64, help="kernel size in px")
    parser.add_argument("--loop-n", type=int, default=64, help="kernels for the Python loop")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="bank processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "kernels.json")
    args = parser.parse_args()

    rows = []

    def record(name: str, kernels: int, seconds: float, note: str = "") -> None:
        rows.append({"name": name, "kernels": kernels, "seconds": seconds,
                     "kernels_per_s": kernels / seconds, "note": note})  # fmt: skip

    # Warm-up: the first use of fresh memory costs far more than steady state on some VMs.
    motion_kernels(1024, args.size, seed=99)

    loop_s = best_of(1, lambda: python_loop(args.loop_n, args.size, 0))
    record("python loop (scalar reference)", args.loop_n, loop_s, "one kernel at a time")
    numpy_s = best_of(args.repeat, lambda: motion_kernels(args.n, args.size, seed=0))
    record("blurgen numpy", args.n, numpy_s, f"{os.cpu_count()} cores available")
    with tempfile.TemporaryDirectory() as folder:

        def bank(n: int, workers: int) -> None:
            config = BankConfig("motion", n, args.size)
            write_bank(Path(folder) / "bank.h5", config, workers=workers, overwrite=True)

        seconds = best_of(args.repeat, lambda: bank(args.n, 1))
        record("blurgen bank (HDF5), 1 process", args.n, seconds, "generate + write")
        # Worker processes start in about a second, so they get a longer job to amortise it.
        many = 8 * args.n
        seconds = best_of(1, lambda: bank(many, args.workers))
        record(f"blurgen bank (HDF5), {args.workers} workers", many, seconds, "incl. process start")
    model = MotionModel()
    draw_s = best_of(
        args.repeat, lambda: draw_trajectories(trajectory_rngs(0, 0, args.n), model, args.size)
    )
    ceiling = args.workers * args.n / draw_s
    ok, reason = cuda_status()
    if ok:
        import cupy

        def gpu() -> None:
            motion_kernels(args.n, args.size, seed=0, device="cuda")
            cupy.cuda.Device().synchronize()

        gpu()
        record("blurgen cuda", args.n, best_of(args.repeat, gpu), reason)

    loop_rate = rows[0]["kernels_per_s"]
    print(f"{'generator':34s} {'kernels':>8s} {'seconds':>9s} {'kernels/s':>11s} {'vs loop':>8s}")
    for row in rows:
        row["speedup_vs_loop"] = row["kernels_per_s"] / loop_rate
        print(f"{row['name']:34s} {row['kernels']:8d} {row['seconds']:9.3f} "
              f"{row['kernels_per_s']:11,.0f} {row['speedup_vs_loop']:7.0f}x")  # fmt: skip
    print(f"ceiling: drawing the host randomness alone takes {draw_s / args.n * 1e6:.1f} us a "
          f"kernel, so at most {ceiling:,.0f} kernels/s with {args.workers} workers, "
          f"{ceiling / loop_rate:.0f}x the loop")  # fmt: skip
    if not ok:
        print(f"cuda: skipped ({reason})")

    result = {
        **run_record("kernels"),
        "size": args.size,
        "numpy_version": np.__version__,
        "cuda": reason,
        "rows": rows,
        "randomness_us_per_kernel": draw_s / args.n * 1e6,
        "ceiling_kernels_per_s": ceiling,
        "ceiling_vs_loop": ceiling / loop_rate,
    }
    write_json(args.json, result)


if __name__ == "__main__":  # worker processes import this module
    main()
