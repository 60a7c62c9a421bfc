"""Params, then apply: BlurTransform against a float64 convolution in linear light, its
records' reproducibility, dtypes, and masks given the image's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from blurgen import presets
from blurgen.color import linear_to_srgb, srgb_to_linear
from blurgen.pipeline import DatasetConfig
from blurgen.transform import BlurTransform


def image(shape=(40, 48), seed=0, dtype=np.uint8):
    values = np.random.default_rng(seed).random((*shape, 3))
    if dtype == np.uint8:
        return np.rint(values * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(values * 65535).astype(np.uint16)
    return values.astype(dtype)


def reference_blur(sharp: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The valid convolution of an 8-bit sRGB image in linear light, a float64 loop:
    ``out[y, x] = sum_{i, j} kernel[i, j] * light[y + K - 1 - i, x + K - 1 - j]``."""
    light = srgb_to_linear(sharp.astype(np.float64) / 255)
    k = kernel.shape[0]
    height, width = light.shape[0] - k + 1, light.shape[1] - k + 1
    out = np.zeros((height, width, 3))
    for i in range(k):
        for j in range(k):
            y, x = k - 1 - i, k - 1 - j
            out += kernel[i, j] * light[y : y + height, x : x + width]
    return out


def test_apply_is_the_convolution_in_linear_light():
    t = BlurTransform(presets.load("none", kernel_size=9), boundary="valid")
    sharp = image()
    record = t.draw(4, sharp.shape[:2])
    assert record.kernel.shape == (9, 9) and abs(record.kernel.sum() - 1) < 1e-5
    blurred = t.apply(sharp, record)
    assert blurred.shape == (32, 40, 3) and blurred.dtype == np.uint8
    expected = linear_to_srgb(reference_blur(sharp, record.kernel.astype(np.float64))) * 255
    # 8-bit rounding: half a level, and float32 arithmetic on the way.
    assert np.abs(blurred - expected).max() < 0.52


def test_a_record_replays_and_a_seed_draws_the_same_record():
    t = BlurTransform.from_preset("camera-shake")
    sharp = image((300, 280))
    first, again = t.draw(7, sharp.shape[:2]), t.draw(7, sharp.shape[:2])
    np.testing.assert_array_equal(first.kernel, again.kernel)
    assert first.sample == again.sample or first.sample.params == again.sample.params
    np.testing.assert_array_equal(t.apply(sharp, first), t.apply(sharp, again))
    other = t.draw(8, sharp.shape[:2])
    assert not np.array_equal(first.kernel, other.kernel)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(t.draw(rng, sharp.shape[:2]).kernel, first.kernel)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_the_output_has_the_input_size_and_dtype(dtype):
    t = BlurTransform(presets.load("none", kernel_size=7, read="0.01"))
    sharp = image(dtype=dtype)
    blurred = t.apply(sharp, t.draw(0, sharp.shape[:2]))
    assert blurred.shape == sharp.shape and blurred.dtype == sharp.dtype
    if dtype in (np.float32, np.float64):
        assert 0 <= blurred.min() and blurred.max() <= 1


def test_the_same_record_on_8_and_16_bits_gives_the_same_blur():
    t = BlurTransform(presets.load("none", kernel_size=7))
    sharp = image()
    record = t.draw(2, sharp.shape[:2])
    eight = t.apply(sharp, record)
    sixteen = t.apply(sharp.astype(np.uint16) * 257, record)
    assert np.abs(eight.astype(int) - np.rint(sixteen / 257).astype(int)).max() <= 1


def test_a_mask_gets_the_geometry_and_stays_labels():
    """A bright square and its label map: the blur's light stays centred on the labels."""
    for boundary in ("reflect", "valid"):
        t = BlurTransform(presets.load("none", kernel_size=15), boundary=boundary)
        sharp = np.zeros((64, 64, 3), np.uint8)
        sharp[24:40, 20:36] = 255
        mask = np.zeros((64, 64), np.int64)
        mask[24:40, 20:36] = 3
        record = t.draw(11, sharp.shape[:2])
        blurred, labels = t.apply(sharp, record), t.apply(mask, record, target="mask")
        assert labels.shape == blurred.shape[:2] and labels.dtype == mask.dtype
        assert set(np.unique(labels)) == {0, 3}
        light = srgb_to_linear(blurred[..., 1].astype(np.float64) / 255)
        ys, xs = np.indices(light.shape)
        centre = (ys * light).sum() / light.sum(), (xs * light).sum() / light.sum()
        label_ys, label_xs = np.nonzero(labels)
        assert abs(centre[0] - label_ys.mean()) < 0.5 and abs(centre[1] - label_xs.mean()) < 0.5


def test_camera_shake_and_errors():
    t = BlurTransform(DatasetConfig(kernel_size=15, blur="camera"))
    sharp = image((50, 60))
    record = t.draw(0, sharp.shape[:2])
    assert record.method == "camera" and record.sample.drawn is not None
    assert t.apply(sharp, record).shape == sharp.shape
    with pytest.raises(ValueError, match="drawn for 50x60 px images, got 40x48"):
        t.apply(image(), record)
    with pytest.raises(ValueError, match="target must be one of image, mask"):
        t.apply(sharp, record, target="flow")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB"):
        t.apply(sharp[..., 0], record)
    with pytest.raises(ValueError, match="no preset 'nope'"):
        BlurTransform.from_preset("nope")
