"""Frame averaging: the blur of a video source's samples, the mean of a window of consecutive
frames in linear light around its sharp middle frame (the GoPro and REDS recipe), optionally
with frames interpolated by optical flow in between (see :mod:`blurgen.video`).

Unlike the other methods, it is chosen by the source, not drawn: every sample of a video is
averaged, and photos never are."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from blurgen.forward import valid_offset
from blurgen.schema import Column
from blurgen.settings import Setting
from blurgen.video import KIND, interpolation_flows, step_motion

from .base import BlurMethod, Job, to_uint8


@dataclass(frozen=True)
class VideoModel:
    """How windows of a video are averaged.

    Attributes:
        frames: ``(low, high)``: each window has an odd number of frames drawn evenly from
            those in this range (odd, so that its middle is a frame: the sharp image).
        interpolate: K >= 1: K - 1 frames are made by optical flow between each pair of
            neighbours before averaging (1: none).
        max_motion: windows in which points move more than this between neighbouring frames
            of the average (px; :func:`blurgen.video.step_motion`) are passed over for the
            next one that does not; None: every window is used.
    """

    frames: tuple[int, int] = (7, 13)
    interpolate: int = 1
    max_motion: float | None = None

    def __post_init__(self) -> None:
        low, high = (self.frames, self.frames) if np.ndim(self.frames) == 0 else self.frames
        if float(low) != int(low) or float(high) != int(high) or not 1 <= low <= high:
            raise ValueError(f"frames must be whole numbers 1 <= LOW <= HIGH, got {self.frames!r}")
        if not self.counts(int(low), int(high)):
            raise ValueError(f"frames {low},{high} holds no odd count: a window's middle frame "
                             "is its sharp image")  # fmt: skip
        object.__setattr__(self, "frames", (int(low), int(high)))
        if float(self.interpolate) != int(self.interpolate) or self.interpolate < 1:
            raise ValueError(f"interpolate must be a whole number >= 1, got {self.interpolate!r}")
        object.__setattr__(self, "interpolate", int(self.interpolate))
        if self.max_motion is not None and not float(self.max_motion) > 0:
            raise ValueError(f"max_motion must be > 0 px, got {self.max_motion!r}")

    @staticmethod
    def counts(low: int, high: int) -> list[int]:
        """The odd counts from ``low`` to ``high``."""
        return [n for n in range(low, high + 1) if n % 2]


@dataclass(frozen=True)
class VideoWindow:
    """What a video sample's record keeps: its frames ``first .. first + count - 1`` and the
    frames interpolated per interval."""

    first: int
    count: int
    interpolate: int


class VideoBlur(BlurMethod):
    """The mean of a window of a video's frames; the record keeps the window
    (:class:`VideoWindow`), the kernel column zeros."""

    name = "video"
    title = "frame averaging"
    code = 4
    source = KIND
    help = ("averaged video frames (used for video sources, which it alone blurs: --frames, "
            "--interpolate)")  # fmt: skip
    section = "video"
    has_kernel = False
    settings = (
        Setting("frames", "video: frames averaged per pair, an odd count drawn from this range "
                "(one number: always that many) [7,13].", kind="range", metavar="LOW,HIGH"),
        Setting("interpolate", "video: K - 1 frames made by optical flow (OpenCV's DIS) between "
                "neighbours before averaging, so fast motion blurs into a streak rather than "
                "copies [1: none].", kind="int", minimum=1),
        Setting("max_motion", "video: pass over windows in which points move more than PX "
                "between neighbouring frames of the average (the flow's 99th percentile over "
                "K): they average to ghost copies. The next window that moves less is used; a "
                "video with none is skipped [none].", kind="float", metavar="PX"),
    )  # fmt: skip

    def section_from_settings(self, values: dict[str, Any]) -> VideoModel | None:
        given = {name: v for name, v in values.items() if v is not None}
        return VideoModel(**given) if given else None

    def used_section(self, value: Any) -> VideoModel:
        return VideoModel() if value is None else value

    def section_to_dict(self, config) -> dict:
        if config.video is None:
            return {}
        video = config.video
        values = {"frames": list(video.frames), "interpolate": video.interpolate}
        if video.max_motion is not None:
            values["max_motion"] = video.max_motion
        return {self.section: values}

    def section_from_dict(self, value: Any) -> VideoModel | None:
        return VideoModel(**value) if value else None

    def settings_of(self, config) -> dict:
        if config.video is None:
            return {}
        video = config.video
        return {"frames": ",".join(map(str, video.frames)), "interpolate": video.interpolate,
                "max_motion": video.max_motion}  # fmt: skip

    def crop_reason(self, config) -> str:
        return f"need frames of {config.crop} px"

    def draw(self, rngs, config, device):
        counts = VideoModel.counts(*config.video.frames)
        return [(counts[int(rng.integers(len(counts)))], float(rng.random())) for rng in rngs]

    def place(self, drawn, config, side, photo, origin, flips, params):
        count, u = drawn
        frames = photo[2]  # a video's size is (height, width, frames)
        first = min(int(u * (frames - count + 1)), frames - count)
        return VideoWindow(first, count, config.video.interpolate), params, None

    def render(self, crop, sharp, kernel, record, degradation, learned, dtype):
        raise ValueError("a video sample renders from its window of frames: use "
                         "Synthesiser.make or blurgen.pipeline.regenerate")  # fmt: skip

    def render_job(self, job: Job) -> None:
        size, degradation = job.config.kernel_size, job.config.degradation

        # In order of their windows in each video: a decoder reads on rather than seeking.
        def position(k: int) -> tuple[str, int]:
            return str(job.photos[k].path), job.records[k].drawn.first

        order = sorted(range(len(job.rows)), key=position)
        for k in order:
            r, record = job.rows[k], job.records[k]
            window, frames, flows = self._window(job.photos[k], record, job.side,
                                                 job.config.video.max_motion)  # fmt: skip
            if window != record.drawn:  # a slower window than the drawn one
                job.records[k] = replace(record, drawn=window)
            horizontal, vertical = record.flips
            frames = np.ascontiguousarray(
                frames[:, :: -1 if vertical else 1, :: -1 if horizontal else 1]
            )
            if flows is not None and (horizontal or vertical):
                flows = None  # measured before the flips: made again after them
            sharp = frames[len(frames) // 2]
            if degradation.boundary == "valid":
                o, side = valid_offset(size), job.side - size + 1
                sharp = sharp[o : o + side, o : o + side]
            job.sharp[r] = sharp
            job.blurred[r] = to_uint8(
                degradation.render_frames(
                    frames,
                    size,
                    record.params,
                    interpolate=window.interpolate,
                    flows=flows,
                    dtype=np.uint8,
                )
            )

    @staticmethod
    def _window(
        video: Any, record: Any, side: int, max_motion: float | None
    ) -> tuple[VideoWindow, np.ndarray, tuple | None]:
        """The sample's window, its frames (before flips) and their flows where measured: the
        drawn window, or under ``max_motion`` the first from it on (wrapping to the start)
        whose points move at most that far between frames of the average.

        Raises:
            ValueError: no window of the video moves slowly enough (its message names it).
        """
        window = record.drawn
        starts = video.frames - window.count + 1
        for step in range(starts if max_motion else 1):
            first = (window.first + step) % starts
            frames = video.window(first, window.count, *record.origin, side, side)
            if not max_motion:
                return window, frames, None
            flows = interpolation_flows(frames)
            if step_motion(flows[0], window.interpolate) <= max_motion:
                return replace(window, first=first), frames, flows
        raise ValueError(f"'{video.path}': no window of {window.count} frames moves less than "
                         f"{max_motion:g} px between frames of its average (--max-motion) at "
                         f"({record.origin[0]}, {record.origin[1]})")  # fmt: skip

    def columns(self, config) -> dict[str, Column]:
        return {
            "video_first": Column(np.int32, (), "video samples: the window's first frame "
                                  "(from 0); others 0"),
            "video_frames": Column(np.int16, (), "video samples: frames averaged (odd; the "
                                   "sharp image is the middle one); others 0"),
            "video_interpolate": Column(np.int16, (), "video samples: frames per interval after "
                                        "interpolation (1: none); others 0"),
        }  # fmt: skip

    def column_values(self, records, config, crop) -> dict[str, np.ndarray]:
        values = {name: np.zeros(len(records), column.dtype)
                  for name, column in self.columns(config).items()}  # fmt: skip
        for k, record in enumerate(records):
            if record.method == self.name:
                window = record.drawn
                values["video_first"][k] = window.first
                values["video_frames"][k] = window.count
                values["video_interpolate"][k] = window.interpolate
        return values

    def read(self, f, row) -> VideoWindow:
        return VideoWindow(int(f["video_first"][row]), int(f["video_frames"][row]),
                           int(f["video_interpolate"][row]))  # fmt: skip

    def shown_kernels(self, record, kernel, config, shape):
        return None

    def report(self, record, config) -> dict:
        window = record.drawn
        return {"video": {"first": window.first, "frames": window.count,
                          "interpolate": window.interpolate}}  # fmt: skip
