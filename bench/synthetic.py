"""Pairs on the fly against pairs from a file: how fast a DataLoader delivers batches.

The same pairs both ways: ``make_dataset`` writes the bundled photos' pairs (the baseline reads
them with :class:`blurgen.torch.PairsDataset`), and :class:`blurgen.torch.SyntheticPairs` makes
them again in the DataLoader's workers; both crop, flip and transpose as training does. Each
row is the median of ``--repeat`` passes over every pair (the loader started afresh each
time), and the last column is the on-the-fly rate as a fraction of the file's, measured back
to back. The time make_dataset took is printed too: on the fly, that time is spread over the
training instead.

    python bench/synthetic.py      # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import run_record, write_json
from torch.utils.data import DataLoader

from blurgen import presets
from blurgen.pipeline import bundled_images, make_dataset
from blurgen.torch import PairsDataset, SyntheticPairs

HERE = Path(__file__).resolve().parent


def rate(dataset, batch: int, workers: int) -> float:
    """Pairs per second over one pass of a DataLoader of ``dataset``."""
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=True)
    began = time.perf_counter()
    count = sum(len(items["blurred"]) for items in loader)
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="camera-shake")
    # The bundled photos are at least 300 px: crops of 192 + 100 px fit in every one, so no
    # source is skipped (SyntheticPairs refuses a source make_dataset would skip).
    parser.add_argument("--patch", type=int, default=192)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--per-image", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "synthetic.json")
    args = parser.parse_args()

    config = presets.load(args.preset, patch=args.patch, per_image=args.per_image)
    sources = [str(path) for path in bundled_images()]
    augment = {"crop": args.crop, "flip": True, "transpose": True}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.h5"
        began = time.perf_counter()
        make_dataset(sources, path, config, seed=0, workers=1)
        made = time.perf_counter() - began
        pairs = len(sources) * args.per_image
        print(f"make_dataset: {pairs} pairs in {made:.1f} s ({pairs / made:.1f} pairs/s, one "
              f"worker); preset {args.preset}, {args.patch} px pairs, {args.crop} px "
              "crops")  # fmt: skip
        stored = PairsDataset([path], **augment)
        fly = SyntheticPairs(sources, config=config, seed=0, **augment)
        for workers in args.workers:
            rates = {"file": [], "fly": []}
            for _ in range(args.repeat):
                rates["file"].append(rate(stored, args.batch, workers))
                rates["fly"].append(rate(fly, args.batch, workers))
            medians = {name: statistics.median(values) for name, values in rates.items()}
            rows.append({"workers": workers, "file_pairs_per_s": medians["file"],
                         "fly_pairs_per_s": medians["fly"],
                         "fly_over_file": medians["fly"] / medians["file"],
                         "runs": rates})  # fmt: skip
    print("| DataLoader workers | from the file, pairs/s | on the fly, pairs/s | fly / file |")
    print("| ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['workers']} | {row['file_pairs_per_s']:.0f} | "
              f"{row['fly_pairs_per_s']:.1f} | {row['fly_over_file']:.3f} |")  # fmt: skip
    write_json(args.json, {**run_record("synthetic"), "preset": args.preset,
                           "patch": args.patch, "crop": args.crop, "pairs": pairs,
                           "make_dataset_s": made, "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
