"""What the bench scripts share (they run as ``python bench/NAME.py``, so this imports as
``common``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import blurgen
from blurgen.backend import BackendUnavailable, check_torch_device


def torch_device(device: str) -> str:
    """An argparse ``type`` for ``--device``: the device checked for the PyTorch networks,
    otherwise a usage error saying why it cannot be used."""
    try:
        return check_torch_device(device)
    except (ValueError, BackendUnavailable) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_record(benchmark: str) -> dict:
    """What a bench's JSON starts with: its name, the command that ran it, blurgen's version and
    the machine."""
    return {
        "benchmark": benchmark,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "blurgen_version": blurgen.__version__,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


def write_json(path: Path, result: dict) -> None:
    """Write a bench's result as indented JSON at ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def realism_table(sets: dict[str, list[dict]], reference: list[dict]) -> dict[str, dict]:
    """Print each set's realism distance to ``reference`` (overall, with its bootstrap
    interval, and per statistic) as a Markdown table; returns the comparisons as JSON-ready
    dicts, by label."""
    from blurgen.realism import RESAMPLES, STATISTICS, compare

    rows = {}
    print(f"| {'set':38s} | overall (95 % interval) | " + " | ".join(STATISTICS) + " |")
    for label, measured in sets.items():
        result = compare(measured, reference, resamples=RESAMPLES)
        rows[label] = result.to_dict()
        low, high = result.interval
        print(f"| {label:38s} | {result.overall:.2f} ({low:.2f}-{high:.2f}) | "
              + " | ".join(f"{result.distances[n]:.2f}" for n in STATISTICS) + " |")  # fmt: skip
    return rows


def paired_differences(
    measured: dict[str, list[dict]], against: dict[str, str], reference: list[dict]
) -> dict[str, dict]:
    """Print, as a Markdown table, each set's realism distance to ``reference`` minus that of
    the set ``against`` names for it, by a paired bootstrap (the sets hold the same samples in
    the same order), with its 95 % interval and verdict; returns them as JSON-ready dicts."""
    from blurgen.realism import RESAMPLES, compare_two

    print("| variant | than | difference (95 % interval) | verdict |")
    print("| --- | --- | ---: | --- |")
    differences = {}
    for label, other in against.items():
        difference = compare_two(measured[label], measured[other], reference,
                                 resamples=RESAMPLES, paired=True)  # fmt: skip
        low, high = difference.interval
        print(f"| {label} | {other} | {difference.difference:+.3f} ({low:+.3f} to "
              f"{high:+.3f}) | {difference.verdict} |")  # fmt: skip
        differences[label] = {"against": other, "difference": difference.difference,
                              "interval": [low, high], "verdict": difference.verdict}  # fmt: skip
    return differences
