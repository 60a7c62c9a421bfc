"""Does the shipped BGAN come closer to real photos when a camera's ISP adds the noise instead of
its own learned noise (the generator for the blur, the ISP for the camera)?

Needs the reference data (``--shared``, default ../shared/data beside the checkout). The
samples are bench/bgan_realism.py's: 8 crops of each held-out skimage photo (brick, chelsea,
grass, hubble_deep_field; the BGAN trained on the others), 256 px under the camera-shake
preset, whose valid 156 px the BGAN blurs with each sample's noise seed. Rows:

* the shipped BGAN as make-dataset uses it: its kernel field on the encoded values, then its
  learned noise;
* its kernels alone: the same kernel field, no noise;
* its kernels in linear light, then the ISP of ``--isp-preset`` (by default the preset
  calibrated with the ISP on Lai's other half, ``bench/results/calibrated_lai_isp.yaml``): its
  curve, white balance, noise on the RAW mosaic, demosaicing, sharpening and JPEG, drawn per
  sample from the sample's seed.

Each row is measured against Lai et al.'s held-out half and the GoPro frames (another camera),
with 95 % bootstrap intervals, and each variant against the shipped BGAN by a paired bootstrap
(the same patches). Prints tables, writes JSON.

    python bench/bgan_isp.py        # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import paired_differences, realism_table, run_record, write_json

from blurgen import presets
from blurgen.bgan.infer import BlurGAN
from blurgen.bgan.nets import KernelBlurGenerator, blend_blur
from blurgen.calibrate import Renderer
from blurgen.degradation import Degradation
from blurgen.methods.base import to_uint8
from blurgen.methods.learned import DEFAULT_BGAN
from blurgen.noise import jpeg
from blurgen.pipeline import expand_sources
from blurgen.realism import measure, statistics_of

HERE = Path(__file__).resolve().parent


def kernel_blur(gan: BlurGAN, images: np.ndarray, seed: int) -> np.ndarray:
    """The generator's kernel field for a patch's noise seed, applied to (H, W, 3) float32
    images of any scale (encoded values or linear light): float32 (H, W, 3)."""
    height, width = images.shape[:2]
    z = torch.as_tensor(gan.noise([seed], height, width), dtype=torch.float32)
    with torch.no_grad():
        field = gan.generator.kernels(z)
        out = blend_blur(torch.from_numpy(images).permute(2, 0, 1)[None], field,
                         gan.generator.cell)  # fmt: skip
    return out[0].permute(1, 2, 0).numpy()


def through_isp(degradation: Degradation, sharp: np.ndarray, gan: BlurGAN, seed: int) -> np.ndarray:
    """A uint8 patch blurred in linear light by the generator's kernels, then the degradation's
    ISP, noise and JPEG, drawn from ``seed``: uint8 (H, W, 3)."""
    params = degradation.sample(np.random.default_rng(seed))
    light = degradation._boosted_light(sharp, np.float32(params.boost))
    blurred = kernel_blur(gan, np.ascontiguousarray(light, np.float32), seed)
    out = degradation._render_strip(blurred, lambda x: x, params, degradation._noise(params),
                                    np.dtype(np.uint8), decoded=True)  # fmt: skip
    return jpeg(out, params.jpeg_quality, in_place=True) if params.jpeg_quality else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--bgan", default=DEFAULT_BGAN, help="checkpoint or builtin:NAME")
    parser.add_argument("--isp-preset", default=str(HERE / "results" / "calibrated_lai_isp.yaml"),
                        help="preset whose degradation (with its ISP) adds the camera")  # fmt: skip
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bgan_isp.json")
    args = parser.parse_args()
    gan = BlurGAN.load(args.bgan)
    if not isinstance(gan.generator, KernelBlurGenerator):
        parser.error(f"{args.bgan} is not a kernel generator: its blur cannot be had apart")
    degradation = presets.load(args.isp_preset).degradation
    if degradation.isp is None:
        parser.error(f"{args.isp_preset} has no ISP (isp: true)")
    lai, _ = measure([args.shared / "blurry" / "lai2016_real"])
    lai.sort(key=lambda s: s["name"])
    gopro = measure([args.shared / "blurry" / "gopro_frames"])[0]
    references = {"Lai, held out": lai[1::2], "GoPro frames": gopro}
    sharp_photos = expand_sources([args.shared / "sharp" / "skimage"])[1::2]
    pairs = list(Renderer(sharp_photos, 8, 256, 0).pairs(presets.load("camera-shake")))
    sharp = [pair[1] for pair in pairs]
    seeds = [record.params.noise_seed for record, _, _ in pairs]
    shipped = [to_uint8(gan.blur_with(image[None], gan.noise([seed], *image.shape[:2]))[0])
               for image, seed in zip(sharp, seeds, strict=True)]  # fmt: skip
    alone = [to_uint8(kernel_blur(gan, image.astype(np.float32) / 255, seed))
             for image, seed in zip(sharp, seeds, strict=True)]  # fmt: skip
    with_isp = [through_isp(degradation, image, gan, seed)
                for image, seed in zip(sharp, seeds, strict=True)]  # fmt: skip
    measured = {"shipped BGAN (its learned noise)": statistics_of(shipped),
                "its kernels, no noise": statistics_of(alone),
                "its kernels + the ISP": statistics_of(with_isp)}  # fmt: skip
    result = {**run_record("bgan_isp"), "bgan": args.bgan, "isp_preset": args.isp_preset,
              "samples": len(pairs), "references": {}}  # fmt: skip
    baseline, *variants = measured
    for name, reference in references.items():
        print(f"\ndistance to {name} ({len(reference)} photos), {len(pairs)} patches")
        rows = realism_table(measured, reference)
        differences = paired_differences(measured, {label: baseline for label in variants},
                                         reference)  # fmt: skip
        result["references"][name] = {"rows": rows, "differences": differences}
    write_json(args.json, result)


if __name__ == "__main__":
    main()
