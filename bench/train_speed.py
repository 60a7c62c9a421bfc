"""Training speed of both GANs: steps/s in float32, under bf16 autocast, and compiled.

Full-width networks as the training commands build them (BGAN: 64 channels, 9 blocks; DBGAN,
both architectures: rrdb, the published one, 64 channels, 16 blocks, growth 32, and resnet, 64
channels, 16 blocks; with its GAN term), batch 4, 128 px patches, on the bundled photos: BGAN's
blurry domain is those photos blurred by camera shake (blurgen's forward model), DBGAN's pairs a
make-dataset file of them. The perceptual loss's VGG-19 is randomly initialised (no weights can
be downloaded here; the speed does not depend on their values). After ``--warmup`` steps,
``--steps`` steps are timed (validation, samples and checkpoints fall outside them). float32 is
each network's baseline; the bf16 rows are the same training under bf16 autocast (``--bf16`` on
CUDA, ``--cpu-bf16`` on the CPU, which is fast only where the CPU has AVX-512 BF16 or AMX: the
JSON says whether it has); the compiled rows run the steps through ``torch.compile`` (float32;
the compilation happens in the untimed warm-up). Prints a table, writes JSON.

    python bench/train_speed.py --warmup 1 --steps 3   # CPU: ~25 minutes on 2 cores
    python bench/train_speed.py --device cuda          # on a GPU
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import torch_device, write_json

import blurgen
from blurgen.bgan.run import cpu_has_native_bf16
from blurgen.bgan.train import BganConfig, BganTrainer
from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer
from blurgen.bgan.vgg import VGG19Features
from blurgen.degradation import Degradation
from blurgen.io import read_image, write_png
from blurgen.kernels import MotionModel, motion_kernels_from
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

HERE = Path(__file__).resolve().parent


def blurry_photos(folder: Path, kernel_size: int) -> Path:
    """The bundled photos, each blurred by one camera-shake kernel, as PNGs in ``folder``."""
    folder.mkdir()
    for j, path in enumerate(bundled_images()):
        rng = np.random.default_rng([3, j])
        kernel = motion_kernels_from([rng], kernel_size, MotionModel())[0]
        blurred, _ = Degradation().apply(read_image(path), kernel, rng)
        write_png(folder / f"{path.stem}.png", blurred)
    return folder


# How each row trains: bf16 autocast or not, torch.compile or not.
VARIANTS = {
    "float32": {},
    "bf16": {"bf16": True, "cpu_bf16": True},
    "compiled": {"compile": True},
}


def steps_per_s(
    make: Callable[[int, dict], object], variant: dict, warmup: int, steps: int, device: str
) -> float:
    """Steps per second of a trainer ``make(iters, settings)``, timed over ``steps`` steps
    after ``warmup`` (which includes the compilation, for compiled rows); the run's last step
    (with its validation and checkpoint) is not timed."""
    trainer = make(warmup + steps + 1, {"bf16": False, "cpu_bf16": False, **variant})
    marks: list[float] = []

    def mark(_: int) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        marks.append(time.perf_counter())

    trainer.train(progress=mark)
    return steps / (marks[warmup + steps - 1] - marks[warmup - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", type=torch_device, default="cpu", help="cpu or cuda")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (at least 1)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument(
        "--networks",
        nargs="+",
        default=["BGAN", "resnet", "rrdb"],
        help="rows for these networks (BGAN, resnet, rrdb)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="float32 first: the other rows are compared with it",
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "train_speed.json")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.manual_seed(0)
        vgg = folder / "vgg.pth"
        torch.save(VGG19Features("conv5_4").state_dict(), vgg)
        sharp = bundled_images()[0].parent
        blurry = blurry_photos(folder / "blurry", kernel_size=31)
        pairs = folder / "pairs.h5"
        make_dataset(bundled_images(), pairs, DatasetConfig(patch=args.patch, per_image=8))
        common = {"batch": args.batch, "patch": args.patch, "vgg_weights": str(vgg)}
        runs = itertools.count()  # a fresh run folder for each trainer

        def deblur(arch: str) -> Callable[[int, dict], DeblurTrainer]:
            return lambda iters, settings: DeblurTrainer(
                DeblurConfig(data=(str(pairs),), arch=arch, iters=iters, checkpoint_every=iters,
                             sample_every=iters, val_every=iters, **common, **settings),
                folder / f"run{next(runs)}", device=args.device)  # fmt: skip

        networks = {
            "BGAN (64 ch, 9 blocks)": lambda iters, settings: BganTrainer(
                BganConfig(sharp=str(sharp), blurry=str(blurry), iters=iters,
                           checkpoint_every=iters, sample_every=iters, **common, **settings),
                folder / f"run{next(runs)}", device=args.device),
            "DBGAN resnet (64 ch, 16 blocks)": deblur("resnet"),
            "DBGAN rrdb (64 ch, 16 blocks)": deblur("rrdb"),
        }  # fmt: skip
        for name, make in networks.items():
            if not any(word in name for word in args.networks):
                continue
            baseline = None
            for variant in args.variants:
                rate = steps_per_s(make, VARIANTS[variant], args.warmup, args.steps, args.device)
                baseline = baseline or rate
                rows.append({"network": name, "precision": variant, "steps_per_s": rate,
                             "vs_float32": rate / baseline})  # fmt: skip
            print(f"{name}: done", flush=True)

    if args.device == "cuda":
        device_name = torch.cuda.get_device_name(0)
    else:
        device_name = platform.processor() or platform.machine()
    print(f"training steps/s, batch {args.batch} of {args.patch} px, {args.device} "
          f"({device_name}, {os.cpu_count()} cores)")  # fmt: skip
    print(f"{'network':31s} {'variant':>17s} {'steps/s':>8s} {'vs float32':>11s}")
    for row in rows:
        print(f"{row['network']:31s} {row['precision']:>17s} {row['steps_per_s']:8.3f} "
              f"{row['vs_float32']:10.2f}x")  # fmt: skip
    rates = {(row["network"].split()[1], row["precision"]): row["steps_per_s"] for row in rows}
    for variant in args.variants:
        if ("rrdb", variant) in rates and ("resnet", variant) in rates:
            ratio = rates["rrdb", variant] / rates["resnet", variant]
            print(f"rrdb / resnet, {variant}: {ratio:.2f}x the steps/s")
    native = args.device == "cuda" or cpu_has_native_bf16()
    if not native:
        print("this CPU has no native bf16 (AVX-512 BF16 or AMX): its bf16 rows are emulated")
    result = {
        "benchmark": "train_speed",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__,
        "torch_version": torch.__version__,
        "device": args.device, "device_name": device_name, "cpu_count": os.cpu_count(),
        "native_bf16": native,
        "batch": args.batch, "patch": args.patch, "warmup": args.warmup, "steps": args.steps,
        "vgg": "randomly initialised (speed does not depend on the weights)",
        "rows": rows,
    }  # fmt: skip
    write_json(args.json, result)


if __name__ == "__main__":
    main()
