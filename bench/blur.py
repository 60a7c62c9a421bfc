"""Blur speed: blurgen.blur against scipy.signal.fftconvolve and cv2.filter2D, same run.

Prints a table and writes JSON. All three compute the same convolution of a float32 RGB image
(cv2.filter2D with the flipped kernel, keeping the size; the others in valid mode). blurgen and
OpenCV run on every core (their defaults from a script's main thread) and on one thread. Then
whole photos (720p and 12 MP, a 64 px kernel, noise-free and with noise) rendered as `blurgen
blur` renders them, their strips blurred side by side on every core and one after another.

    python bench/blur.py
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import scipy.signal
from common import run_record, write_json

import blurgen
from blurgen import degradation as degradation_module
from blurgen.backend import cuda_status
from blurgen.degradation import Degradation
from blurgen.forward import fft_threads
from blurgen.kernels import motion_kernels
from blurgen.pipeline import DatasetConfig
from blurgen.sample import Synthesiser

HERE = Path(__file__).resolve().parent


def best_ms(repeat: int, work) -> float:
    """Shortest of ``repeat`` runs of ``work()``, in milliseconds, after one warm-up run."""
    work()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32, help="patches per batch")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "blur.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    image = rng.random((720, 1280, 3), dtype=np.float32)
    rows = []
    cores, opencv_threads = fft_threads(), cv2.getNumThreads()
    print(f"720x1280 RGB; 'all': blurgen on {cores} threads, OpenCV on {opencv_threads}")
    header = ("kernel", "blurgen all", "blurgen 1", "fftconvolve", "filter2D all", "filter2D 1",
              "vs faster", "all/1")  # fmt: skip
    widths = (8, 12, 10, 12, 13, 11, 10, 6)
    print(" ".join(f"{h:>{w}s}" for h, w in zip(header, widths, strict=True)))
    for size in (31, 64):
        kernel = motion_kernels(1, size, seed=1)[0]
        flipped = np.ascontiguousarray(kernel[::-1, ::-1])
        ours = best_ms(args.repeat, lambda k=kernel: blurgen.blur(image, k))
        ours_one = best_ms(args.repeat, lambda k=kernel: blurgen.blur(image, k, threads=1))
        fft = best_ms(
            args.repeat,
            lambda k=kernel: scipy.signal.fftconvolve(
                image, k[..., None], mode="valid", axes=(0, 1)
            ),
        )
        direct = best_ms(args.repeat, lambda k=flipped: cv2.filter2D(image, -1, k))
        cv2.setNumThreads(1)
        direct_one = best_ms(args.repeat, lambda k=flipped: cv2.filter2D(image, -1, k))
        cv2.setNumThreads(opencv_threads)
        ratio = ours / min(fft, direct)
        rows.append({"case": f"720x1280 K={size}", "blurgen_ms": ours, "threads": cores,
                     "blurgen_one_thread_ms": ours_one, "fftconvolve_ms": fft,
                     "filter2d_ms": direct, "filter2d_threads": opencv_threads,
                     "filter2d_one_thread_ms": direct_one,
                     "ratio_to_faster": ratio})  # fmt: skip
        print(f"{f'K={size}':8s} {ours:12.1f} {ours_one:10.1f} {fft:12.1f} {direct:13.1f} "
              f"{direct_one:11.1f} {ratio:9.2f}x {ours / ours_one:6.2f}")  # fmt: skip

    patches = []
    for size in (31, 64):
        side = 256 + size - 1
        batch = rng.random((args.batch, side, side, 3), dtype=np.float32)
        kernels = motion_kernels(args.batch, size, seed=2)
        ours = best_ms(args.repeat, lambda b=batch, k=kernels: blurgen.blur(b, k))

        def one_by_one(b: np.ndarray = batch, k: np.ndarray = kernels) -> None:
            for i in range(len(b)):
                scipy.signal.fftconvolve(b[i], k[i][..., None], mode="valid", axes=(0, 1))

        loop = best_ms(args.repeat, one_by_one)
        patches.append({"case": f"256x256 patches K={size}", "batch": args.batch,
                        "blurgen_patches_per_s": 1e3 * args.batch / ours,
                        "fftconvolve_loop_patches_per_s": 1e3 * args.batch / loop})  # fmt: skip
        ours_rate, loop_rate = 1e3 * args.batch / ours, 1e3 * args.batch / loop
        print(f"256x256 patches, K={size}: blurgen {ours_rate:,.0f}/s in batches of "
              f"{args.batch}; fftconvolve one by one {loop_rate:,.0f}/s")  # fmt: skip

    # Whole photos as `blurgen blur` renders them: strip by strip, from 8-bit values, the
    # strips blurred side by side on every core, noise and encoding in row order; against the
    # strips one after another (as before: only strips of CHANNEL_MIN_PIXELS or more take
    # threads, a channel each).
    whole = []
    settings = {"noise-free": Degradation(),
                "noise on": Degradation(shot=(0.001, 0.004), read=(0.002, 0.01))}  # fmt: skip
    for height, width in ((720, 1280), (3000, 4000)):
        photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for label, degradation in settings.items():
            synthesiser = Synthesiser(DatasetConfig(kernel_size=64, degradation=degradation))
            rngs, sizes = [np.random.default_rng(3)], [(height, width)]
            (record,), kernels = synthesiser.draw(rngs, sizes, None)
            render = functools.partial(synthesiser.render, photo, kernels[0], record,
                                       dtype=np.uint8)  # fmt: skip
            repeat = args.repeat if height * width < 4e6 else 3
            every = best_ms(repeat, render)
            with mock.patch.object(degradation_module, "fft_threads", lambda: 1):
                in_turn = best_ms(repeat, render)
            whole.append({"case": f"blurgen blur {height}x{width} K=64 {label}",
                          "side_by_side_ms": every, "in_turn_ms": in_turn})  # fmt: skip
            print(f"blurgen blur's render, {height}x{width}, K=64, {label}: strips side by side "
                  f"{every:.0f} ms, in turn {in_turn:.0f} ms ({in_turn / every:.2f}x)")  # fmt: skip

    ok, reason = cuda_status()
    if ok:
        import cupy

        for size in (31, 64):
            gpu_image = cupy.asarray(image)
            gpu_kernel = cupy.asarray(motion_kernels(1, size, seed=1)[0])

            def gpu(image: object = gpu_image, kernel: object = gpu_kernel) -> None:
                blurgen.blur(image, kernel)
                cupy.cuda.Device().synchronize()

            ms = best_ms(args.repeat, gpu)
            rows.append({"case": f"720x1280 K={size} cuda", "blurgen_ms": ms, "device": reason})
            print(f"cuda K={size}: {ms:.2f} ms ({reason})")
    else:
        print(f"cuda: skipped ({reason})")

    result = {
        **run_record("blur"),
        "cuda": reason,
        "images": rows,
        "patches": patches,
        "whole_photos": whole,
    }
    write_json(args.json, result)


if __name__ == "__main__":
    main()
