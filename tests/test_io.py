"""Image reading: bit depths, grey and alpha, RGB order, clear errors naming the file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blurgen.io import read_image, write_png


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
