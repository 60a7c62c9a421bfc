"""Does BGAN learn a blur from unpaired photos? A CPU experiment with a known target blur.

The "real blurry" domain is made of tiles of bundled photos blurred by long horizontal streaks;
the generator sees the other tiles. Horizontal blur removes horizontal gradients, so the ratio of
horizontal to vertical gradient energy drops well below that of sharp photos. After training,
the generator's output on a held-out photo should move from the sharp ratio toward the
target's; the held-out photo blurred by the target streak itself is the reference, and the
picture shows the three side by side (sharp, generated, true blur). The target: horizontal and
vertical gradient energy each within 30 % of the true blur's, brightness within 0.01. Where the
reference data is present (``--shared``), its sharp photos that are not bundled are held out
too and scored the same way, each on its own.

The generator takes noise maps; it first learns blurgen's plain camera-shake blur (``--pretrain``
steps, the defaults of make-dataset --preset none: 31 px kernels), then the adversarial loss
moves it toward the target domain. A content term on means over 8 px squares keeps colour and
brightness without fighting the blur. No pretrained VGG-19 can be downloaded here, so the
perceptual loss (``--perceptual-weight``, off by default) would use a randomly initialised one.
The discriminator's loss over the run shows whether it learned to tell the domains apart (with
batches of 4 at lr 2e-4 it did not in 400 steps; batches of 8 at 1e-4 did, measured).

    python bench/bgan_learns.py            # the ResNet: about twenty minutes on 2 cores
    # the kernel generator and a patch discriminator on gradients, which meets the target
    # (about five minutes):
    python bench/bgan_learns.py --arch kernels --pretrain 0 --content-weight 0 \
        --discriminator patch --disc-input gradients
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import blurgen
from blurgen import blur, presets
from blurgen.bgan.config import BGAN_ARCHS, DISC_INPUTS, DISCRIMINATORS, KERNEL_FORMS
from blurgen.bgan.infer import BlurGAN
from blurgen.bgan.nets import KernelBlurGenerator
from blurgen.bgan.train import BganConfig, BganTrainer
from blurgen.bgan.vgg import VGG19Features
from blurgen.io import read_image, write_png
from blurgen.kernels import line_kernel
from blurgen.kernels.bank import kernel_grid
from blurgen.pipeline import bundled_images

HERE = Path(__file__).resolve().parent


def gradient_energies(image: np.ndarray) -> tuple[float, float]:
    """Mean squared horizontal and vertical differences of an (H, W, 3) image's grey level."""
    grey = image.mean(axis=2)
    return float((np.diff(grey, axis=1) ** 2).mean()), float((np.diff(grey, axis=0) ** 2).mean())


def gradient_ratio(image: np.ndarray) -> float:
    """Horizontal over vertical gradient energy of an (H, W, 3) image."""
    horizontal, vertical = gradient_energies(image)
    return horizontal / vertical


def prepare(
    folder: Path, kernel: np.ndarray, tile: int = 96, domains: str = "split"
) -> tuple[Path, Path, np.ndarray]:
    """Sharp folder, target-blur folder, and a held-out sharp image.

    Four photos are cut into tiles. With ``domains="split"`` the tiles, ranked by brightness,
    are dealt out in the order ABBA ABBA...: A sharp to the generator's input, B blurred to the
    target domain. The domains then hold different content with the same brightness (a
    chessboard deal left the target 0.02 brighter, a cue the discriminator could use). With
    ``"shared"`` every tile is in both, sharp and blurred: the generator's input and the
    target are still drawn independently (unpaired), but there is no content to tell them
    apart by (49 tiles a domain are few enough for a discriminator to learn which is which).
    The fifth photo is held out.
    """
    photos = {p.stem: read_image(p) for p in bundled_images()}
    (folder / "sharp").mkdir()
    (folder / "blurry").mkdir()
    tiles = []
    for name in ("astronaut", "coffee", "rocket", "camera"):
        sharp = photos[name]
        blurred = blur(sharp, kernel, boundary="reflect")
        for row in range(sharp.shape[0] // tile):
            for col in range(sharp.shape[1] // tile):
                where = np.s_[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile]
                tiles.append((f"{name}_{row}_{col}.png", sharp[where], blurred[where]))
    tiles.sort(key=lambda entry: float(entry[1].mean()))
    for rank, (filename, sharp_tile, blurred_tile) in enumerate(tiles):
        if domains == "shared" or rank % 4 in (1, 2):
            write_png(folder / "blurry" / filename, blurred_tile)
        if domains == "shared" or rank % 4 not in (1, 2):
            write_png(folder / "sharp" / filename, sharp_tile)
    return folder / "sharp", folder / "blurry", photos["chelsea"]


def more_held_out(shared: Path) -> dict[str, np.ndarray]:
    """The reference data's sharp photos that are not bundled (none where it is absent)."""
    bundled = {p.name for p in bundled_images()}
    folder = shared / "sharp" / "skimage"
    paths = [*folder.glob("*.png"), *folder.glob("*.jpg")] if folder.is_dir() else []
    return {p.stem: read_image(p) for p in sorted(paths) if p.name not in bundled}


def energy_errors(trained: BlurGAN, photos: dict[str, np.ndarray], kernel: np.ndarray) -> dict:
    """Per held-out photo: the generated blur's horizontal and vertical gradient energy
    relative to the true streak's, minus 1, and its brightness change."""
    rows = {}
    for name, photo in photos.items():
        blurred = trained.blur(photo, seed=0)
        generated = gradient_energies(blurred)
        truth = gradient_energies(blur(photo, kernel, boundary="reflect"))
        rows[name] = {
            "energy_error": (np.divide(generated, truth) - 1).tolist(),
            "energy_generated": generated,
            "energy_true_blur": truth,
            "brightness_change": float(blurred.mean() - photo.mean()),
        }
    return rows


# The target: gradient energy within this fraction of the true blur's, along both axes, and
# the mean brightness within this much.
ENERGY_TOLERANCE = 0.3
BRIGHTNESS_TOLERANCE = 0.01


def target_met(energy_error: list[float], brightness_change: float) -> bool:
    """Whether a held-out photo's generated blur meets the target."""
    return bool(max(map(abs, energy_error)) <= ENERGY_TOLERANCE
                and abs(brightness_change) <= BRIGHTNESS_TOLERANCE)  # fmt: skip


def discriminator_losses(log: Path, window: int = 100) -> list[float]:
    """Mean logged discriminator loss over each ``window`` steps of a run's JSONL log."""
    sums: dict[int, list[float]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if "loss_d" in entry:
            sums.setdefault((entry["step"] - 1) // window, []).append(entry["loss_d"])
    return [float(np.mean(sums[key])) for key in sorted(sums)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--streak", type=float, default=21.0, help="target blur length, px")
    parser.add_argument(
        "--domains",
        choices=("split", "shared"),
        default="split",
        help="tiles dealt between the sharp and target domains, or in both (see prepare)",
    )
    parser.add_argument("--adversarial-weight", type=float, default=0.15)
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--content-scale", type=int, default=8)
    parser.add_argument("--perceptual-weight", type=float, default=0.0)
    parser.add_argument("--pretrain", type=int, default=600, help="steps of --iters")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0, help="the training's seed")
    parser.add_argument("--scale", type=int, default=1, help="generator's pixel-unshuffle scale")
    parser.add_argument("--arch", choices=BGAN_ARCHS, default="resnet", help="the generator")
    parser.add_argument("--channels", type=int, help="default: 32 (resnet), 256 (kernels)")
    parser.add_argument("--blocks", type=int, help="default: 3 (resnet), 2 (kernels)")
    parser.add_argument("--kernel-size", type=int, default=31, help="kernels: px")
    parser.add_argument("--cell", type=int, default=64, help="kernels: px")
    parser.add_argument("--kernel-form", choices=KERNEL_FORMS, default="softmax", help="kernels")
    parser.add_argument("--discriminator", choices=DISCRIMINATORS, default="vgg")
    parser.add_argument("--disc-layers", type=int, default=2, help="patch: strided layers")
    parser.add_argument("--disc-scales", type=int, default=1, help="patch: scales judged")
    parser.add_argument(
        "--disc-input", choices=DISC_INPUTS, default="pixels", help="patch: what it sees"
    )
    parser.add_argument(
        "--shared",
        type=Path,
        default=HERE.parents[1] / "shared" / "data",
        help="reference data: its sharp photos that are not bundled are held out too",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "bgan_learns.json",
        help="results file; the picture is written beside it with the suffix .png",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kernel = line_kernel(args.streak, 0.0, 31)
        sharp, blurry, held_out = prepare(folder, kernel, domains=args.domains)
        truth = blur(held_out, kernel, boundary="reflect")
        torch.manual_seed(0)
        torch.save(VGG19Features("conv5_4").state_dict(), folder / "vgg.pth")
        shape = {"channels": args.channels, "blocks": args.blocks}
        if args.arch == "resnet":
            shape = {
                "channels": args.channels or 32,
                "blocks": args.blocks or 3,
                "scale": args.scale,
            }
        else:
            shape.update(kernel_size=args.kernel_size, cell=args.cell, kernel_form=args.kernel_form)
        config = BganConfig(
            sharp=str(sharp), blurry=str(blurry), iters=args.iters, batch=args.batch, patch=64,
            lr=args.lr, seed=args.seed, decay_start=0.8, arch=args.arch, disc_channels=32, **shape,
            discriminator=args.discriminator, disc_layers=args.disc_layers,
            disc_scales=args.disc_scales, disc_input=args.disc_input,
            vgg_layer="conv2_2", vgg_weights=str(folder / "vgg.pth"),
            adversarial_weight=args.adversarial_weight, content_weight=args.content_weight,
            content_scale=args.content_scale, perceptual_weight=args.perceptual_weight,
            pretrain=args.pretrain, physics=presets.load("none").to_dict(),
            checkpoint_every=args.iters, sample_every=args.iters, log_every=10,
        )  # fmt: skip
        trainer = BganTrainer(config, folder / "run")
        before = BlurGAN(trainer.generator).blur(held_out, seed=0)
        began = time.perf_counter()
        last = trainer.train()
        seconds = time.perf_counter() - began
        loss_d = discriminator_losses(folder / "run" / "log.jsonl")
        trained = BlurGAN.load(folder / "run" / "checkpoints" / "latest.pt")
        after = trained.blur(held_out, seed=0)
        others = energy_errors(trained, more_held_out(args.shared), kernel)
        targets = [read_image(p) for p in sorted(blurry.glob("*.png"))]
        target = np.mean([gradient_ratio(image) for image in targets])
        target_mean = np.mean([image.mean() for image in targets])
        sharp_mean = np.mean([read_image(p).mean() for p in sorted(sharp.glob("*.png"))])
        grid = np.concatenate([held_out, after, truth], axis=1)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_png(args.json.with_suffix(".png"), grid)
        if isinstance(trained.generator, KernelBlurGenerator):
            # Seven draws of its kernel, then the target streak.
            z = torch.as_tensor(trained.noise(range(7), 64, 64), dtype=torch.float32)
            with torch.no_grad():
                kernels = trained.generator.kernels(z)[:, 0, 0].numpy()
            both = [*kernels, kernel]
            size = max(len(k) for k in both)
            both = [np.pad(k, (size - len(k)) // 2) for k in both]
            picture = kernel_grid(np.stack(both), columns=8, cell=64)
            write_png(args.json.with_name(args.json.stem + "_kernels.png"), picture)

    result = {
        "benchmark": "bgan_learns",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__,
        "iters": args.iters,
        "domains": args.domains,
        "adversarial_weight": args.adversarial_weight,
        "content_weight": args.content_weight,
        "content_scale": args.content_scale,
        "perceptual_weight": args.perceptual_weight,
        "pretrain": args.pretrain,
        "lr": args.lr,
        "seed": args.seed,
        "generator": trainer.generator.config,
        "discriminator": {
            "kind": args.discriminator,
            "layers": args.disc_layers,
            "scales": args.disc_scales,
            "inputs": args.disc_input,
        },
        "mean_input": float(held_out.mean()),
        "mean_generated_after": float(after.mean()),
        "mean_sharp_domain": float(sharp_mean),
        "mean_target_domain": float(target_mean),
        "seconds": seconds,
        "steps_per_s": args.iters / seconds,
        "vgg": "randomly initialised (no pretrained weights can be downloaded here)",
        "ratio_sharp_input": gradient_ratio(held_out),
        "ratio_generated_before": gradient_ratio(before),
        "ratio_generated_after": gradient_ratio(after),
        "ratio_target_domain": float(target),
        "ratio_true_blur": gradient_ratio(truth),
        "gradient_energy_sharp_input": gradient_energies(held_out),
        "gradient_energy_generated_after": gradient_energies(after),
        "gradient_energy_true_blur": gradient_energies(truth),
        "last_losses": last,
        "loss_d_per_100_steps": loss_d,
    }
    print(f"BGAN, {args.iters} steps on the CPU in {seconds:.0f} s "
          f"({result['steps_per_s']:.1f} steps/s); VGG-19 randomly initialised")  # fmt: skip
    print("horizontal / vertical gradient energy:")
    for key in ("ratio_sharp_input", "ratio_generated_before", "ratio_generated_after",
                "ratio_true_blur", "ratio_target_domain"):  # fmt: skip
        print(f"  {key[6:]:22s} {result[key]:.3f}")
    print("held-out photo, gradient energy left (of the sharp photo's): horizontal, vertical")
    for key in ("generated_after", "true_blur"):
        left = np.divide(result[f"gradient_energy_{key}"], result["gradient_energy_sharp_input"])
        print(f"  {key:22s} {left[0]:.3f} {left[1]:.3f}")
    error = np.divide(result["gradient_energy_generated_after"],
                      result["gradient_energy_true_blur"]) - 1  # fmt: skip
    result["energy_error_vs_true_blur"] = error.tolist()
    result["brightness_change"] = result["mean_generated_after"] - result["mean_input"]
    passed = target_met(result["energy_error_vs_true_blur"], result["brightness_change"])
    result["target_met"] = passed
    print(f"gradient energy vs the true blur: horizontal {error[0]:+.0%}, vertical "
          f"{error[1]:+.0%}; brightness change {result['brightness_change']:+.4f}; target "
          f"(within 30 %, 0.01) {'met' if passed else 'not met'}")  # fmt: skip
    print(
        "discriminator loss, mean per 100 steps (1 = cannot tell them apart):",
        " ".join(f"{value:.2f}" for value in loss_d),
    )
    print(f"mean brightness: held-out input {result['mean_input']:.3f}, "
          f"generated {result['mean_generated_after']:.3f}; sharp domain "
          f"{sharp_mean:.3f}, target domain {target_mean:.3f}")  # fmt: skip
    result["more_held_out"] = others
    for name, row in others.items():
        horizontal, vertical = row["energy_error"]
        print(f"  held out {name:18s} horizontal {horizontal:+.0%}, vertical {vertical:+.0%}, "
              f"brightness {row['brightness_change']:+.4f}")  # fmt: skip
    if others:
        within = [target_met(row["energy_error"], row["brightness_change"])
                  for row in others.values()]  # fmt: skip
        result["more_held_out_met"] = sum(within)
        print(f"  target met on {sum(within)} of {len(within)} more held-out photos")
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json} and {args.json.with_suffix('.png')}")


if __name__ == "__main__":
    main()
