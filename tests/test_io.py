"""Image reading: bit depths, grey and alpha, RGB order, clear errors naming the file."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurgen.io import (
    Photo,
    check_output_path,
    decode_image,
    file_fingerprint,
    read_image,
    write_png,
)

from cmyk_tiff import write_cmyk_tiff


def test_rgb_order_and_8_bit(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 255  # red, in OpenCV's order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = read_image(tmp_path / "red.png")
    assert image.shape == (4, 5, 3) and image.dtype == np.float32
    assert image[..., 0].min() == 1 and image[..., 1:].max() == 0


def test_16_bit_grey_and_alpha(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((3, 3), 32768, np.uint16))
    assert read_image(tmp_path / "deep.png") == pytest.approx(32768 / 65535)
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((3, 3), 51, np.uint8))
    grey = read_image(tmp_path / "grey.png")
    assert grey.shape == (3, 3, 3) and grey == pytest.approx(0.2)
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 10  # blue, nearly transparent
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    rgb = read_image(tmp_path / "alpha.png")
    assert rgb.shape == (3, 3, 3) and rgb[..., 2].min() == 1 and rgb[..., :2].max() == 0


def test_cmyk_is_converted_to_rgb(tmp_path):
    inks = np.array(  # C, M, Y, K per pixel, and the RGB each must read as
        [[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [0, 0, 0, 255], [0, 0, 0, 0]], np.uint8
    )
    expected = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 1, 1]], np.float32)
    write_cmyk_tiff(tmp_path / "print.tif", np.repeat(inks[None], 3, axis=0))
    rgb = read_image(tmp_path / "print.tif")
    assert rgb.shape == (3, 5, 3)
    np.testing.assert_array_equal(rgb[1], expected)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        read_image(tmp_path / "notes.png")
    good = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 3])
    with pytest.raises(ValueError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_write_png_rounds_floats_and_keeps_rgb(tmp_path):
    image = np.zeros((2, 2, 3), np.float32)
    image[..., 0] = 0.5
    write_png(tmp_path / "x.png", image)
    back = cv2.imread(str(tmp_path / "x.png"))
    assert back[..., 2].max() == 128 and back[..., :2].max() == 0


def jpeg_bytes(size=(96, 128)):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur((rng.random((*size, 3)) * 255).astype(np.uint8), (9, 9), 3)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def test_truncated_and_corrupt_jpegs_are_unusable_and_quiet(tmp_path, capfd):
    data = jpeg_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    damaged = bytearray(data)
    damaged[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    (tmp_path / "damaged.jpg").write_bytes(bytes(damaged))
    for name in ("half.jpg", "damaged.jpg"):
        with pytest.raises(ValueError, match=name):
            read_image(tmp_path / name)
    captured = capfd.readouterr()
    assert "JPEG" not in captured.err + captured.out  # libjpeg's own messages stay inside
    (tmp_path / "whole.jpg").write_bytes(data)
    assert read_image(tmp_path / "whole.jpg").shape == (96, 128, 3)


def test_decodes_in_many_threads_each_keep_their_own_complaints(capfd):
    # Threads decode at once and share the caught stderr; each damaged file is named with
    # its own complaint, and whole files decode, however the decodes interleave.
    data = jpeg_bytes((480, 640))
    damaged = bytearray(data)
    damaged[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    files = {f"{k}.jpg": bytes(damaged) if k % 3 == 0 else data for k in range(48)}

    def decode(name):
        try:
            return decode_image(files[name], name).shape
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        results = dict(zip(files, pool.map(decode, files), strict=True))
    for k, (name, result) in enumerate(results.items()):
        if k % 3:
            assert result == (480, 640, 3), name
        else:
            assert result.startswith(f"'{name}': damaged") and "JPEG" in result, result
    assert "JPEG" not in capfd.readouterr().err


def test_what_python_prints_while_threads_decode_is_not_a_complaint(tmp_path):
    # A command's progress bar and logs go to sys.stderr from the main thread while workers
    # decode: once sys.stderr is off descriptor 2 it is neither caught nor lost.
    (tmp_path / "whole.jpg").write_bytes(jpeg_bytes((480, 640)))
    script = f"""
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from blurgen.io import decode_image, stderr_off_descriptor_2
stderr_off_descriptor_2()
data = open({str(tmp_path / "whole.jpg")!r}, "rb").read()
done = threading.Event()
def chatter():
    while not done.is_set():
        print("progress", file=sys.stderr, flush=True)
thread = threading.Thread(target=chatter)
thread.start()
try:
    with ThreadPoolExecutor(2) as pool:
        shapes = list(pool.map(lambda k: decode_image(data, str(k)).shape, range(40)))
finally:
    done.set()
    thread.join()
print(len(shapes))
"""
    run = [sys.executable, "-c", script]
    result = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "40" and "progress" in result.stderr


def test_decoder_complaints_are_quoted():
    damaged = bytearray(jpeg_bytes())
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    with pytest.raises(ValueError, match=r"x\.jpg': damaged or truncated image \(decoder: .*JPEG"):
        decode_image(bytes(damaged), "x.jpg")


def test_decoder_messages_do_not_change_from_run_to_run():
    # OpenCV stamps its warnings with the time since start; a dataset records the message.
    data = b"\x89PNG\r\n\x1a\n not an image"
    messages = []
    for _ in range(2):
        with pytest.raises(ValueError) as caught:
            decode_image(data, "x.png")
        messages.append(str(caught.value))
        time.sleep(0.01)
    assert messages[0] == messages[1] and "@" not in messages[0]


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_region_is_the_rgb_view_in_the_files_dtype(tmp_path, channels, dtype):
    rng = np.random.default_rng(2)
    pixels = (rng.random((30, 40, channels)) * np.iinfo(dtype).max).astype(dtype)
    photo = Photo(tmp_path / "x.png", pixels, "")
    region = photo.region(3, 5, 20, 30)
    rgb = pixels[3:23, 5:35]
    rgb = np.repeat(rgb, 3, axis=2) if channels == 1 else rgb[..., 2::-1]  # BGR(A) -> RGB
    assert region.dtype == dtype and region.shape == (20, 30, 3)
    np.testing.assert_array_equal(region, rgb)
    np.testing.assert_array_equal(photo.crop(3, 5, 20, 30), rgb / np.float32(np.iinfo(dtype).max))


def test_photo_converts_only_the_crop(tmp_path):
    rng = np.random.default_rng(1)
    deep = (rng.random((30, 40, 4)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    photo = Photo.open(tmp_path / "deep.png")
    assert photo.pixels.dtype == np.uint16 and photo.size == (30, 40) and photo.bits == 16
    whole = read_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(photo.crop(5, 7, 10, 12), whole[5:15, 7:19])
    np.testing.assert_array_equal(whole[..., 0], deep[..., 2] / np.float32(65535))
    with pytest.raises(ValueError, match="outside"):
        photo.crop(25, 0, 10, 10)
    assert photo.fingerprint == file_fingerprint((tmp_path / "deep.png").read_bytes())
    rgb = photo.rgb()  # the whole photo in RGB order, as a view, not converted
    assert rgb.dtype == np.uint16 and rgb.shape == (30, 40, 3)
    assert np.shares_memory(rgb, photo.pixels)
    np.testing.assert_array_equal(rgb / np.float32(65535), whole)
    cv2.imwrite(str(tmp_path / "grey.png"), deep[..., 0].astype(np.uint8))
    grey = Photo.open(tmp_path / "grey.png")
    np.testing.assert_array_equal(grey.rgb() / np.float32(255), grey.crop(0, 0, 30, 40))


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_folder_that_takes_no_files_is_named_with_the_reason():
    # Root passes permission checks, yet /proc refuses new files all the same; others are
    # refused by the permission bits.
    with pytest.raises(OSError, match=r"cannot write '/proc/x\.h5': output folder '/proc' (takes "
                       r"no new files \(.+\)|is not writable)$") as failure:  # fmt: skip
        check_output_path("/proc/x.h5")
    assert failure.value.errno is not None or isinstance(failure.value, PermissionError)


def test_a_missing_output_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*no/x\.png': output folder '.*no' does not"):
        check_output_path(tmp_path / "no" / "x.png")


def test_write_png_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match=r"cannot write '.*a\.png' \(No space left") as caught:
        write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
