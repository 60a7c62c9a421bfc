"""Videos as sources of pairs: blur made by averaging consecutive frames in linear light, as the
GoPro and REDS datasets were made, optionally with frames interpolated by optical flow between
neighbours so that the average is one continuous exposure rather than a row of copies.

A video is a file OpenCV's FFmpeg backend decodes (:data:`VIDEO_SUFFIXES`) or a folder of
numbered frames. :class:`Video` reads a window of frames as crops, never the whole video; the
frames are counted and the last one decoded when it opens, so that a truncated file is refused
rather than half-used. :func:`average_frames` is the blur; :func:`interpolation_flows` and
:func:`ghost_gap` measure how far apart the averaged copies of a moving point land.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .forward import valid_offset
from .io import decode_image

# The kind of source a video is (the method that reads it has it as its ``source``).
KIND = "video"
# Files read as videos among make-dataset's sources.
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}
# Files read as frames of a --frames-dir folder.
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_HASH_BLOCK = 1 << 22
# Frames decoded and dropped rather than seeking, when a window starts this few frames ahead:
# some demuxers (Matroska through OpenCV) seek by decoding from the start.
_SKIP_AHEAD = 48
# What opening a file found, by its path, size and modification time, for the jobs of a run that
# open it again: fingerprint, frames, size (checking the last frame decodes may decode them all).
_OPENED: dict[tuple, tuple[str, int, tuple[int, int]]] = {}
_OPENED_KEPT = 256
# Decoded frames a Video keeps, in bytes: the windows of a job overlap.
_RECENT_BYTES = 1 << 26


def is_video(path: str | os.PathLike) -> bool:
    """Whether a source is read as a video: a file with a video suffix, or a folder (of
    numbered frames)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in VIDEO_SUFFIXES


def _frame_number(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


class Video:
    """A video file or a folder of numbered frames, read a window of crops at a time.

    Attributes:
        path: the file or folder.
        fingerprint: 32 hex digits identifying its bytes (for a folder, its frames' names and
            bytes in order).
        frames: how many frames decode.
        size: ``(height, width)`` of a frame, px (after the rotation the file records).
    """

    def __init__(self, path: Path, fingerprint: str, frames: int, size: tuple[int, int],
                 files: list[Path] | None) -> None:  # fmt: skip
        self.path = path
        self.fingerprint = fingerprint
        self.frames = frames
        self.size = size
        self._files = files
        self._capture: Any = None
        self._next = -1  # the frame the capture decodes next
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()

    @classmethod
    def open(cls, path: str | os.PathLike) -> Video:
        """Open a video file or a folder of frames, check that every frame decodes, and
        fingerprint it.

        Raises:
            FileNotFoundError: no such file or folder. ValueError: not a video OpenCV can
                decode, no frames, frames of different sizes, or a truncated file (the message
                names the path and the reason).
        """
        path = Path(path)
        if path.is_dir():
            return cls._open_folder(path)
        if not path.is_file():
            raise FileNotFoundError(f"'{path}': no such file")
        status = path.stat()
        key = (str(path.resolve()), status.st_size, status.st_mtime_ns)
        if key in _OPENED:
            return cls(path, *_OPENED[key], None)
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as stream:
            while block := stream.read(_HASH_BLOCK):
                digest.update(block)
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            if not capture.isOpened():
                raise ValueError(f"'{path}': not a video OpenCV can decode")
            ok, frame = capture.read()
            if not ok:
                raise ValueError(f"'{path}': no frame decodes")
            stated = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            decoded = _decodable_frames(capture, stated)
            if decoded < stated:
                raise ValueError(f"'{path}': truncated: its header states {stated} frames, "
                                 f"{decoded} decode")  # fmt: skip
        finally:
            capture.release()
        if len(_OPENED) >= _OPENED_KEPT:
            _OPENED.pop(next(iter(_OPENED)))
        _OPENED[key] = (digest.hexdigest(), decoded, frame.shape[:2])
        return cls(path, *_OPENED[key], None)

    @classmethod
    def _open_folder(cls, folder: Path) -> Video:
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES),
                       key=_frame_number)  # fmt: skip
        if not files:
            raise ValueError(f"'{folder}': no frames ({', '.join(sorted(FRAME_SUFFIXES))})")
        digest = hashlib.blake2b(digest_size=16)
        size = None
        for file in files:
            data = file.read_bytes()
            digest.update(file.name.encode() + b"\0" + len(data).to_bytes(8, "little"))
            digest.update(data)
            if size is None:
                size = decode_image(data, str(file)).shape[:2]
        return cls(folder, digest.hexdigest(), len(files), size, files)

    def window(self, first: int, count: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        """Frames ``first .. first + count - 1``, each cut to rows ``y .. y + height - 1`` and
        columns ``x .. x + width - 1``: (count, height, width, 3) uint8 RGB.

        Raises:
            ValueError: the window or the region is outside the video, or a frame fails to
                decode or differs in size.
        """
        rows, cols = self.size
        if not (0 <= first and count > 0 and first + count <= self.frames and 0 <= y
                and 0 <= x and y + height <= rows and x + width <= cols):  # fmt: skip
            raise ValueError(f"'{self.path}': frames {first}+{count}, region ({y}, {x}) + "
                             f"{height}x{width} are outside its {self.frames} frames of "
                             f"{rows}x{cols}")  # fmt: skip
        out = np.empty((count, height, width, 3), np.uint8)
        for k in range(count):
            frame = self._frame(first + k)
            if frame.shape[:2] != self.size:
                raise ValueError(f"'{self.path}': frame {first + k} is {frame.shape[1]}x"
                                 f"{frame.shape[0]}, not {cols}x{rows}")  # fmt: skip
            out[k] = _rgb8(frame[y : y + height, x : x + width], self.path)
        return out

    def _frame(self, index: int) -> np.ndarray:
        if index in self._recent:
            return self._recent[index]
        frame = self._decode(index)
        self._recent[index] = frame
        while len(self._recent) > 1 and frame.nbytes * len(self._recent) > _RECENT_BYTES:
            self._recent.popitem(last=False)
        return frame

    def _decode(self, index: int) -> np.ndarray:
        if self._files is not None:
            file = self._files[index]
            return decode_image(file.read_bytes(), str(file))
        if self._capture is None:
            self._capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
            self._next = 0
        if 0 <= self._next <= index <= self._next + _SKIP_AHEAD:
            for _ in range(index - self._next):  # decoding on is cheaper than a seek
                self._capture.grab()
        else:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self._capture.read()
        if not ok:
            self._next = -1
            raise ValueError(f"'{self.path}': frame {index} does not decode")
        self._next = index + 1
        return frame

    def close(self) -> None:
        """Release the decoder (it reopens when a window is read)."""
        if self._capture is not None:
            self._capture.release()
            self._capture, self._next = None, -1
        self._recent.clear()


def _decodable_frames(capture: Any, stated: int) -> int:
    """Frames that decode: the stated count when its last frame decodes, else counted."""
    if stated > 1:
        capture.set(cv2.CAP_PROP_POS_FRAMES, stated - 1)
        if capture.grab():
            return stated
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    count = 0
    while capture.grab():
        count += 1
    return count


def _rgb8(frame: np.ndarray, path: Path) -> np.ndarray:
    """A decoded frame (BGR, BGRA or grey; 8 or 16 bits) as uint8 RGB."""
    if frame.dtype == np.uint16:
        frame = ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise ValueError(f"'{path}': frames of {frame.dtype} are not supported")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGR2RGB if frame.shape[2] == 3 else cv2.COLOR_BGRA2RGB
    return cv2.cvtColor(frame, code)


def interpolation_flows(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optical flow between each pair of neighbouring frames, both ways (OpenCV's DIS, on
    their grey values).

    Args:
        frames: (N, H, W, 3) uint8 encoded frames, N >= 2.

    Returns:
        ``(forward, backward)``: (N - 1, H, W, 2) float32 (x, y) displacements in px, from
        frame i to i + 1 and from i + 1 to i.
    """
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    pairs = list(zip(grey[:-1], grey[1:], strict=True))
    forward = np.stack([flow.calc(a, b, None) for a, b in pairs])
    backward = np.stack([flow.calc(b, a, None) for a, b in pairs])
    return forward, backward


def step_motion(forward: np.ndarray, interpolate: int = 1) -> float:
    """How far a point moves between neighbouring frames of the average, px: the 99th
    percentile of the flow's magnitude over ``interpolate``.

    Args:
        forward: (N - 1, H, W, 2) flows between neighbouring frames, px.
        interpolate: frames per original interval after interpolation (1: none).
    """
    speed = np.hypot(forward[..., 0], forward[..., 1])
    return float(np.percentile(speed, 99) / interpolate)


def ghost_gap(forward: np.ndarray, interpolate: int = 1) -> float:
    """How far apart, at most, neighbouring copies of a moving point land in the average: the
    99th percentile of the flow's magnitude over ``interpolate``, less the 1 px a copy covers
    (0: copies touch, and the average is a continuous streak; above: gaps of ghosts).

    Args:
        forward: (N - 1, H, W, 2) flows between neighbouring frames, px.
        interpolate: frames per original interval after interpolation (1: none).
    """
    return max(0.0, step_motion(forward, interpolate) - 1.0)


def average_frames(
    light: Any,
    size: int,
    boundary: str,
    flows: tuple[np.ndarray, np.ndarray] | None = None,
    interpolate: int = 1,
) -> np.ndarray:
    """The blur of a window: the mean of its frames in linear light, with ``interpolate - 1``
    frames warped in between each pair of neighbours (from both sides by the flows, blended by
    time), so ``interpolate * (N - 1) + 1`` frames in all.

    Args:
        light: (N, H, W, C) float32 linear light, on the host.
        size: the kernel side the dataset's layout uses; with ``"valid"``, the output is the
            centre ``H - size + 1`` x ``W - size + 1`` (aligned with the middle frame's).
        boundary: ``"valid"``, or another (the whole frame).
        flows: :func:`interpolation_flows` of the window, when interpolating.
        interpolate: K >= 1; K > 1 needs ``flows``.

    Returns:
        (H', W', C) float32 linear light.
    """
    light = np.asarray(light, np.float32)
    total = light.sum(axis=0)
    count = len(light)
    if interpolate > 1:
        if flows is None:
            raise ValueError("interpolating frames needs their flows")
        forward, backward = flows
        height, width = light.shape[1:3]
        grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                    np.arange(height, dtype=np.float32)), axis=-1)  # fmt: skip
        for i in range(count - 1):
            for j in range(1, interpolate):
                t = np.float32(j / interpolate)
                earlier = _warp(light[i], grid - t * forward[i])
                later = _warp(light[i + 1], grid - (1 - t) * backward[i])
                total += (1 - t) * earlier + t * later
        count += (count - 1) * (interpolate - 1)
    mean = total / np.float32(count)
    if boundary != "valid":
        return mean
    o = valid_offset(size)
    return mean[o : o + mean.shape[0] - size + 1, o : o + mean.shape[1] - size + 1]


def _warp(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``where`` (H, W, 2 of x, y), bilinearly, borders replicated."""
    out = cv2.remap(image, where[..., 0], where[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out.reshape(image.shape)


def middle(frames: Sequence[Any]) -> Any:
    """The window's middle frame (its sharp image; windows have an odd count)."""
    return frames[len(frames) // 2]
