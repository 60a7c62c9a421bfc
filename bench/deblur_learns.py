"""Does the deblurring network learn? A CPU run on make-dataset pairs, scored on held-out photos.

Pairs are made from four bundled photos for training and from the fifth for validation, with
camera-shake kernels; a narrow DBGAN is trained on content + perceptual losses (no GAN; the
VGG-19 is randomly initialised, as no pretrained weights can be downloaded here). The
held-out PSNR of the output is compared with that of the blurred input. Prints, writes JSON.

    python bench/deblur_learns.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import blurgen
from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer
from blurgen.bgan.vgg import VGG19Features
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--kernel-size", type=int, default=25)
    parser.add_argument("--perceptual-weight", type=float, default=0.1)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "deblur_learns.json")
    args = parser.parse_args()

    photos = bundled_images()
    held_out = [p for p in photos if p.stem == "chelsea"]
    training = [p for p in photos if p not in held_out]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pairs = DatasetConfig(patch=64, per_image=64, kernel_size=args.kernel_size)
        make_dataset(training, folder / "train.h5", pairs, seed=0)
        make_dataset(held_out, folder / "val.h5", pairs, seed=1)
        torch.manual_seed(0)
        torch.save(VGG19Features("conv5_4").state_dict(), folder / "vgg.pth")
        config = DeblurConfig(
            data=(str(folder / "train.h5"),), val=(str(folder / "val.h5"),), iters=args.iters,
            batch=8, patch=48, lr=2e-4, gan=False, perceptual_weight=args.perceptual_weight,
            channels=32, blocks=4,
            vgg_layer="conv2_2", vgg_weights=str(folder / "vgg.pth"),
            checkpoint_every=args.iters, sample_every=args.iters, log_every=50,
            val_every=args.iters,
        )  # fmt: skip
        trainer = DeblurTrainer(config, folder / "run")
        before = trainer.validate()
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
        after = trainer.validate()

    result = {
        "benchmark": "deblur_learns",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__,
        "iters": args.iters, "seconds": seconds, "steps_per_s": args.iters / seconds,
        "kernel_size": args.kernel_size, "perceptual_weight": args.perceptual_weight,
        "vgg": "randomly initialised (no pretrained weights can be downloaded here)",
        "held_out_psnr_input": after["val_psnr_input"],
        "held_out_psnr_before_training": before["val_psnr"],
        "held_out_psnr_after_training": after["val_psnr"],
        "held_out_ssim_after_training": after["val_ssim"],
        "gain_db": after["val_psnr"] - after["val_psnr_input"],
    }  # fmt: skip
    print(f"DBGAN (32 channels, 4 blocks, no GAN), {args.iters} CPU steps in {seconds:.0f} s")
    print(f"held-out PSNR: blurred input {result['held_out_psnr_input']:.2f} dB, "
          f"output {result['held_out_psnr_after_training']:.2f} dB "
          f"({result['gain_db']:+.2f} dB; {result['held_out_psnr_before_training']:.2f} dB "
          "before training)")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
