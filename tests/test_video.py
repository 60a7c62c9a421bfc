"""Pairs from videos: frame averaging in linear light against a float64 reference, the sharp
middle frame's alignment, interpolation by flow, ghosting, seeking, bad videos, records that
replay, and the same file whatever the workers."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli.main import cli
from blurgen.degradation import Degradation
from blurgen.pipeline import DatasetConfig, make_dataset, regenerate
from blurgen.presets import load
from blurgen.torch import SyntheticPairs
from blurgen.video import Video, ghost_gap, interpolation_flows

NOISELESS = Degradation(space="srgb", boundary="valid")
HEIGHT, WIDTH = 120, 160


def scene(width: int, seed: int = 0) -> np.ndarray:
    """A textured (HEIGHT, width, 3) uint8 RGB scene, smooth enough for optical flow."""
    noise = np.random.default_rng(seed).random((HEIGHT, width, 3))
    return (cv2.GaussianBlur(noise, (0, 0), 2.5) * 600 - 170).clip(0, 255).astype(np.uint8)


def write_video(path, frames: list[np.ndarray], fps: int = 30) -> None:
    """Lossless FFV1 in Matroska, from RGB frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps,
                             (frames[0].shape[1], frames[0].shape[0]))  # fmt: skip
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def pan(speed: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """Frames of a camera panning right by ``speed`` px a frame over a scene."""
    wide = scene(WIDTH + speed * count, seed)
    return [wide[:, speed * i : speed * i + WIDTH] for i in range(count)]


def linear_mean(frames: np.ndarray) -> np.ndarray:
    """The float64 reference: the frames decoded from sRGB, averaged, encoded to bytes."""
    values = frames.astype(np.float64) / 255
    light = np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)
    light = light.mean(axis=0)
    encoded = np.where(light <= 0.0031308, 12.92 * light, 1.055 * light ** (1 / 2.4) - 0.055)
    return np.rint(np.clip(encoded, 0, 1) * 255)


def noiseless_params(rng_seed: int = 0):
    return NOISELESS.sample(np.random.default_rng(rng_seed))


def test_averaging_a_pan_is_the_mean_of_the_middle_frame_shifted_in_linear_light():
    frames = np.stack(pan(3, 7))
    size = 9
    out = NOISELESS.render_frames(frames, size, noiseless_params(), dtype=np.uint8)
    o = (size - 1) // 2
    # The middle frame's pixel x sees, in frame i, the scene at x + 3 (i - 3): the same content
    # as the reference, which shifts the middle frame itself (away from its borders).
    middle = frames[3].astype(np.int64)
    shifted = np.stack([np.roll(middle, -3 * (i - 3), axis=1) for i in range(7)])
    reference = linear_mean(shifted)[o : o + HEIGHT - size + 1, o : o + WIDTH - size + 1]
    inner = slice(10, -10)  # the rolls wrap around within 9 px of the sides
    assert out.shape == (HEIGHT - size + 1, WIDTH - size + 1, 3)
    assert np.abs(out[:, inner].astype(int) - reference[:, inner]).max() <= 1
    # Averaging encoded values instead (the naive recipe) is measurably different.
    naive = np.rint(shifted.mean(axis=0))[o : o + HEIGHT - size + 1, o : o + WIDTH - size + 1]
    assert np.abs(naive[:, inner] - reference[:, inner]).max() > 5


def test_interpolated_pan_is_the_dense_box_of_shifts():
    speed, count, k = 4, 5, 4
    frames = np.stack(pan(speed, count, seed=1))
    size = 9
    out = NOISELESS.render_frames(frames, size, noiseless_params(), interpolate=k, dtype=np.uint8)
    o = (size - 1) // 2
    middle = frames[count // 2].astype(np.int64)
    taps = k * (count - 1) + 1  # one every px
    shifts = [s - (taps // 2) for s in range(taps)]
    dense = linear_mean(np.stack([np.roll(middle, -s, axis=1) for s in shifts]))
    sparse = linear_mean(np.stack([np.roll(middle, -s, axis=1) for s in shifts[::k]]))
    crop = (slice(o + 8, o + HEIGHT - size + 1 - 8), slice(o + 16, o + WIDTH - size + 1 - 16))
    inner = (slice(8, -8), slice(16, -16))
    error = np.abs(out[inner].astype(int) - dense[crop])
    assert error.mean() < 1.0 and np.percentile(error, 99) <= 4
    # Without interpolation it is the 5-tap version, far from the box.
    assert np.abs(sparse[crop] - dense[crop]).mean() > 1.0 > 100 * error.mean()


def test_a_moving_sprite_blurs_only_along_its_path():
    background = scene(WIDTH, seed=2)
    frames = []
    for i in range(9):
        frame = background.copy()
        frame[50:70, 20 + 6 * i : 40 + 6 * i] = (255, 40, 40)
        frames.append(frame)
    frames = np.stack(frames)
    out = NOISELESS.render_frames(frames, 1, noiseless_params(), dtype=np.uint8)
    path = np.zeros((HEIGHT, WIDTH), bool)
    path[50:70, 20 : 40 + 6 * 8] = True
    assert np.array_equal(out[~path], frames[4][~path])  # the still background stays sharp
    assert np.abs(out[path].astype(int) - frames[4][path]).mean() > 20


def test_ghosting_is_measured_from_the_flow_and_interpolation_removes_it():
    speed, count = 8, 5
    frames = np.stack(pan(speed, count, seed=3))
    forward, backward = interpolation_flows(frames)
    inner = forward[:, 16:-16, 16:-16]
    assert np.median(inner[..., 0]) == pytest.approx(-speed, abs=0.5)  # content moves left
    assert ghost_gap(inner, 1) == pytest.approx(speed - 1, abs=1.0)
    assert ghost_gap(inner, speed) < 0.5
    # A thin bright line, averaged: copies with gaps between them without interpolation, one
    # continuous streak with it.
    lines = frames.copy()
    for i in range(count):
        lines[i, :, 80 - speed * (i - 2)] = 255
    profile = {}
    for k in (1, speed):
        out = NOISELESS.render_frames(lines, 1, noiseless_params(), interpolate=k, dtype=np.uint8)
        excess = out.astype(int) - NOISELESS.render_frames(
            frames, 1, noiseless_params(), interpolate=k, dtype=np.uint8
        ).astype(int)
        profile[k] = excess[30:90, 80 - 2 * speed : 80 + 2 * speed + 1].mean(axis=(0, 2))
    lit = lambda p: (p > 0.25 * p.max()).sum()  # noqa: E731
    assert lit(profile[1]) == count  # five copies, one px each
    assert lit(profile[speed]) >= 4 * speed  # a streak across the whole path


def test_windows_seek_to_the_exact_frame(tmp_path):
    frames = pan(2, 24, seed=4)
    path = tmp_path / "clip.mkv"
    write_video(path, frames)
    video = Video.open(path)
    assert (video.frames, video.size) == (24, (HEIGHT, WIDTH))
    for fresh in (False, True):  # decoding on, reusing frames, seeking; or always seeking
        for first in (17, 3, 4, 20, 0, 9):
            if fresh:
                video.close()
            window = video.window(first, 3, 10, 20, 50, 60)
            expected = np.stack([f[10:60, 20:80] for f in frames[first : first + 3]])
            assert np.array_equal(window, expected), (first, fresh)
    with pytest.raises(ValueError, match="outside"):
        video.window(22, 3, 0, 0, 10, 10)


def test_frame_folders_read_in_numeric_order(tmp_path):
    frames = pan(2, 12, seed=5)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):  # 2 before 10, though "10" sorts first as text
        cv2.imwrite(str(folder / f"f{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    video = Video.open(folder)
    assert video.frames == 12
    assert np.array_equal(video.window(1, 11, 0, 0, HEIGHT, WIDTH), np.stack(frames[1:]))


def video_config(**settings) -> DatasetConfig:
    return load("none", **{"patch": 48, "per_image": 5, "kernel_size": 9, "frames": "3,7",
                           **settings})  # fmt: skip


def test_video_pairs_replay_from_their_records_and_match_a_single_frame_crop(tmp_path):
    path = tmp_path / "clip.mkv"
    frames = pan(3, 20, seed=6)
    write_video(path, frames)
    out = tmp_path / "pairs.h5"
    config = video_config(read="0.002,0.004", jpeg="80,90", interpolate=2)
    summary = make_dataset([path], out, config, seed=3)
    assert summary["pairs"] == 5
    with h5py.File(out) as f:
        assert set(f["method"][:]) == {4} and not f["kernel"][:].any()
        counts = f["video_frames"][:]
        assert set(counts) <= {3, 5, 7} and (f["video_interpolate"][:] == 2).all()
        recorded = json.loads(f.attrs["config"])["video"]
        assert recorded == {"frames": [3, 7], "interpolate": 2}
        for row in range(5):
            sharp, blurred = regenerate(out, row)
            assert np.array_equal(sharp, f["sharp"][row])
            assert np.array_equal(blurred, f["blurred"][row])
            # The sharp image is the window's middle frame, cut where the record says.
            (y, x), (horizontal, vertical) = f["origin"][row], f["flips"][row]
            middle = frames[f["video_first"][row] + counts[row] // 2]
            crop = middle[y + 4 : y + 4 + 48, x + 4 : x + 4 + 48]
            crop = crop[:, ::-1] if horizontal else crop
            crop = crop[::-1] if vertical else crop
            assert np.array_equal(sharp, crop)


def test_same_video_dataset_whatever_the_workers_and_on_the_fly(tmp_path):
    paths = []
    for seed in range(3):
        paths.append(tmp_path / f"clip{seed}.mkv")
        write_video(paths[-1], pan(2 + seed, 16, seed=seed))
    config = video_config()
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    make_dataset(paths, one, config, seed=1)
    make_dataset(paths, two, config, seed=1, workers=2)
    with h5py.File(one) as a, h5py.File(two) as b:
        for name in ("sharp", "blurred", "video_first", "video_frames", "origin", "flips"):
            assert np.array_equal(a[name][:], b[name][:]), name
        sharp, blurred = a["sharp"][7], a["blurred"][7]
    pairs = SyntheticPairs(paths, config=config, seed=1)
    made = pairs.pairs([7])[0]
    assert np.array_equal(made[0], sharp) and np.array_equal(made[1], blurred)


def test_bad_videos_are_skipped_with_their_reason(tmp_path):
    good = tmp_path / "good.mkv"
    write_video(good, pan(2, 16))
    short = tmp_path / "short.mkv"
    write_video(short, pan(2, 4))
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all" * 100)
    truncated = tmp_path / "truncated.mkv"
    write_video(truncated, pan(2, 30, seed=1))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    summary = make_dataset([good, short, fake, truncated], tmp_path / "p.h5", video_config())
    reasons = {item["path"]: item["reason"] for item in summary["skipped"]}
    assert summary["pairs"] == 5
    assert "too short (4 frames)" in reasons[str(short)]
    assert "not a video" in reasons[str(fake)] or "no frame" in reasons[str(fake)]
    assert "truncated" in reasons[str(truncated)] or "decode" in reasons[str(truncated)]
    with pytest.raises(ValueError, match="--strict"):
        make_dataset([good, short], tmp_path / "q.h5", video_config(), strict=True)
    assert not (tmp_path / "q.h5").exists() and not (tmp_path / "q.h5.partial").exists()


def test_make_dataset_reads_videos_and_frame_folders_from_the_command_line(tmp_path):
    clip = tmp_path / "clip.mkv"
    write_video(clip, pan(2, 16))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(pan(3, 10, seed=7)):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "pairs.h5"
    args = ["make-dataset", str(clip), "--frames-dir", str(folder), "-o", str(out), "--preset",
            "none", "--patch", "48", "--kernel-size", "9", "--per-image", "2", "--frames",
            "5", "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert list(f["sources"].asstr()[:]) == [str(clip), str(folder)]
        assert (f["video_frames"][:] == 5).all()
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), scene(WIDTH))
    refused = CliRunner().invoke(cli, ["make-dataset", str(photo), "-o", str(tmp_path / "x.h5"),
                                       "--frames", "5"])  # fmt: skip
    assert refused.exit_code == 2 and "only applies to video sources" in refused.output


def test_max_motion_passes_over_fast_windows_and_skips_a_video_without_a_slow_one(tmp_path):
    wide = scene(WIDTH + 8 * 10 + 20, seed=8)
    offsets = [8 * i for i in range(10)] + [80 + i for i in range(12)]  # fast, then slow
    mixed = tmp_path / "mixed.mkv"
    write_video(mixed, [wide[:, o : o + WIDTH] for o in offsets])
    fast = tmp_path / "fast.mkv"
    write_video(fast, pan(8, 16, seed=9))
    out = tmp_path / "pairs.h5"
    config = video_config(frames="5", max_motion=2.5)
    # The video skipped first: the samples after it stay its neighbour's.
    summary = make_dataset([fast, mixed], out, config, seed=4)
    assert summary["pairs"] == 5
    (skipped,) = summary["skipped"]
    assert (
        skipped["path"] == str(fast)
        and "no window of 5 frames moves less than 2.5" in (skipped["reason"])
    )
    with h5py.File(out) as f:
        firsts = f["video_first"][:]
        assert (firsts >= 10).all()  # every window inside the slow part
        for row in range(5):
            sharp, blurred = regenerate(out, row)
            assert np.array_equal(blurred, f["blurred"][row])
    # Without the limit, windows start in the fast part too. Matroska files carry a random
    # segment id and the time of writing, so the draws change from run to run: 40 windows all
    # missing the first 10 of 18 starts would happen once in 10^14 runs (5 of them: one in 60).
    make_dataset([mixed], tmp_path / "all.h5", video_config(frames="5", per_image=40), seed=4)
    with h5py.File(tmp_path / "all.h5") as f:
        assert (f["video_first"][:] < 10).any()


def test_a_video_of_more_than_8_bits_decodes_to_its_8_bit_values(tmp_path):
    path = tmp_path / "deep.mkv"
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), 30,
                             (WIDTH, HEIGHT), [cv2.VIDEOWRITER_PROP_DEPTH, cv2.CV_16U,
                                               cv2.VIDEOWRITER_PROP_IS_COLOR, 0])  # fmt: skip
    if not writer.isOpened():
        pytest.skip("this OpenCV writes no 16-bit video")
    deep = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257 + i for i, f in
            enumerate(pan(2, 8))]  # fmt: skip
    for frame in deep:
        writer.write(frame)
    writer.release()
    window = Video.open(path).window(2, 3, 0, 0, HEIGHT, WIDTH)
    expected = np.rint(np.stack(deep[2:5]) / 257)[..., None].repeat(3, axis=-1)
    assert window.dtype == np.uint8 and np.abs(window - expected).max() <= 1


def test_the_rotation_a_file_records_is_applied(tmp_path):
    import struct

    path = tmp_path / "upright.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (WIDTH, HEIGHT))
    if not writer.isOpened():
        pytest.skip("this OpenCV writes no MPEG-4 video")
    for frame in pan(2, 6):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    # A phone held upright records a 90-degree display matrix in the track header (tkhd).
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") + 44  # after the box's type, version, times, ids and volume
    assert data[matrix - 40] == 0, "a version-0 tkhd box"
    one, w = 1 << 16, 1 << 30
    data[matrix : matrix + 36] = struct.pack(">9i", 0, one, 0, -one, 0, 0, 0, 0, w)
    turned = tmp_path / "turned.mp4"
    turned.write_bytes(bytes(data))
    upright, rotated = Video.open(path), Video.open(turned)
    assert rotated.size == (WIDTH, HEIGHT) and rotated.frames == upright.frames == 6
    expected = np.rot90(upright.window(1, 3, 0, 0, HEIGHT, WIDTH), k=-1, axes=(1, 2))
    assert np.array_equal(rotated.window(1, 3, 0, 0, WIDTH, HEIGHT), expected)


def test_a_10_bit_colour_video_decodes_to_its_8_bit_values(tmp_path):
    av = pytest.importorskip("av")  # the test extra has it: OpenCV writes no 10-bit colour
    path = tmp_path / "ten.mkv"
    deep = [f.astype(np.uint16) * 4 + i for i, f in enumerate(pan(2, 6))]  # 10-bit RGB
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "gbrp10le"
        for frame in deep:
            picture = av.VideoFrame.from_ndarray(frame << 6, format="rgb48le")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    window = Video.open(path).window(1, 3, 0, 0, HEIGHT, WIDTH)
    top_bits = np.stack(deep[1:4]).astype(int) >> 2  # FFmpeg's conversion to 8 bits
    assert window.dtype == np.uint8 and np.abs(window - top_bits).max() <= 1
