"""Does the deblurring network learn? A CPU run on make-dataset pairs, scored on held-out pairs.

Pairs are made with camera-shake kernels (full exposure by default: a blur of steady strength)
from the left three quarters of the bundled photos for training and from the right quarters for
validation (or, with ``--held-out photo``, from four photos and the fifth); ``--extra DIR`` adds
more photos to the training side, whole. A narrow DBGAN is trained on the content loss (L1 by
default, ``--content mse`` for the paper's; the perceptual and GAN terms are off unless
weighted; the VGG-19 is randomly initialised, as no pretrained weights can be downloaded here).
PSNR is reported for training and held-out pairs, before and after training, two ways: the mean
of per-pair PSNRs (what validation reports) and the PSNR of the pooled squared error, which
smooth patches do not dominate. Held-out pairs are 96 px, as large as the right quarters allow:
on smaller ones more pairs are nearly flat, and their PSNR measures small offsets more than
deblurring. The held-out images are also blurred whole (four kernels each) and scored by
``blurgen evaluate --pairs`` on the trained checkpoint, as a user would score a test set; the
first of them, deblurred by ``blurgen deblur``, is drawn beside the JSON. The mean brightness
change the held-out pairs need and the one the network makes are printed too (blur in linear
light brightens textured patches; ``--space naive`` blurs the sRGB values and has no such
offset). Prints, writes JSON and the picture.

The network is the default rrdb at a width that trains in CPU minutes (32 channels, 2 blocks,
growth 16); ``--arch resnet --blocks 4`` is the lighter network the earlier figures used.

    python bench/deblur_learns.py          # minutes on 2 cores
    python bench/deblur_learns.py --arch resnet --blocks 4 --channels 64 --iters 4000 --cpu-bf16
    python bench/deblur_learns.py --device cuda --channels 64 --blocks 16 --growth 32  # full"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import torch_device, write_json

import blurgen
from blurgen.bgan.config import CONTENT_LOSSES, DEBLUR_ARCHS
from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer
from blurgen.bgan.vgg import VGG19Features
from blurgen.cli.main import cli
from blurgen.degradation import Degradation
from blurgen.forward import valid_offset
from blurgen.io import read_image, write_png
from blurgen.kernels import MotionModel, motion_kernels_from
from blurgen.pipeline import DatasetConfig, bundled_images, expand_sources, make_dataset
from blurgen.torch import PairsDataset

HERE = Path(__file__).resolve().parent


def split(folder: Path, held_out: str) -> tuple[list[Path], list[Path]]:
    """Training and held-out source images: the left three quarters and the right quarter of
    each bundled photo (``"regions"``), or four photos and the fifth (``"photo"``)."""
    photos = bundled_images()
    if held_out == "photo":
        chelsea = [p for p in photos if p.stem == "chelsea"]
        return [p for p in photos if p not in chelsea], chelsea
    training, held = [], []
    for path in photos:
        image = read_image(path)
        cut = image.shape[1] * 3 // 4
        training.append(write_png(folder / f"{path.stem}_left.png", image[:, :cut]))
        held.append(write_png(folder / f"{path.stem}_right.png", image[:, cut:]))
    return training, held


def extra_photos(folder: Path | None) -> list[Path]:
    """Images under ``folder`` (as make-dataset finds them) that are not bundled photos."""
    if folder is None:
        return []
    bundled = {p.stem for p in bundled_images()}
    return [p for p in expand_sources([folder]) if p.stem not in bundled]


def whole_pairs(images: list[Path], folder: Path, config: DatasetConfig, per_image: int) -> Path:
    """Blur each image whole ``per_image`` times (kernel and noise of image ``j``, draw ``k``
    from ``default_rng([2, j, k])``) and write the pairs in the GoPro layout that ``blurgen
    evaluate --pairs`` reads: ``blur/`` and ``sharp/`` (cropped to the valid blur)."""
    for part in ("blur", "sharp"):
        (folder / part).mkdir(parents=True)
    for j, path in enumerate(images):
        sharp = read_image(path)
        o = valid_offset(config.kernel_size)
        for k in range(per_image):
            rng = np.random.default_rng([2, j, k])
            kernel = motion_kernels_from([rng], config.kernel_size, config.motion)[0]
            blurred, _ = config.degradation.apply(sharp, kernel, rng)
            height, width = blurred.shape[:2]
            write_png(folder / "blur" / f"{path.stem}_{k}.png", blurred)
            write_png(folder / "sharp" / f"{path.stem}_{k}.png",
                      sharp[o : o + height, o : o + width])  # fmt: skip
    return folder


def evaluate(checkpoint: Path, pairs: Path, device: str) -> dict:
    """``blurgen evaluate --pairs`` on a GoPro-layout folder: its JSON (per-image and mean)."""
    report = pairs / "evaluate.json"
    cli.main(["evaluate", "--checkpoint", str(checkpoint), "--pairs", str(pairs),
              "--json", str(report), "--device", device], standalone_mode=False)  # fmt: skip
    return json.loads(report.read_text())


def picture(checkpoint: Path, pairs: Path, name: str, path: Path, device: str) -> Path:
    """Blurred | deblurred (by ``blurgen deblur``) | sharp for the pair ``name`` of a GoPro-layout
    folder, side by side, written as a PNG at ``path``."""
    out = pairs / "deblurred"
    blurred = pairs / "blur" / name
    cli.main(["deblur", "--checkpoint", str(checkpoint), str(blurred), "-o", str(out), "-q",
              "--device", device], standalone_mode=False)  # fmt: skip
    panels = [read_image(blurred), read_image(out / name), read_image(pairs / "sharp" / name)]
    gap = np.ones((panels[0].shape[0], 4, 3), np.float32)
    return write_png(path, np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))


@torch.no_grad()
def scores(generator: torch.nn.Module, pairs: PairsDataset, index: np.ndarray, device: str) -> dict:
    """Mean per-pair PSNR and pooled PSNR (dB) of the blurred inputs and of the outputs, and
    the mean brightness change each pair needs (sharp - blurred) and the one the network makes
    (output - blurred), over all pairs and over the flattest quarter (highest input PSNR)."""
    generator.eval()
    errors: dict[str, list[float]] = {"input": [], "output": []}
    needed, applied = [], []
    for i in index:
        item = pairs[int(i)]
        output = generator(item["blurred"][None].to(device))[0].float().cpu()
        errors["input"].append(((item["blurred"] - item["sharp"]) ** 2).mean().item())
        errors["output"].append(((output - item["sharp"]) ** 2).mean().item())
        needed.append((item["sharp"] - item["blurred"]).mean().item())
        applied.append((output - item["blurred"]).mean().item())
    generator.train()
    result = {}
    for name, mse in errors.items():
        mse = np.maximum(mse, 1e-12)
        result[f"{name}_mean_psnr"] = float(np.mean(-10 * np.log10(mse)))
        result[f"{name}_pooled_psnr"] = float(-10 * np.log10(np.mean(mse)))
    flattest = np.argsort(errors["input"])[: max(1, len(index) // 4)]
    for name, offsets in (("needed", np.array(needed)), ("applied", np.array(applied))):
        result[f"{name}_offset"] = float(offsets.mean())
        result[f"{name}_offset_flattest"] = float(offsets[flattest].mean())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--kernel-size", type=int, default=13)
    parser.add_argument("--perceptual-weight", type=float, default=0.0)
    parser.add_argument(
        "--adversarial-weight",
        type=float,
        default=0.0,
        help="weight of the relativistic least-squares GAN term (0: no GAN; the paper's: 0.01)",
    )
    parser.add_argument(
        "--content", choices=CONTENT_LOSSES, default="l1", help="pixel loss to the sharp image"
    )
    parser.add_argument("--arch", choices=DEBLUR_ARCHS, default="rrdb", help="the generator")
    parser.add_argument("--channels", type=int, default=32, help="network width")
    parser.add_argument("--blocks", type=int, default=2, help="RRDB or residual blocks")
    parser.add_argument("--growth", type=int, default=16, help="rrdb: dense layers' width")
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate")
    parser.add_argument("--batch", type=int, default=8, help="training pairs per step")
    parser.add_argument("--patch", type=int, default=48, help="training crop size, px (<= 64)")
    parser.add_argument(
        "--space",
        choices=("srgb", "naive"),
        default="srgb",
        help="blur in linear light (srgb, the default) or on the sRGB values (naive)",
    )
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[1.0],
        help="exposure fractions of the motion kernels",
    )
    parser.add_argument("--per-image", type=int, default=1024, help="training pairs per photo")
    parser.add_argument(
        "--no-transpose",
        action="store_true",
        help="flip the training crops only, without the random transposes",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="training seed (the pairs stay the same)"
    )
    parser.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="train under bf16 autocast on the CPU (train-deblur --cpu-bf16; about twice as "
        "fast on CPUs with AVX-512 BF16 or AMX); scoring stays float32",
    )
    parser.add_argument(
        "--held-out",
        choices=("regions", "photo"),
        default="regions",
        help="score on the right quarter of every photo, or on a whole photo "
        "(chelsea) that training never sees",
    )
    parser.add_argument(
        "--extra",
        type=Path,
        help="folder of more sharp photos to train on whole (names of bundled photos are left "
        "out, so none of the held-out pixels is trained on)",
    )
    parser.add_argument(
        "--device", type=torch_device, default="cpu", help="where to train and score: cpu or cuda"
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "deblur_learns.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        training, held_out = split(folder, args.held_out)
        extra = extra_photos(args.extra)
        training += extra
        motion = MotionModel(fractions=tuple(args.fractions))
        pairs = DatasetConfig(patch=64, per_image=args.per_image, kernel_size=args.kernel_size,
                              motion=motion, degradation=Degradation(space=args.space))  # fmt: skip
        make_dataset(training, folder / "train.h5", pairs, seed=0)
        held_pairs = replace(pairs, patch=96, per_image=32)
        make_dataset(held_out, folder / "val.h5", held_pairs, seed=1)
        whole = whole_pairs(held_out, folder / "whole", pairs, per_image=4)
        torch.manual_seed(0)
        torch.save(VGG19Features("conv5_4").state_dict(), folder / "vgg.pth")
        config = DeblurConfig(
            data=(str(folder / "train.h5"),), val=(str(folder / "val.h5"),), iters=args.iters,
            batch=args.batch, patch=args.patch, lr=args.lr, content_loss=args.content,
            seed=args.seed, transpose=not args.no_transpose, cpu_bf16=args.cpu_bf16,
            perceptual_weight=args.perceptual_weight, gan=args.adversarial_weight > 0,
            adversarial_weight=args.adversarial_weight,
            arch=args.arch, channels=args.channels, blocks=args.blocks, growth=args.growth,
            vgg_layer="conv2_2", vgg_weights=str(folder / "vgg.pth"),
            checkpoint_every=args.iters, sample_every=args.iters, log_every=50,
            val_every=args.iters,
        )  # fmt: skip
        trainer = DeblurTrainer(config, folder / "run", device=args.device)
        sets = {"train": (PairsDataset(config.data), trainer.train_index[::8]),
                "held-out": (trainer.val_data, trainer.val_index)}  # fmt: skip
        before = {
            name: scores(trainer.generator, *data, args.device) for name, data in sets.items()
        }
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
        after = {name: scores(trainer.generator, *data, args.device) for name, data in sets.items()}
        checkpoint = folder / "run" / "checkpoints" / "latest.pt"
        images = evaluate(checkpoint, whole, args.device)
        args.json.parent.mkdir(parents=True, exist_ok=True)  # the picture goes beside it
        first = images["pairs"][0]["name"]
        shown = picture(checkpoint, whole, first, args.json.with_suffix(".png"), args.device)

    result = {
        "benchmark": "deblur_learns",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__,
        "device": args.device, "arch": args.arch, "channels": args.channels,
        "blocks": args.blocks, "growth": args.growth,
        "iters": args.iters, "lr": args.lr, "batch": args.batch, "patch": args.patch,
        "seconds": seconds, "steps_per_s": args.iters / seconds,
        "kernel_size": args.kernel_size, "space": args.space,
        "content_loss": args.content, "perceptual_weight": args.perceptual_weight,
        "adversarial_weight": args.adversarial_weight,
        "fractions": args.fractions, "per_image": args.per_image, "held_out": args.held_out,
        "seed": args.seed, "transpose": not args.no_transpose, "cpu_bf16": args.cpu_bf16,
        "extra": [p.name for p in extra],
        "vgg": "randomly initialised (no pretrained weights can be downloaded here)",
        "before": before, "after": after, "held_out_images": images,
        "picture": {"file": shown.name, "pair": first, "panels": "blurred | deblurred | sharp"},
    }  # fmt: skip
    gan = f"GAN weight {args.adversarial_weight:g}" if args.adversarial_weight > 0 else "no GAN"
    bf16 = ", bf16 autocast" if args.cpu_bf16 and args.device == "cpu" else ""
    print(
        f"DBGAN ({args.arch}, {args.channels} channels, {args.blocks} blocks, {gan}{bf16}), "
        f"{args.iters} steps on the {args.device} in {seconds:.0f} s"
    )
    print(f"{'pairs':9s} {'PSNR':7s} {'input':>7s} {'untrained':>10s} {'trained':>8s} {'gain':>6s}")
    for name in before:
        for kind in ("mean", "pooled"):
            data_in = after[name][f"input_{kind}_psnr"]
            untrained = before[name][f"output_{kind}_psnr"]
            trained = after[name][f"output_{kind}_psnr"]
            print(f"{name:9s} {kind:7s} {data_in:7.2f} {untrained:10.2f} {trained:8.2f} "
                  f"{trained - data_in:+6.2f}")  # fmt: skip
    means = images["mean"]
    print(f"held-out whole images ({len(images['pairs'])}, blurgen evaluate): PSNR "
          f"{means['psnr_input']:.2f} -> {means['psnr_output']:.2f} "
          f"({means['psnr_output'] - means['psnr_input']:+.2f}), SSIM "
          f"{means['ssim_input']:.4f} -> {means['ssim_output']:.4f}")  # fmt: skip
    held = after["held-out"]
    print("held-out brightness change (sharp - blurred needed / output - blurred made):")
    for label, suffix in (("all pairs", ""), ("flattest quarter", "_flattest")):
        print(f"  {label:17s} {held['needed_offset' + suffix]:+.4f} / "
              f"{held['applied_offset' + suffix]:+.4f}")  # fmt: skip
    write_json(args.json, result)
    print(f"wrote {shown} ({first}: blurred | deblurred | sharp)")


if __name__ == "__main__":
    main()
