"""Which synthetic pairs teach a deblurrer to undo *real* blur better?

Deblurrers (the default rrdb, narrow enough for CPU minutes) are trained the same way (same
steps, seed, photos and network) on make-dataset pairs of each of ``--presets`` (shipped names
or preset files ``blurgen calibrate`` wrote): by default ``camera-shake`` (blurgen's default,
fitted to real camera-shake photos) and ``deblurgan`` (DeblurGAN's blur). Each is scored on
one of two test sets, neither made by any preset:

* real kernels (the default): held-out sharp photos blurred by the 30 kernels that
  blind-deblurring methods estimated for Lai et al.'s real photos
  (``kernels/lai2016_real_estimated`` in the reference data). The photos are
  ../shared/data/sharp/skimage sorted by name: the even ones for training, the odd ones
  (brick, chelsea, grass, hubble_deep_field) held out. Test images are the central ``--crop``
  px of each held-out photo, blurred in linear light (``--space``) with 8-bit rounding and no
  noise; PSNR and SSIM are taken on the pixels the kernel leaves valid.
* real pairs (``--pairs DIR``): captured blurry photos and their sharp ground truth, as
  ``DIR/blur/NAME.png`` and ``DIR/sharp/NAME.png`` (GoPro's test frames, for instance), whole
  or their central ``--crop`` px. Training then uses every skimage photo.

Prints a table, writes JSON and a picture (blurred | one model per preset | sharp).

    python bench/deblur_real_kernels.py        # about half an hour on 2 cores
    python bench/deblur_real_kernels.py --pairs gopro_pairs/ --per-image 96 \
        --presets camera-shake,deblurgan,fitted.yaml --json bench/results/deblur_real_pairs.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import torch_device, write_json

import blurgen
from blurgen.bgan.infer import Deblurrer
from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer
from blurgen.degradation import Degradation
from blurgen.forward import valid_offset
from blurgen.io import read_image, write_png
from blurgen.metrics import psnr, ssim
from blurgen.pipeline import expand_sources, make_dataset
from blurgen.presets import load

HERE = Path(__file__).resolve().parent
PRESETS = "camera-shake,deblurgan"


def centre(image: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` px of an image (all of it where it is smaller, or
    ``side`` is 0)."""
    if side <= 0:
        return image
    y = max(0, (image.shape[0] - side) // 2)
    x = max(0, (image.shape[1] - side) // 2)
    return image[y : y + side, x : x + side]


def test_set(photos: list[Path], kernels: list[Path], crop: int, space: str) -> list[dict]:
    """Each photo's centre blurred by each kernel: dicts of ``name``, ``blurred`` and ``sharp``
    (float32 in [0, 1], the valid part)."""
    degradation = Degradation(space=space)
    pairs = []
    for photo in photos:
        sharp = centre(read_image(photo), crop)
        for path in kernels:
            kernel = np.load(path).astype(np.float64)
            blurred, _ = degradation.apply(sharp, kernel / kernel.sum(), np.random.default_rng(0))
            o = valid_offset(kernel.shape[0])
            height, width = blurred.shape[:2]
            pairs.append({"name": f"{photo.stem}/{path.stem}", "blurred": blurred,
                          "sharp": sharp[o : o + height, o : o + width]})  # fmt: skip
    return pairs


def real_pairs(folder: Path, crop: int) -> list[dict]:
    """Captured pairs: ``folder/blur/NAME`` and ``folder/sharp/NAME`` images of one size, as
    :func:`test_set`'s dicts (each the central ``crop`` px, or whole for 0)."""
    pairs = []
    for path in sorted((folder / "blur").glob("*.png")):
        sharp_path = folder / "sharp" / path.name
        if not sharp_path.is_file():
            raise SystemExit(f"{path}: no sharp image {sharp_path}")
        blurred, sharp = read_image(path), read_image(sharp_path)
        if blurred.shape != sharp.shape:
            raise SystemExit(f"{path}: {blurred.shape} px, but {sharp_path} is {sharp.shape}")
        pairs.append({"name": path.stem, "blurred": centre(blurred, crop),
                      "sharp": centre(sharp, crop)})  # fmt: skip
    if not pairs:
        raise SystemExit(f"no pairs under {folder} (expected blur/NAME.png and sharp/NAME.png)")
    return pairs


def label_of(preset: str) -> str:
    """A preset's name in the table: its name, or its file's stem."""
    return Path(preset).stem if preset.endswith((".yaml", ".yml", ".json")) else preset


def score(model: Deblurrer | None, pairs: list[dict]) -> dict:
    """Mean PSNR (dB) and SSIM of the model's output (or of the blurred input, for None),
    and the PSNR of the pooled squared error."""
    psnrs, ssims, errors = [], [], []
    for pair in pairs:
        out = pair["blurred"] if model is None else model.deblur(pair["blurred"])
        psnrs.append(psnr(out, pair["sharp"]))
        ssims.append(ssim(out, pair["sharp"]))
        errors.append(float(np.mean((out.astype(np.float64) - pair["sharp"]) ** 2)))
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "pooled_psnr": float(-10 * np.log10(np.mean(errors))),
        "per_pair_psnr": psnrs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--per-image", type=int, default=64, help="training pairs per photo")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--growth", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64, help="training crop, px")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument(
        "--presets", default=PRESETS, help="comma-separated preset names or files to train on"
    )
    parser.add_argument(
        "--pairs", type=Path, help="test on the captured pairs DIR/blur/*.png, DIR/sharp/*.png"
    )
    parser.add_argument(
        "--crop",
        type=int,
        help="test image side (before blur for real kernels; default 256, or 0 (whole) for pairs)",
    )
    parser.add_argument(
        "--space",
        choices=("srgb", "gamma", "naive"),
        default="srgb",
        help="where the test blur happens (linear light by default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=torch_device, default="cpu")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "deblur_real_kernels.json")
    args = parser.parse_args()

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    labels = [label_of(p) for p in presets]
    photos = expand_sources([args.shared / "sharp" / "skimage"])
    if args.pairs is not None:
        training, held_out, kernels = photos, [], []
        pairs = real_pairs(args.pairs, args.crop if args.crop is not None else 0)
        described = f"{len(pairs)} captured pairs from {args.pairs}"
    else:
        training, held_out = photos[0::2], photos[1::2]
        kernels = sorted((args.shared / "kernels" / "lai2016_real_estimated").glob("*.npy"))
        if not kernels or not held_out:
            parser.error(f"no reference data under {args.shared}")
        crop = args.crop if args.crop is not None else 256
        pairs = test_set(held_out, kernels, crop, args.space)
        described = (f"{len(pairs)} test images: {len(held_out)} held-out photos x "
                     f"{len(kernels)} real kernels, blurred in {args.space}")  # fmt: skip
    rows = {"blurred input": score(None, pairs)}
    models, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for preset, name in zip(presets, labels, strict=True):
            data = folder / f"{name}.h5"
            make_dataset(training, data, load(preset, per_image=args.per_image), seed=args.seed)
            config = DeblurConfig(
                data=(str(data),),
                iters=args.iters,
                batch=args.batch,
                patch=args.patch,
                lr=args.lr,
                seed=args.seed,
                channels=args.channels,
                blocks=args.blocks,
                growth=args.growth,
                content_loss="l1",
                perceptual_weight=0.0,
                gan=False,
                checkpoint_every=args.iters,
                sample_every=args.iters,
                val_every=args.iters,
                log_every=50,
            )
            trainer = DeblurTrainer(config, folder / name, device=args.device)
            began = time.perf_counter()
            trainer.train()
            seconds[name] = time.perf_counter() - began
            models[name] = Deblurrer(trainer.generator, args.device)
            rows[f"trained on {name} pairs"] = score(models[name], pairs)
            print(f"trained on {name}: {seconds[name]:.0f} s", flush=True)

    base = rows["blurred input"]
    print(described)
    print(f"| {'':30s} | PSNR (dB) | gain | pooled PSNR | SSIM |")
    for label, row in rows.items():
        gain = np.array(row["per_pair_psnr"]) - np.array(base["per_pair_psnr"])
        row["gain"] = float(gain.mean())
        row["pairs_improved"] = int((gain > 0).sum())
        print(
            f"| {label:30s} | {row['psnr']:9.2f} | {row['gain']:+.2f} | "
            f"{row['pooled_psnr']:11.2f} | {row['ssim']:.4f} |"
        )
    first = next((i for i, p in enumerate(pairs) if "chelsea" in p["name"]), 0)
    panels = [
        pairs[first]["blurred"],
        *(models[n].deblur(pairs[first]["blurred"]) for n in labels),
        pairs[first]["sharp"],
    ]
    gap = np.ones((panels[0].shape[0], 4, 3), np.float32)
    args.json.parent.mkdir(parents=True, exist_ok=True)  # the picture goes beside the JSON
    picture = write_png(
        args.json.with_suffix(".png"),
        np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1),
    )
    write_json(
        args.json,
        {
            "benchmark": "deblur_real_kernels",
            "test_set": described,
            "presets": dict(zip(labels, presets, strict=True)),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "blurgen_version": blurgen.__version__,
            "training_photos": [p.name for p in training],
            "held_out_photos": [p.name for p in held_out],
            "kernels": [k.stem for k in kernels],
            "settings": vars(args)
            | {
                "json": str(args.json),
                "shared": str(args.shared),
                "pairs": None if args.pairs is None else str(args.pairs),
            },
            "seconds": seconds,
            "rows": rows,
            "picture": {
                "file": picture.name,
                "pair": pairs[first]["name"],
                "panels": " | ".join(["blurred", *(f"trained on {n}" for n in labels), "sharp"]),
            },
        },
    )


if __name__ == "__main__":
    main()
