"""Can the streak bench's discriminator tell a shorter streak from the target at all?

The discriminator of ``bench/bgan_learns.py`` (PatchGAN, 32 channels, 2 strided layers, 64 px
crops, batch 8, Adam at 1e-4) is trained alone, with the relativistic loss, to tell tiles
blurred by the 21 px target streak (real) from tiles blurred by a streak of L px (the
generator's stand-in), for each L, in both ways of dealing the tiles (``split``: the target
from the B tiles, the others from the A tiles; ``shared``: both from every tile), seeing
the pixels or their gradients (``--disc-input gradients`` of training). Its loss
stays at 1 when it cannot tell them apart; the L = 21 row is the floor: whatever it learns
there, it learns from the tiles' content, not from their blur. Prints a table, writes JSON.

    python bench/streak_discriminator.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bgan_learns import prepare
from common import write_json

import blurgen
from blurgen import blur
from blurgen.bgan.config import DISC_INPUTS
from blurgen.bgan.losses import ralsgan_discriminator_loss
from blurgen.bgan.nets import PatchDiscriminator
from blurgen.io import read_image
from blurgen.kernels import line_kernel

HERE = Path(__file__).resolve().parent
TILE, PATCH, BATCH = 96, 64, 8


def tiles(folder: Path) -> np.ndarray:
    """The (N, 96, 96, 3) tiles of a folder, in name order."""
    return np.stack([read_image(p) for p in sorted(folder.glob("*.png"))])


def streaked(images: np.ndarray, length: float) -> np.ndarray:
    """Each tile blurred by a horizontal streak of ``length`` px (none for 0), borders
    reflected, as the bench blurs its target."""
    if length == 0:
        return images
    kernel = line_kernel(length, 0.0, 31)
    return np.stack([blur(image, kernel, boundary="reflect") for image in images])


def discriminator_losses(
    real: np.ndarray, fake: np.ndarray, steps: int, window: int, inputs: str
) -> list:
    """The mean loss over each ``window`` of ``steps`` steps of a discriminator that sees
    ``inputs`` (pixels or gradients)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    network = PatchDiscriminator(32, 2, inputs)
    optimiser = torch.optim.Adam(network.parameters(), 1e-4, betas=(0.5, 0.999))

    def crops(images: np.ndarray) -> torch.Tensor:
        chosen = rng.integers(0, len(images), BATCH)
        y, x = rng.integers(0, TILE - PATCH + 1, 2)
        batch = np.ascontiguousarray(images[chosen, y : y + PATCH, x : x + PATCH])
        return torch.from_numpy(batch).permute(0, 3, 1, 2).float()

    losses = []
    for _ in range(steps):
        real_logits, fake_logits = network(torch.cat([crops(real), crops(fake)])).chunk(2)
        loss = ralsgan_discriminator_loss(real_logits.flatten(), fake_logits.flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return [float(np.mean(losses[k : k + window])) for k in range(0, steps, window)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[0, 10, 15, 21])
    parser.add_argument("--inputs", nargs="+", choices=DISC_INPUTS, default=list(DISC_INPUTS))
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "streak_discriminator.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # An identity kernel: both folders hold sharp tiles, A and B.
        a_folder, b_folder, _ = prepare(Path(folder), np.ones((1, 1), np.float32), TILE)
        a, b = tiles(a_folder), tiles(b_folder)
    both = np.concatenate([a, b])
    pools = {"split": (b, a), "shared": (both, both)}  # (target's tiles, the others')
    rows = []
    for inputs in args.inputs:
        for domains, (target_tiles, other_tiles) in pools.items():
            real = streaked(target_tiles, 21.0)
            for length in args.lengths:
                losses = discriminator_losses(
                    real, streaked(other_tiles, length), args.steps, args.window, inputs
                )
                rows.append(
                    {"inputs": inputs, "domains": domains, "length": length, "losses": losses}
                )
                print(f"{inputs:9s} {domains:6s} {length:4.0f} px vs 21 px: loss per "
                      f"{args.window} steps " + " ".join(f"{value:.2f}" for value in losses),
                      flush=True)  # fmt: skip
    write_json(args.json, {
        "benchmark": "streak_discriminator",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__, "steps": args.steps, "window": args.window,
        "tiles": {"a": len(a), "b": len(b)}, "rows": rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
