"""Does train-deblur's input keep up? Steps/s and the wait for each batch, by loader workers.

A deblurring run (``DeblurTrainer``, the default rrdb at a CPU width, content loss only so that
the step is short and the input weighs the most) on a make-dataset file of the bundled photos
(192 px pairs, random 128 px crops, batch 16), once per ``--workers`` value (0: the training
process reads and crops each batch itself; N: N DataLoader processes load batches ahead). The
first ``--warmup`` steps (worker start-up included) are not timed; over the next ``--steps``,
it reports steps/s and the mean time a step waited for its batch (``data_s`` in the run's log),
absolute and as a share of the step. The runs train on the same batches (they depend on the seed
and the step only), so their final weights are compared too. Prints a table, writes JSON.

    python bench/deblur_input.py        # about five minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import write_json

import blurgen
from blurgen.bgan.train_deblur import DeblurConfig, DeblurTrainer
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--arch", default="rrdb")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--growth", type=int, default=16)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "deblur_input.json")
    args = parser.parse_args()

    rows, weights = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pairs = folder / "pairs.h5"
        make_dataset(bundled_images(), pairs, DatasetConfig(patch=args.patch + 64, per_image=32))
        iters = args.warmup + args.steps
        for workers in args.workers:
            config = DeblurConfig(
                data=(str(pairs),), iters=iters, batch=args.batch, patch=args.patch,
                arch=args.arch, channels=args.channels, blocks=args.blocks, growth=args.growth,
                perceptual_weight=0.0, gan=False, workers=workers, log_every=1,
                checkpoint_every=iters, sample_every=iters, val_every=iters,
            )  # fmt: skip
            run = folder / f"workers{workers}"
            trainer = DeblurTrainer(config, run)
            marks: list[float] = []
            trainer.train(progress=lambda _, marks=marks: marks.append(time.perf_counter()))
            lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
            waits = [line["data_s"] for line in lines if "data_s" in line][args.warmup :]
            seconds = marks[-2] - marks[args.warmup - 1]  # the last step also validates
            rate = (args.steps - 1) / seconds
            rows.append({"workers": workers, "steps_per_s": rate,
                         "mean_wait_s": sum(waits) / len(waits), "max_wait_s": max(waits),
                         "wait_share": sum(waits[:-1]) / seconds})  # fmt: skip
            weights.append(
                torch.cat([p.detach().flatten() for p in trainer.generator.parameters()])
            )
            print(f"workers {workers}: done", flush=True)

    same = all(torch.equal(weights[0], w) for w in weights[1:])
    print(f"train-deblur input, {args.arch} ({args.channels} ch, {args.blocks} blocks), batch "
          f"{args.batch} of {args.patch} px crops, {os.cpu_count()} cores")  # fmt: skip
    print(f"| workers | steps/s | vs {args.workers[0]} workers | mean wait (ms) | max wait (ms) "
          "| share of the step |")  # fmt: skip
    for row in rows:
        print(f"| {row['workers']:7d} | {row['steps_per_s']:7.3f} | "
              f"{row['steps_per_s'] / rows[0]['steps_per_s']:12.2f}x | "
              f"{1000 * row['mean_wait_s']:14.1f} | {1000 * row['max_wait_s']:13.1f} | "
              f"{100 * row['wait_share']:16.1f}% |")  # fmt: skip
    print(f"final weights identical across worker counts: {same}")
    write_json(args.json, {
        "benchmark": "deblur_input",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__, "cpu_count": os.cpu_count(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "rows": rows, "identical_weights": same,
    })  # fmt: skip


if __name__ == "__main__":
    main()
