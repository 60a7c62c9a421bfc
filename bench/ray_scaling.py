"""make-dataset on Ray: pairs/s with 1 and 2 Ray workers against the local pool, same run.

The same job (the bundled photos, ``--pairs`` pairs of P px with K px kernels, shards of
``--shard-pairs``) runs four ways: the local pool with 1 and 2 worker processes, and a fresh
local Ray instance with 1 and 2 CPUs (``blurgen make-dataset --ray local --workers N``). The Ray
rows time the job from submission to the joined file, so they include the workers' start-up
and imports but not ``ray.init`` (timed apart: a cluster is started once, not per job). Every
output is checked to hold the same pairs as the local run. Needs Ray (``pip install
-e ".[ray]"`` in the clone). Prints a table, writes JSON.

    python bench/ray_scaling.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from common import run_record, write_json

from blurgen.cluster import make_dataset_ray
from blurgen.io import read_image
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset

HERE = Path(__file__).resolve().parent


def same_pairs(a: Path, b: Path) -> bool:
    """Whether two pairs files hold the same images, kernels and records."""
    with h5py.File(a, "r") as f, h5py.File(b, "r") as g:
        return all(np.array_equal(f[name][...], g[name][...]) for name in f)


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=640)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--kernel-size", type=int, default=31)
    parser.add_argument("--shard-pairs", type=int, default=64)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "ray_scaling.json")
    args = parser.parse_args()

    usable = [p for p in bundled_images()
              if min(read_image(p).shape[:2]) >= args.patch + args.kernel_size - 1]  # fmt: skip
    per_image = -(-args.pairs // len(usable))
    config = DatasetConfig(patch=args.patch, per_image=per_image, kernel_size=args.kernel_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference = folder / "local_1.h5"
        for workers in (1, 2):
            out = folder / f"local_{workers}.h5"
            began = time.perf_counter()
            summary = make_dataset(usable, out, config, workers=workers)
            rows.append({"name": f"local pool, {workers} worker(s)", "workers": workers,
                         "pairs": summary["pairs"], "seconds": time.perf_counter() - began,
                         "same_pairs": same_pairs(reference, out)})  # fmt: skip
        for cpus in (1, 2):
            began = time.perf_counter()
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING")
            start_up = time.perf_counter() - began
            out = folder / f"ray_{cpus}.h5"
            began = time.perf_counter()
            summary = make_dataset_ray(usable, out, config, shard_pairs=args.shard_pairs)
            seconds = time.perf_counter() - began
            ray.shutdown()
            rows.append({"name": f"Ray, {cpus} worker(s)", "workers": cpus,
                         "pairs": summary["pairs"], "seconds": seconds,
                         "ray_init_s": start_up, "shards": summary["shards"],
                         "same_pairs": same_pairs(reference, out)})  # fmt: skip

    for row in rows:
        row["pairs_per_s"] = row["pairs"] / row["seconds"]
    local_1, local_2, ray_1, ray_2 = rows
    scaling = {"local": local_2["pairs_per_s"] / local_1["pairs_per_s"],
               "ray": ray_2["pairs_per_s"] / ray_1["pairs_per_s"],
               "ray_vs_local_2": ray_2["pairs_per_s"] / local_2["pairs_per_s"]}  # fmt: skip
    print(f"P={args.patch}, K={args.kernel_size}, {local_1['pairs']} pairs from the bundled "
          f"photos, shards of {args.shard_pairs}, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'':28s} {'seconds':>8s} {'pairs/s':>8s} {'same pairs':>11s}")
    for row in rows:
        print(f"{row['name']:28s} {row['seconds']:8.2f} {row['pairs_per_s']:8.1f} "
              f"{str(row['same_pairs']):>11s}")  # fmt: skip
    print(f"1 -> 2 workers: local {scaling['local']:.2f}x, Ray {scaling['ray']:.2f}x; Ray with 2 "
          f"workers is {scaling['ray_vs_local_2']:.2f}x the local pool's pairs/s "
          f"(ray.init: {ray_1['ray_init_s']:.1f} s and {ray_2['ray_init_s']:.1f} s, not "
          "counted)")  # fmt: skip
    result = {
        **run_record("ray_scaling"),
        "ray_version": ray.__version__,
        "patch": args.patch, "kernel_size": args.kernel_size, "shard_pairs": args.shard_pairs,
        "rows": rows, "scaling": scaling,
    }  # fmt: skip
    write_json(args.json, result)


if __name__ == "__main__":
    main()
