"""Datasets stay byte for byte what they were: every method and preset, one and two workers,
processes and Ray, and ``blurgen blur``'s images, against digests recorded by an earlier
version (``tests/data/same_data.json``).

A change that alters what blurgen writes must say so: rewrite the digests deliberately with
``python tests/test_same_data.py --write`` and explain why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli.main import cli

DIGESTS = Path(__file__).parent / "data" / "same_data.json"
SMALL = ["--preset", "none", "--kernel-size", "9", "--patch", "40", "--read", "0,0.02",
         "--jpeg", "60,90"]  # fmt: skip
# name: make-dataset arguments after the sources and output.
# fmt: off
CASES = {
    "motion": [*SMALL, "--blur", "motion"],
    "linear": [*SMALL, "--blur", "linear"],
    "camera": [*SMALL, "--blur", "camera", "--camera-steps", "8"],
    "bgan": [*SMALL, "--blur", "bgan"],
    "mixed": [*SMALL, "--mix", "motion=1,linear=1,camera=1,bgan=1"],
    "mixed-2-workers": [*SMALL, "--mix", "motion=1,linear=1,camera=1,bgan=1", "--workers", "2"],
    "mixed-processes": [*SMALL, "--mix", "motion=1,linear=1,camera=1", "--workers", "2",
                        "--executor", "processes"],
    "camera-shake": ["--patch", "64"],
    "deblurgan": ["--preset", "deblurgan", "--patch", "64"],
    "ray": [*SMALL, "--mix", "motion=1,linear=1,camera=1", "--ray", "local", "--workers", "2",
            "--shard-pairs", "4"],
}
# fmt: on


def digests(path: Path) -> dict[str, str]:
    """SHA-256 of every dataset of a pairs file (its dtype, shape and bytes) and of the root
    attributes that a run's code decides (not the version)."""

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:32]

    out = {}
    with h5py.File(path, "r") as f:
        for name in sorted(f):
            array = f[name][...]
            if array.dtype.kind == "O":
                array = np.array([str(v, "utf-8") if isinstance(v, bytes) else v for v in array])
                # Source paths differ between machines; their number and order do not.
                array = np.array([Path(v).name for v in array]) if name == "sources" else array
            out[name] = digest(f"{array.dtype}{array.shape}".encode() + array.tobytes())
        for key in ("schema", "config", "root_seed", "complete", "skipped"):
            out["@" + key] = digest(str(f.attrs[key]).encode())
    return out


# name: ``blurgen blur`` arguments after the image and output folder.
BLUR_CASES = {
    "blur-motion": ["--size", "15", "--read", "0,0.02", "--jpeg", "60,90"],
    "blur-camera": ["--blur", "camera", "--size", "15", "--camera-steps", "8"],
    "blur-bgan": ["--bgan"],
}


def blurred_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of each image ``blurgen blur`` wrote (decoded) and of its records."""
    import cv2

    out = {path.name: hashlib.sha256(cv2.imread(str(path)).tobytes()).hexdigest()[:32]
           for path in sorted(folder.glob("*.png"))}  # fmt: skip
    summary = json.loads((folder / "blur.json").read_text())
    for entry in summary["images"]:
        del entry["image"]
    record = json.dumps([summary["config"], summary["images"]], sort_keys=True)
    out["blur.json"] = hashlib.sha256(record.encode()).hexdigest()[:32]
    return out


def make(case: str, folder: Path) -> dict[str, str]:
    """Run one case in ``folder``; the digests of what it wrote."""
    from blurgen.pipeline import bundled_images

    if case in BLUR_CASES:
        image = str(bundled_images()[1])
        out = folder / case
        result = CliRunner().invoke(cli, ["blur", image, "-o", str(out), "--seed", "3", "-q",
                                          *BLUR_CASES[case]])  # fmt: skip
        assert result.exit_code == 0, result.output + repr(result.exception)
        return blurred_digests(out)
    output = folder / f"{case}.h5"
    sources = [str(p) for p in bundled_images()[:2]]
    args = ["make-dataset", *sources, "-o", str(output), "--per-image", "3", "--seed", "7",
            "-q", *CASES[case]]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return digests(output)


@pytest.mark.parametrize("case", [*CASES, *BLUR_CASES])
def test_datasets_are_what_they_were(case, tmp_path):
    if case == "ray":
        pytest.importorskip("ray")
    expected = json.loads(DIGESTS.read_text())[case]
    got = make(case, tmp_path)
    differ = sorted(name for name in expected.keys() | got.keys()
                    if expected.get(name) != got.get(name))  # fmt: skip
    assert not differ, f"{case}: these differ from the recorded dataset: {differ}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {sys.argv[0]} --write  (records today's data as the reference)")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        recorded = {case: make(case, Path(folder)) for case in (*CASES, *BLUR_CASES)}
    DIGESTS.parent.mkdir(exist_ok=True)
    DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS}")
