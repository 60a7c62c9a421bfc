"""Pairs from video: make-dataset's rate on a video source, and the share spent decoding.

A clip is made here (or given with ``--clip``): a 1280x720 scene the camera pans across, with a
sprite moving on its own, written losslessly (FFV1) and, where OpenCV's FFmpeg can, as H.264 or
MPEG-4 Part 2 in .mp4 (a long-GOP codec, whose seeks decode from the last keyframe). Each is
made into pairs by make-dataset (``--frames``, P = ``--patch``), without and with
interpolation, and the time spent in :meth:`blurgen.video.Video.window` (decoding and cutting
the window) and in the optical flow is measured in the same runs. The baseline, in the same
run: make-dataset on the clip's frames saved as photos, with kernel blur of the preset none at
K = ``--kernel-size`` (a photo pair's rate on this machine). Prints a table, writes JSON and a
picture of pairs (sharp | blurred | blurred with interpolation).

    python bench/video.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
from common import run_record, write_json

import blurgen.video as video_module
from blurgen.io import write_png
from blurgen.pipeline import make_dataset, regenerate
from blurgen.presets import load

HERE = Path(__file__).resolve().parent


def make_clip(folder: Path, frames: int, speed: int, codecs: list[str]) -> dict[str, Path]:
    """The test clip in each codec that opens: a textured scene panned ``speed`` px a frame,
    and a disc crossing it at three times that."""
    rng = np.random.default_rng(0)
    height, width = 720, 1280
    scene = cv2.GaussianBlur(rng.random((height, width + speed * frames, 3)), (0, 0), 3)
    scene = (scene * 700 - 220).clip(0, 255).astype(np.uint8)
    for _ in range(300):  # edges: rectangles of flat colour
        y, x = rng.integers(0, height - 40), rng.integers(0, scene.shape[1] - 60)
        scene[y : y + rng.integers(8, 40), x : x + rng.integers(8, 60)] = rng.integers(0, 256, 3)
    clips = {}
    for codec in codecs:
        suffix = ".mkv" if codec == "FFV1" else ".mp4"
        path = folder / f"clip_{codec}{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 240, (width, height))
        if not writer.isOpened():
            continue
        for i in range(frames):
            frame = np.ascontiguousarray(scene[:, speed * i : speed * i + width])
            cv2.circle(frame, (200 + 3 * speed * i, 360), 50, (40, 40, 230), -1)
            writer.write(frame)
        writer.release()
        clips[codec] = path
    return clips


def timed_run(sources: list, output: Path, config, workers: int) -> dict:
    """make-dataset's seconds and rate, and the seconds spent reading windows and in flow."""
    spent = {"window": 0.0, "flow": 0.0}
    window, flows = video_module.Video.window, video_module.interpolation_flows

    def timed(name, function):
        def run(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - began

        return run

    with (
        mock.patch.object(video_module.Video, "window", timed("window", window)),
        mock.patch.object(video_module, "interpolation_flows", timed("flow", flows)),
    ):
        began = time.perf_counter()
        summary = make_dataset(sources, output, config, workers=workers, overwrite=True)
        seconds = time.perf_counter() - began
    # Summed over the workers' threads: shares of the workers' time.
    busy = seconds * workers
    return {
        "pairs": summary["pairs"],
        "seconds": seconds,
        "pairs_per_s": summary["pairs"] / seconds,
        "decoding_share": spent["window"] / busy,
        "flow_share": spent["flow"] / busy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, help="a video to use instead of the made one")
    parser.add_argument("--frames-count", type=int, default=120, help="frames of the made clip")
    parser.add_argument("--speed", type=int, default=3, help="pan of the made clip, px a frame")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--kernel-size", type=int, default=31)
    parser.add_argument("--per-image", type=int, default=64)
    parser.add_argument("--frames", default="7,13")
    parser.add_argument("--interpolate", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "video.json")
    args = parser.parse_args()

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = {"given": args.clip} if args.clip else make_clip(
            folder, args.frames_count, args.speed, ["FFV1", "avc1", "mp4v"])  # fmt: skip
        first = next(iter(clips.values()))
        capture = cv2.VideoCapture(str(first))
        photos = []
        for i in range(8):  # the baseline's photos: frames of the clip
            capture.set(cv2.CAP_PROP_POS_FRAMES, i * 10)
            ok, frame = capture.read()
            if ok:
                photos.append(folder / f"frame{i}.png")
                cv2.imwrite(str(photos[-1]), frame)
        capture.release()
        base = dict(patch=args.patch, kernel_size=args.kernel_size)
        photo_config = load("none", per_image=max(1, args.per_image // len(photos)), **base)
        rows["photos, kernel blur (baseline)"] = timed_run(
            photos, folder / "photos.h5", photo_config, args.workers
        )
        outputs = {}
        for codec, clip in clips.items():
            for k in (1, args.interpolate):
                config = load("none", per_image=args.per_image, frames=args.frames,
                              interpolate=k, **base)  # fmt: skip
                outputs[codec, k] = folder / f"{codec}_{k}.h5"
                rows[f"video {codec}, interpolate {k}"] = timed_run(
                    [clip], outputs[codec, k], config, args.workers
                )
        baseline = rows["photos, kernel blur (baseline)"]["pairs_per_s"]
        print(f"| {'source':32s} | pairs | pairs/s | of baseline | decoding | flow |")
        for name, row in rows.items():
            row["of_baseline"] = row["pairs_per_s"] / baseline
            print(f"| {name:32s} | {row['pairs']:5d} | {row['pairs_per_s']:7.1f} | "
                  f"{row['of_baseline']:11.2f} | {row['decoding_share']:8.0%} | "
                  f"{row['flow_share']:4.0%} |")  # fmt: skip
        codec = next(iter(clips))
        panels = []
        for row in range(3):
            sharp, blurred = regenerate(outputs[codec, 1], row)
            _, smooth = regenerate(outputs[codec, args.interpolate], row)
            panels.append(np.concatenate([sharp, blurred, smooth], axis=1))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        picture = write_png(args.json.with_suffix(".png"), np.concatenate(panels, axis=0))
    write_json(args.json, {**run_record("video"), "settings": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "codecs": list(clips), "rows": rows,
        "picture": {"file": picture.name, "panels": f"sharp | blurred | blurred, interpolate "
                    f"{args.interpolate}; a row a pair"}})  # fmt: skip


if __name__ == "__main__":
    main()
