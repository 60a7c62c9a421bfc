"""Is the shipped BGAN's blur closer to real camera shake than the camera-shake preset's?

Needs the reference data (``--shared``, default ../shared/data beside the checkout). Both
halves are held out from what made the blurs: the real photos are Lai et al.'s odd ones
(sorted by name; the preset was fitted on the even ones, the shipped BGAN trained on them),
the sharp photos are skimage's odd ones (brick, chelsea, grass, hubble_deep_field; the BGAN
trained on the even ones, the preset's fit saw all nine). Each sharp photo gives 8 samples as
make-dataset draws them under the preset (256 px crops, seed 0); the BGAN blurs the same sharp
patches (the 156 px that the preset's 101 px kernels leave valid) with the samples' noise
seeds. No noise or JPEG is added to the BGAN's output: what it has, it learned. Rows: the
noise floor (the even real half), the sharp patches themselves, the preset, the BGAN; then the
preset's distance minus the BGAN's, paired by sample. Prints the table, writes JSON, the
statistics plot and a picture of some patches (sharp | camera-shake | BGAN).

`--half fitted` measures on the halves the BGAN learned from instead (the even sharp and real
photos; the odd real ones are then the noise floor), so that a run's checkpoints can be
compared without looking at the held-out photos.

    python bench/bgan_realism.py           # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import paired_differences, realism_table, write_json

import blurgen
from blurgen import presets
from blurgen.bgan.infer import BlurGAN
from blurgen.bgan.nets import KernelBlurGenerator
from blurgen.calibrate import Renderer
from blurgen.io import write_png
from blurgen.kernels.bank import kernel_grid
from blurgen.methods.learned import DEFAULT_BGAN
from blurgen.pipeline import expand_sources
from blurgen.realism import measure, plot_distributions, statistics_of
from blurgen.sample import to_uint8

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--bgan", default=DEFAULT_BGAN, help="checkpoint or builtin:NAME")
    parser.add_argument("--label", default="shipped BGAN", help="the BGAN's row in the table")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bgan_realism.json")
    parser.add_argument(
        "--figures",
        type=Path,
        default=HERE.parent / "docs" / "figures",
        help="folder of the statistics plot and the samples picture",
    )
    parser.add_argument(
        "--half",
        choices=("held-out", "fitted"),
        default="held-out",
        help="fitted: measure on the halves the BGAN trained on instead (the even sharp and real "
        "photos), to choose among a run's checkpoints without looking at the held-out ones",
    )
    args = parser.parse_args()
    real, _ = measure([args.shared / "blurry" / "lai2016_real"])
    real.sort(key=lambda s: s["name"])
    fitted, held = real[0::2], real[1::2]
    sharp_photos = expand_sources([args.shared / "sharp" / "skimage"])[1::2]
    if args.half == "fitted":
        fitted, held = held, fitted
        sharp_photos = expand_sources([args.shared / "sharp" / "skimage"])[0::2]
    renderer = Renderer(sharp_photos, 8, 256, 0)
    pairs = list(renderer.pairs(presets.load("camera-shake")))
    sharp = np.stack([pair[1] for pair in pairs])
    gan = BlurGAN.load(args.bgan)
    seeds = [record.params.noise_seed for record, _, _ in pairs]
    learned = [to_uint8(gan.blur_with(image[None], gan.noise([seed], *image.shape[:2]))[0])
               for image, seed in zip(sharp, seeds, strict=True)]  # fmt: skip
    sets = {
        "real, the other half (noise floor)": fitted,
        "the sharp crops themselves": statistics_of(sharp),
        "camera-shake preset": statistics_of(pair[2] for pair in pairs),
        args.label: statistics_of(learned),
    }
    print(f"distance to the {len(held)} held-out real photos (Lai et al.); {len(pairs)} "
          f"samples of {len(sharp_photos)} held-out sharp photos")  # fmt: skip
    rows = realism_table(sets, held)
    print("\nthe preset than the BGAN, paired by sample (the same sharp patches and noise seeds)")
    differences = paired_differences(sets, {"camera-shake preset": args.label}, held)
    shifts = {}
    for label, blurred in (("camera-shake preset", [pair[2] for pair in pairs]),
                           (args.label, learned)):  # fmt: skip
        change = np.stack([b.reshape(-1, 3).mean(0) - a.reshape(-1, 3).mean(0)
                           for a, b in zip(sharp, blurred, strict=True)]) / 255  # fmt: skip
        shifts[label] = {"mean_rgb_change": change.mean(0).tolist(),
                         "mean_abs_rgb_change": np.abs(change).mean(0).tolist()}  # fmt: skip
        print(
            f"{label}: mean change of the R, G, B means "
            + ", ".join(f"{v:+.4f}" for v in change.mean(0))
            + "; mean absolute "
            + ", ".join(f"{v:.4f}" for v in np.abs(change).mean(0))
        )
    figures = args.figures
    figures.mkdir(parents=True, exist_ok=True)
    plot = plot_distributions(sets[args.label], held, (args.label, "real, held out"))
    write_png(figures / "realism_bgan.png", plot)
    # Two samples of each sharp photo: sharp | camera-shake preset | BGAN, same crop.
    picks = [k for k in range(len(pairs)) if k % 8 < 2]
    picture = [np.concatenate([sharp[k], pairs[k][2], learned[k]], axis=1) for k in picks]
    write_png(figures / "bgan_samples.png", np.concatenate(picture, axis=0))
    if isinstance(gan.generator, KernelBlurGenerator):
        # The kernel each sample's top-left cell got, 16 samples (two of each sharp photo).
        z = torch.as_tensor(np.stack([gan.noise([seeds[k]], *sharp.shape[1:3])[0]
                                      for k in picks]), dtype=torch.float32)  # fmt: skip
        with torch.no_grad():
            kernels = gan.generator.kernels(z)[:, 0, 0].numpy()
        write_png(figures / "bgan_kernels.png", kernel_grid(kernels, columns=8, cell=96))
    names = [Path(p).name for p in sharp_photos]
    write_json(args.json, {"blurgen_version": blurgen.__version__, "bgan": args.bgan,
                           "held_out_real": len(held), "sharp": names, "rows": rows,
                           "paired": differences, "colour": shifts})  # fmt: skip


if __name__ == "__main__":
    main()
