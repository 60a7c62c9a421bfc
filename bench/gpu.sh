#!/usr/bin/env bash
# Every GPU check of blurgen in one run, for a machine lent a GPU for a few minutes:
#
#     bash bench/gpu.sh OUTDIR
#
# from the project root. It installs the project without touching the network (pip
# install --no-build-isolation --no-deps -e .: the machine's Python must already have torch,
# cupy, h5py, click, opencv; pytest from .gpu-wheels/ if it lacks it, made beforehand with
# `pip download -d .gpu-wheels pytest`, a folder git ignores: carry it over), then runs the
# gpu-marked tests and the GPU rows of the benches, each under a time limit (8 minutes in all,
# pytest's install included), and writes into OUTDIR: each bench's JSON, each step's output
# (NAME.txt), and summary.json (each step's exit status and seconds; 124 means it ran out of
# time). A step that fails does not stop the others. Before spending a GPU's minutes on it, the
# benches' CUDA rows can be tried here with NumPy standing in for CuPy (figures meaningless):
#     python tests/cupy_standin.py bench/make_dataset.py --large 0 --cuda-pairs 200
set -u
out=${1:?usage: bash bench/gpu.sh OUTDIR}
mkdir -p "$out"
summary="$out/summary.tsv"
: >"$summary"

step() {  # step NAME SECONDS COMMAND...: run, keep the output, record status and time
    local name=$1 limit=$2 began status
    shift 2
    echo "== $name" >&2
    began=$(date +%s)
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    status=$?
    printf '%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - began))" >>"$summary"
    tail -n 15 "$out/$name.txt" >&2
}

# The Python that holds the machine's PyTorch and CuPy (there a plain `python` may be another
# one, or none): python3 unless PYTHON says otherwise.
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1  # a step stopped at its limit keeps what it printed

step install 40 "$py" -m pip install --no-build-isolation --no-deps -e .
"$py" -c "import pytest" 2>/dev/null ||
    step pytest-install 20 "$py" -m pip install --no-index --find-links .gpu-wheels pytest
step devices 15 "$py" -m blurgen.cli info
step gpu-tests 110 "$py" -m pytest -m gpu -q -p no:cacheprovider --durations=8
# The array benches add their CUDA rows by themselves when CuPy finds a GPU.
step kernels 25 "$py" bench/kernels.py --repeat 2 --json "$out/kernels.json"
step blur 25 "$py" bench/blur.py --repeat 3 --json "$out/blur.json"
# The CPU rows once and the memory rows small: the GPU rows are what this machine is for.
step make_dataset 95 "$py" bench/make_dataset.py --large 0 --repeat 1 --rss-pairs 200 1000 \
    --cuda-pairs 6000 --json "$out/make_dataset.json"
# Training: both GANs at 128 px (float32, bf16), the published deblurrer also at 256 px.
step train_speed 70 "$py" bench/train_speed.py --device cuda --variants float32 bf16 \
    --json "$out/train_speed.json"
step train_speed_256 40 "$py" bench/train_speed.py --device cuda --patch 256 --networks rrdb \
    --variants float32 bf16 --json "$out/train_speed_256.json"
# Deblurring a 720p frame and a 12-megapixel photo with the published network.
step deblur_memory 40 "$py" bench/deblur_memory.py --device cuda --json "$out/deblur_memory.json"

"$py" - "$summary" "$out/summary.json" <<'PY'
import json, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
steps = [{"step": name, "status": int(status), "seconds": int(seconds)} for name, status, seconds in rows]
json.dump({"steps": steps, "total_seconds": sum(s["seconds"] for s in steps)}, open(sys.argv[2], "w"), indent=2)
print("\n".join(f"{s['step']:16s} status {s['status']:3d} {s['seconds']:4d} s" for s in steps))
PY
