"""Dataset speed and memory: blurgen make-dataset against a naive script of the same model.

The naive baseline does what public scripts do, one pair at a time: a per-kernel Python loop
for the trajectory (the scalar reference the tests use), per-channel
scipy.signal.fftconvolve, and one PNG per image. Both run in this run, on the bundled photos;
make-dataset with its workers as threads (the default) and as processes, start-up included,
then with sensor noise on, then with the camera-shake preset (its 101 px kernels, its noise and
JPEG; the noise's share of its time profiled too), then on 12-megapixel JPEG photos (time, and
peak memory in a fresh process).
With a working CUDA device, make-dataset also runs with ``device="cuda"``, after a warm-up run
(CuPy compiles its kernels and plans its FFTs once a process), on ``--cuda-pairs`` pairs with
one thread, with ``--cuda-workers`` threads sharing the GPU and with as many processes (a CUDA
context each), and once more with the threads and the device's arithmetic skipped (transfers and
all the host's work kept): the rate the host allows threads, whatever the GPU. The profile's
HDF5 write time bounds every device: one thread writes the file. Peak memory is measured in
fresh processes for two dataset sizes. The convolution alone (one crop by one kernel, blurgen's
FFT path) is timed too: no pipeline that does a true 2-D convolution per pair can beat
``workers`` divided by that time, so it bounds the speed-up any pipeline can reach over the
naive script on this machine. Right before each make-dataset run, ``workers`` threads doing
nothing but that convolution, once per pair, make as many pairs: the convolution-only rate,
which each run is divided by (the machine's speed drifts from minute to minute, so a ratio of
runs far apart in time says little). The runs on the bundled photos (threads, processes, noise
on, camera-shake) are repeated (``--repeat``) in rotation; the table gives medians. Prints a
table, writes JSON.

    python bench/make_dataset.py
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import cv2
import numpy as np
from common import run_record, write_json

import blurgen
from blurgen.backend import cuda_status
from blurgen.degradation import Degradation
from blurgen.io import Photo, read_image
from blurgen.kernels import MotionModel, motion_kernels
from blurgen.kernels.trajectory import draw_trajectories
from blurgen.pipeline import EXECUTORS, DatasetConfig, bundled_images, make_dataset
from blurgen.presets import load

HERE = Path(__file__).resolve().parent
# The large sources' size (height, width): a 12-megapixel camera's.
LARGE = (3000, 4000)
# The noisy row's levels (sampled per pair from these ranges).
NOISE = {"shot": (0.001, 0.004), "read": (0.002, 0.01)}
sys.path.insert(0, str(HERE.parent / "tests"))
from scalar_reference import reference_kernel  # noqa: E402

RSS_CHILD = """
import resource, sys
from blurgen.pipeline import DatasetConfig, bundled_images, expand_sources, make_dataset
if __name__ == "__main__":
    pairs, patch, kernel, workers, executor, out, *folder = map(str, sys.argv[1:])
    sources = expand_sources(folder) if folder else bundled_images()
    per_image = -(-int(pairs) // len(sources))
    config = DatasetConfig(patch=int(patch), per_image=per_image, kernel_size=int(kernel))
    summary = make_dataset(sources, out, config, workers=int(workers), executor=executor)
    # This process's own peak (VmHWM, kB): its ru_maxrss would start from the peak of the
    # process that started it (Linux keeps it across fork and exec). The workers' figure does
    # include the peak of this process when it started them, so it is an upper bound.
    status = open("/proc/self/status").read().split()
    own = int(status[status.index("VmHWM:") + 1])
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(summary["pairs"], own, workers_peak)
"""


def naive(sources: list[Path], pairs: int, patch: int, size: int, folder: Path) -> float:
    """Seconds for ``pairs`` pairs made one at a time, the way public scripts do."""
    # Imported here, not with the module: spawned workers import this script again, and
    # SciPy's signal module would add most of a second to each one's start.
    import scipy.signal

    began = time.perf_counter()
    images = [read_image(p) for p in sources]
    usable = [im for im in images if min(im.shape[:2]) >= patch + size - 1]
    model = MotionModel()
    for n in range(pairs):
        rng = np.random.default_rng([0, n])
        kernel = reference_kernel(draw_trajectories([rng], model, size), 0, size)
        image = usable[n % len(usable)]
        y = rng.integers(0, image.shape[0] - patch - size + 2)
        x = rng.integers(0, image.shape[1] - patch - size + 2)
        crop = image[y : y + patch + size - 1, x : x + patch + size - 1]
        blurred = np.stack(
            [scipy.signal.fftconvolve(crop[..., c], kernel, mode="valid") for c in range(3)], -1
        )
        o = size - 1 - size // 2
        sharp = crop[o : o + patch, o : o + patch]
        for name, image_out in (("blur", blurred), ("sharp", sharp)):
            pixels = np.rint(np.clip(image_out, 0, 1) * 255).astype(np.uint8)[..., ::-1]
            cv2.imwrite(str(folder / f"{name}_{n:06d}.png"), pixels)
    return time.perf_counter() - began


def one_convolution(patch: int, size: int) -> Callable[[], object]:
    """A call that makes one valid convolution of a (P+K-1)² RGB crop by a K×K kernel
    (blurgen's FFT path), the cost no pair can avoid."""
    side = patch + size - 1
    crop = np.random.default_rng(0).random((1, side, side, 3), dtype=np.float32)
    kernel = motion_kernels(1, size, seed=0)
    return lambda: blurgen.blur(crop, kernel)


def best_seconds(call: Callable[[], object], repeat: int) -> float:
    """The best of ``repeat`` timings of ``call()``, seconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return min(times)


def convolution_seconds(patch: int, size: int, repeat: int = 20) -> float:
    """Best time of :func:`one_convolution`, seconds."""
    return best_seconds(one_convolution(patch, size), repeat)


def opening_seconds(path: Path, repeat: int = 3) -> float:
    """Best time to open a photo as make-dataset does (read, decode, fingerprint), seconds."""
    return best_seconds(lambda: Photo.open(path), repeat)


def convolution_only_rate(patch: int, size: int, pairs: int, workers: int) -> float:
    """Pairs/s of ``workers`` threads that do nothing but :func:`one_convolution` once per
    pair, ``pairs`` in all."""
    convolution = one_convolution(patch, size)
    shares = [pairs // workers + (w < pairs % workers) for w in range(workers)]

    def convolve(count: int) -> None:
        for _ in range(count):
            convolution()

    with ThreadPoolExecutor(workers) as pool:
        began = time.perf_counter()
        list(pool.map(convolve, shares))
        return pairs / (time.perf_counter() - began)


def timed_run(
    sources: list[Path], out: Path, config: DatasetConfig, workers: int,
    executor: str = "threads", device: str = "cpu",
) -> dict:  # fmt: skip
    """One make-dataset run, start-up included, and on the CPU the convolution-only rate
    measured right before it for as many pairs: pairs, seconds, pairs/s and their ratio."""
    pairs = len(sources) * config.per_image
    rate = None
    if device == "cpu":
        rate = convolution_only_rate(config.patch, config.kernel_size, pairs, workers)
    began = time.perf_counter()
    summary = make_dataset(sources, out, config, workers=workers, executor=executor,
                           device=device, overwrite=True)  # fmt: skip
    seconds = time.perf_counter() - began
    out.unlink()
    made = summary["pairs"] / seconds
    return {"pairs": summary["pairs"], "seconds": seconds, "pairs_per_s": made,
            "convolution_only_pairs_per_s": rate,
            "of_convolution_only": made / rate if rate else None}  # fmt: skip


def cuda_rows(
    sources: list[Path], config: DatasetConfig, folder: Path, pairs: int, workers: int
) -> list[dict]:
    """make-dataset on the GPU after a warm-up run: ``pairs`` pairs with one thread, with
    ``workers`` threads sharing the device, and with ``workers`` processes (start-up
    included: each imports CuPy and makes its CUDA context); then the threads with the
    device's arithmetic skipped."""
    timed_run(sources[:1], folder / "warm.h5", replace(config, per_image=32), 1, device="cuda")
    settings = replace(config, per_image=-(-pairs // len(sources)))
    rows = []
    for threads in dict.fromkeys((1, workers)):
        made = timed_run(sources, folder / "cuda.h5", settings, threads, device="cuda")
        name = f"blurgen make-dataset, cuda, {threads} thread{'s' * (threads > 1)}"
        rows.append({"name": name, **made})
    if workers > 1:
        made = timed_run(sources, folder / "cuda.h5", settings, workers, "processes", "cuda")
        rows.append({"name": f"blurgen make-dataset, cuda, {workers} processes", **made})
    with device_arithmetic_skipped(config.kernel_size):
        made = timed_run(sources, folder / "host.h5", settings, workers, device="cuda")
    name = f"cuda, {workers} thread{'s' * (workers > 1)}, host's work only"
    rows.append({"name": name, **made})
    return rows


@contextlib.contextmanager
def device_arithmetic_skipped(kernel_size: int) -> Iterator[None]:
    """make-dataset's CUDA path with the device's arithmetic skipped: trajectories not
    integrated and each kernel a copy of one of ``kernel_size`` px drawn beforehand (so that
    compressing it costs what a real one does), each batch's decoding, convolution and encoding
    replaced by zeros of the output's shape. Transfers, turns and the host's work (photos,
    crops, the randomness, compression, the writer) are kept."""
    import cupy

    from blurgen.kernels import _cuda, motion

    kernel = motion_kernels(1, kernel_size, seed=0)[0]

    def integrate(draws: Any) -> Any:
        return cupy.zeros((len(draws), 1), cupy.complex128)

    def rasterise(positions: Any, points: Any, size: int) -> Any:
        return cupy.asarray(np.broadcast_to(kernel, (len(points), *kernel.shape)))

    def render_batch(self: Degradation, sharp: np.ndarray, kernels: Any, params: list,
                     turn: Any = None) -> np.ndarray:  # fmt: skip
        n, height, width, channels = sharp.shape
        size = kernels.shape[-1]
        with turn or contextlib.nullcontext():
            cupy.asarray(sharp)
            out = cupy.zeros((n, height - size + 1, width - size + 1, channels), cupy.uint8)
            return out.get()

    with (
        mock.patch.object(_cuda, "integrate_trajectories_cuda", integrate),
        mock.patch.object(motion, "rasterise", rasterise),
        mock.patch.object(Degradation, "render_batch", render_batch),
    ):
        yield


# Where a pair's time goes: the functions that make up each stage (module, function name).
STAGES = {
    "read and decode the sources": [("blurgen/io.py", "open")],
    "kernels": [("blurgen/sample.py", "draw")],
    "crops and flips": [("blurgen/io.py", "region"), ("blurgen/methods/base.py", "oriented")],
    "encoded -> linear": [
        ("blurgen/degradation.py", "_decode"),
        ("blurgen/degradation.py", "_lookup"),
    ],
    "convolution": [("blurgen/forward.py", "blur")],
    "noise": [("blurgen/noise.py", "poisson_gaussian")],
    "linear -> 8-bit encoded": [("blurgen/degradation.py", "_to_bytes")],
    "JPEG": [("blurgen/noise.py", "jpeg")],
    "HDF5 write": [("blurgen/h5.py", "write")],
}


def stage_breakdown(sources: list[Path], config: DatasetConfig, folder: Path) -> dict:
    """Seconds per stage of make-dataset in one process (cProfile; its overhead included in
    every stage alike), and the whole run's."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.runcall(make_dataset, sources, folder / "profiled.h5", config, workers=1)
    total = time.perf_counter() - began
    (folder / "profiled.h5").unlink()
    stats = pstats.Stats(profile).stats
    stages = {}
    for stage, functions in STAGES.items():
        stages[stage] = sum(
            cumulative
            for (path, _, name), (_, _, _, cumulative, _) in stats.items()
            for module, wanted in functions
            if name == wanted and module in path.replace("\\", "/")
        )
    stages["everything else"] = total - sum(stages.values())
    return {"seconds": total, "stages": stages}


def peak_rss(
    pairs: int, patch: int, size: int, workers: int, executor: str, folder: Path,
    sources: Path | None = None,
) -> tuple[int, int]:  # fmt: skip
    """Peak RSS in MB of the writing process (with threads: the whole job) and of its busiest
    worker process, for one dataset of the bundled photos or of the photos in ``sources``."""
    out = folder / f"rss_{pairs}.h5"
    options = (pairs, patch, size, workers, executor, out, *([sources] if sources else []))
    command = [sys.executable, "-c", RSS_CHILD, *map(str, options)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    out.unlink()
    _, own, children = result.stdout.split()
    return int(own) // 1024, int(children) // 1024


def large_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """``count`` JPEG photos (quality 90) of ``size`` (height, width) px, the bundled photos
    scaled up in turn (their content does not change the time a pair takes)."""
    folder.mkdir()
    photos = [cv2.imread(str(p)) for p in bundled_images()]
    paths = []
    for i in range(count):
        image = cv2.resize(photos[i % len(photos)], size[::-1], interpolation=cv2.INTER_CUBIC)
        paths.append(folder / f"large_{i:03d}.jpg")
        cv2.imwrite(str(paths[-1]), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=800, help="pairs for the blurgen rows")
    parser.add_argument("--naive-pairs", type=int, default=24, help="pairs for the baseline")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--kernel-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rss-pairs", type=int, nargs=2, default=[1000, 10000])
    parser.add_argument("--rss-patch", type=int, default=128, help="patch for the memory rows")
    parser.add_argument("--large", type=int, default=12, help="12-megapixel JPEG sources (0: none)")
    parser.add_argument("--large-per-image", type=int, nargs="+", default=[8, 64],
                        help="pairs per large photo, a row each")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each bundled-photo row, in rotation (medians)")  # fmt: skip
    parser.add_argument("--cuda-pairs", type=int, default=8000, help="pairs for the CUDA rows")
    parser.add_argument("--cuda-workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="threads sharing the GPU in the second CUDA row")  # fmt: skip
    parser.add_argument("--json", type=Path, default=HERE / "results" / "make_dataset.json")
    args = parser.parse_args()

    sources = bundled_images()
    usable = [
        p for p in sources if min(read_image(p).shape[:2]) >= args.patch + args.kernel_size - 1
    ]
    per_image = -(-args.pairs // len(usable))
    config = DatasetConfig(patch=args.patch, per_image=per_image, kernel_size=args.kernel_size)
    noisy = replace(config, degradation=Degradation(shot=NOISE["shot"], read=NOISE["read"]))
    cuda, cuda_reason = cuda_status()
    runs = [
        (f"blurgen make-dataset, {args.workers} {executor}", config, "cpu", args.workers, executor)
        for executor in EXECUTORS
    ]
    runs.append((f"the same, {args.workers} threads, noise on", noisy, "cpu", args.workers,
                 "threads"))  # fmt: skip
    shake = load("camera-shake", patch=args.patch, per_image=per_image)
    runs.append((f"camera-shake preset (K={shake.kernel_size}), {args.workers} threads", shake,
                 "cpu", args.workers, "threads"))  # fmt: skip
    rows = []
    # A process's first convolution-only rate comes out 10-15 % low (505-512 pairs/s against
    # 535-606 for the next four, twice), which flattered the first run's ratio: warm up first.
    convolution_only_rate(args.patch, args.kernel_size, 100, args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        repeats: list[list[dict]] = [[] for _ in runs]
        for _, (k, (_, settings, device, workers, executor)) in itertools.product(
            range(args.repeat), enumerate(runs)
        ):
            made = timed_run(usable, folder / "pairs.h5", settings, workers, executor, device)
            repeats[k].append(made)
        for (name, _, device, *_), made in zip(runs, repeats, strict=True):
            ratio = None
            if device == "cpu":
                ratio = statistics.median(r["of_convolution_only"] for r in made)
            rows.append({"name": name, "pairs": made[0]["pairs"], "runs": made,
                         "seconds": statistics.median(r["seconds"] for r in made),
                         "of_convolution_only": ratio})  # fmt: skip
        if cuda:
            rows += cuda_rows(usable, config, folder, args.cuda_pairs, args.cuda_workers)
        large = large_photos(folder / "large", args.large, LARGE)
        for per_large in args.large_per_image if large else []:
            settings = replace(config, per_image=per_large)
            made = timed_run(large, folder / "large.h5", settings, args.workers)
            own, _ = peak_rss(made["pairs"], args.patch, args.kernel_size, args.workers,
                              "threads", folder, folder / "large")  # fmt: skip
            name = f"12 MP JPEGs, {per_large} pairs each, {args.workers} threads"
            # If nothing cost anything but opening the photos and one convolution a pair.
            opening = opening_seconds(large[0])
            convolving = convolution_seconds(args.patch, args.kernel_size)
            bound = 1 / (1 + opening / per_large / convolving)
            rows.append({"name": name, **made, "peak_mb": own, "opening_ms": opening * 1e3,
                         "opening_bound": bound})  # fmt: skip
        (folder / "naive").mkdir()
        seconds = naive(usable, args.naive_pairs, args.patch, args.kernel_size, folder / "naive")
        rows.append({"name": "naive script (one pair at a time)", "pairs": args.naive_pairs,
                     "seconds": seconds})  # fmt: skip
        convolution = convolution_seconds(args.patch, args.kernel_size)
        breakdown = stage_breakdown(usable, config, folder)
        shake_breakdown = stage_breakdown(usable, shake, folder)
        memory = []
        for executor, pairs in itertools.product(EXECUTORS, args.rss_pairs):
            own, worker = peak_rss(pairs, args.rss_patch, 31, args.workers, executor, folder)
            memory.append({"pairs": pairs, "patch": args.rss_patch, "kernel_size": 31,
                           "executor": executor,
                           "writer_mb": own, "worker_mb": worker})  # fmt: skip

    for row in rows:
        row["pairs_per_s"] = row["pairs"] / row["seconds"]
    for row in rows:
        row["speedup_vs_naive"] = row["pairs_per_s"] / rows[-1]["pairs_per_s"]
    speedup = rows[0]["speedup_vs_naive"]
    ceiling = args.workers / convolution
    ceiling_speedup = ceiling / rows[-1]["pairs_per_s"]
    for row in rows:
        row["fraction_of_ceiling"] = row["pairs_per_s"] / ceiling
    of_ceiling = rows[0]["fraction_of_ceiling"]
    print(f"P={args.patch}, K={args.kernel_size}, bundled photos, {os.cpu_count()} cores")
    print(f"{'':40s} {'pairs':>6s} {'seconds':>8s} {'pairs/s':>8s} {'vs naive':>9s} "
          f"{'of ceiling':>10s} {'of conv-only':>12s}")  # fmt: skip
    for row in rows:
        ratio = row.get("of_convolution_only")
        ratio = "" if ratio is None else f"{ratio:.2f}"
        print(f"{row['name']:40s} {row['pairs']:6d} {row['seconds']:8.2f} "
              f"{row['pairs_per_s']:8.1f} {row['speedup_vs_naive']:8.1f}x "
              f"{row['fraction_of_ceiling']:10.2f} {ratio:>12s}")  # fmt: skip
    print(f"of conv-only: pairs/s over those of {args.workers} threads doing nothing but the "
          f"convolution, measured right before each run (median of {args.repeat} runs for the "
          "bundled photos)")  # fmt: skip
    print(f"ceiling: the convolution alone takes {convolution * 1e3:.2f} ms a pair, so at most "
          f"{ceiling:.0f} pairs/s with {args.workers} workers, {ceiling_speedup:.1f}x the naive "
          f"script; make-dataset reaches {of_ceiling:.2f} of it with threads, "
          f"{rows[1]['fraction_of_ceiling']:.2f} with processes, "
          f"{rows[2]['fraction_of_ceiling']:.2f} with noise on")  # fmt: skip
    for row in rows:
        if "peak_mb" in row:
            print(f"{row['name']}: peak RSS {row['peak_mb']} MB (one process); opening a "
                  f"photo {row['opening_ms']:.1f} ms, so at most {row['opening_bound']:.2f} of "
                  "the convolution-only rate if nothing cost anything but opening the photos "
                  "and the convolution")  # fmt: skip
    pairs = rows[0]["pairs"]
    print(f"one process, profiled ({breakdown['seconds']:.1f} s): ms per pair and share")
    for stage, seconds in breakdown["stages"].items():
        print(f"  {stage:28s} {seconds / pairs * 1e3:7.2f} {seconds / breakdown['seconds']:6.1%}")
    shares = {stage: seconds / shake_breakdown["seconds"]
              for stage, seconds in shake_breakdown["stages"].items()}  # fmt: skip
    print(f"camera-shake preset, one process, profiled ({shake_breakdown['seconds']:.1f} s): "
          f"noise {shares['noise']:.1%}, convolution {shares['convolution']:.1%}, JPEG "
          f"{shares['JPEG']:.1%}")  # fmt: skip
    writing = breakdown["stages"]["HDF5 write"] / pairs
    print(f"one thread writes the file: at {writing * 1e3:.2f} ms a pair (profiled), no device "
          f"makes more than {1 / writing:.0f} pairs/s here")  # fmt: skip
    if cuda:
        print("host's work only: the CUDA path with the device's arithmetic skipped (the "
              "transfers kept), the most pairs/s this host allows its threads whatever the "
              "GPU (they share Python's lock; processes do not)")  # fmt: skip
    else:
        print(f"cuda: skipped ({cuda_reason})")
    for m in memory:
        where = f"one process {m['writer_mb']} MB"
        if m["executor"] == "processes":
            where = f"writer {m['writer_mb']} MB, busiest worker {m['worker_mb']} MB"
        print(f"peak RSS, {m['pairs']} pairs of {m['patch']} px, {m['executor']}: {where}")

    result = {
        **run_record("make_dataset"),
        "patch": args.patch, "kernel_size": args.kernel_size, "workers": args.workers,
        "rows": rows, "speedup": speedup, "memory": memory,
        "convolution_ms": convolution * 1e3, "ceiling_pairs_per_s": ceiling,
        "fraction_of_ceiling": of_ceiling, "profile": breakdown,
        "camera_shake_profile": shake_breakdown,
        "ceiling_vs_naive": ceiling_speedup,
        "writer_bound_pairs_per_s": pairs / breakdown["stages"]["HDF5 write"],
        "cuda": cuda_reason if cuda else f"skipped: {cuda_reason}",
    }  # fmt: skip
    write_json(args.json, result)


if __name__ == "__main__":
    main()
