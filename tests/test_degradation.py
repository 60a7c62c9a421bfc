"""Noise and the degradation chain: variance against the model, validation, seeds, colour."""

from __future__ import annotations

import json
import threading
import tracemalloc

import cv2
import numpy as np
import pytest

from blurgen import degradation
from blurgen.color import linear_to_srgb, srgb_to_linear
from blurgen.degradation import (
    DEGRADATION_PARAMETERS,
    STRIP_ROWS,
    Degradation,
    DegradationParams,
    _encode_table,
)
from blurgen.forward import blur
from blurgen.kernels import line_kernel
from blurgen.noise import JPEG_BAND_ROWS, jpeg, noise_streams, poisson_gaussian, quantise

CLEAN = {"quantise": False}


def strip_threads(monkeypatch: pytest.MonkeyPatch, cores: int) -> list[int]:
    """Make the main thread see ``cores`` cores; the list fills with the threads each render
    then blurs its strips on."""
    monkeypatch.setattr(degradation, "fft_threads", lambda: cores)
    workers: list[int] = []
    ordered_map = degradation.ordered_map

    def spy(function, jobs, count, **options):
        workers.append(count)
        return ordered_map(function, jobs, count, **options)

    monkeypatch.setattr(degradation, "ordered_map", spy)
    return workers


class TestNoise:
    @pytest.mark.parametrize("shot, read", [(0.01, 0.0), (0.0, 0.02), (0.004, 0.01)])
    def test_variance_matches_model(self, shot, read):
        level = 0.25
        image = np.full((512, 512), level, np.float32)
        noisy = poisson_gaussian(image, shot, read, np.random.default_rng(0))
        expected = shot * level + read**2
        assert noisy.var() == pytest.approx(expected, rel=0.03)
        assert noisy.mean() == pytest.approx(level, abs=3 * np.sqrt(expected / image.size))

    def test_no_noise_is_identity_and_seeded(self):
        image = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
        np.testing.assert_array_equal(
            poisson_gaussian(image, 0, 0, np.random.default_rng(0)), image
        )
        a = poisson_gaussian(image, 0.01, 0.01, np.random.default_rng(5))
        b = poisson_gaussian(image, 0.01, 0.01, np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)

    def test_quantise_to_8_bits(self):
        q = quantise(np.array([0.0, 0.5, 1.2, -0.1, 0.3], np.float32))
        np.testing.assert_array_equal(q * 255, np.rint(q * 255))
        assert q[2] == 1 and q[3] == 0

    def test_jpeg_in_bands_equals_the_whole_image_at_once(self):
        # Bands that ignored MCU alignment or the decoder's chroma interpolation would differ
        # near their seams; the reference compresses the whole image in one go.
        rng = np.random.default_rng(3)
        rows = 2 * JPEG_BAND_ROWS + 37
        smooth = cv2.resize(rng.random((rows // 8, 9, 3)).astype(np.float32), (71, rows))
        image = np.rint(np.clip(smooth + 0.1 * rng.random((rows, 71, 3)), 0, 1) * 255)
        image = image.astype(np.uint8)
        ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 83])
        whole = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
        kept = image.copy()
        np.testing.assert_array_equal(jpeg(image, 83), whole)
        np.testing.assert_array_equal(image, kept)
        np.testing.assert_array_equal(jpeg(image / np.float32(255), 83) * 255, whole)
        assert jpeg(image, 83, in_place=True) is image
        np.testing.assert_array_equal(image, whole)

    def test_jpeg_keeps_rgb_order(self):
        image = np.zeros((32, 32, 3), np.float32)
        image[..., 0] = 0.9
        out = jpeg(image, 90)
        assert out.shape == image.shape and out.dtype == np.float32
        assert out[..., 0].mean() > 0.8 and out[..., 2].mean() < 0.1


class TestDegradation:
    def test_linear_light_is_not_naive(self):
        # A black/white edge under a 2-pixel horizontal box: half the light in linear terms
        # encodes to about 0.735, while blurring the encoded values gives 0.5.
        image = np.zeros((5, 6, 3), np.float32)
        image[:, 3:] = 1
        kernel = np.zeros((3, 3), np.float32)
        kernel[1, 1:] = 0.5
        rng = np.random.default_rng(0)
        physical, _ = Degradation(boundary="wrap", **CLEAN).apply(image, kernel, rng)
        naive, _ = Degradation(space="naive", boundary="wrap", **CLEAN).apply(image, kernel, rng)
        middle = [v for v in physical[2, :, 0] if 0 < v < 1]
        assert middle and middle[0] == pytest.approx(
            float(linear_to_srgb(np.float32(0.5))), abs=1e-5
        )
        assert sorted(set(np.round(naive[2, :, 0], 6))) == [0.0, 0.5, 1.0]

    def test_a_gamma_of_one_blurs_the_encoded_values(self):
        # calibrate's gamma reaches 1 for blur made on encoded values (videos' frames averaged
        # without a curve): that is the naive space.
        rng = np.random.default_rng(3)
        image = rng.random((24, 24, 3)).astype(np.float32)
        kernel = line_kernel(7.0, 20.0, 9)
        params = Degradation(**CLEAN).sample(np.random.default_rng(0))
        one = Degradation(space="gamma", gamma=1.0, **CLEAN).render(image, kernel, params)
        naive = Degradation(space="naive", **CLEAN).render(image, kernel, params)
        np.testing.assert_allclose(one, naive, atol=1e-6)
        assert DEGRADATION_PARAMETERS["gamma"].low == 1.0

    def test_mean_preserved_away_from_clipping(self):
        rng = np.random.default_rng(2)
        image = (0.1 + 0.5 * rng.random((48, 48, 3))).astype(np.float32)
        kernel = line_kernel(9.0, 30.0, 15)
        out, _ = Degradation(space="naive", boundary="wrap", **CLEAN).apply(image, kernel, rng)
        np.testing.assert_allclose(out.mean(axis=(0, 1)), image.mean(axis=(0, 1)), rtol=1e-5)

    def test_saturation_and_highlight_boost(self):
        image = np.zeros((7, 7, 3), np.float32)
        image[3, 3] = 1  # a saturated point light
        kernel = np.zeros((3, 3), np.float32)
        kernel[1, 1:] = 0.5
        rng = np.random.default_rng(0)
        plain, _ = Degradation(boundary="wrap", **CLEAN).apply(image, kernel, rng)
        boosted, params = Degradation(boundary="wrap", highlight_boost=(4.0, 4.0), **CLEAN).apply(
            image, kernel, rng
        )
        assert params.boost == 4.0
        assert plain[3, 3, 0] == pytest.approx(float(linear_to_srgb(np.float32(0.5))), abs=1e-5)
        # Clipped at saturation (1, up to float32 rounding of the sRGB curve).
        assert boosted[3, 3, 0] == pytest.approx(1, abs=1e-6)
        assert boosted[3, 4, 0] == pytest.approx(1, abs=1e-6)

    @pytest.mark.parametrize("space", ["srgb", "gamma", "naive"])
    def test_highlights_are_boosted_where_any_channel_saturates(self, space):
        rng = np.random.default_rng(3)
        eight = rng.integers(200, 256, (2, 9, 11, 3)).astype(np.uint8)
        chain = Degradation(space=space, highlight_boost=(3, 3))
        boost = np.array([3, 1], np.float32).reshape(2, 1, 1, 1)
        for sharp in (eight, eight.astype(np.float32) / 255):
            given = sharp.copy()
            light = chain._boosted_light(sharp, boost)
            np.testing.assert_array_equal(sharp, given)  # the input is left as it was
            decoded = chain._decode(eight.astype(np.float32) / 255)
            highlight = (eight >= 255 * chain.highlight_threshold).any(axis=-1, keepdims=True)
            expected = np.where(highlight & (boost != 1), decoded * boost, decoded)
            np.testing.assert_allclose(light, expected, rtol=1e-6)

    def test_sensor_clips_after_its_noise(self):
        # A highlight brighter than white stays white however noisy the sensor; before the
        # clip moved after the noise, 41% of such a patch came out below 255.
        image = np.ones((40, 40, 3), np.float32)
        chain = Degradation(highlight_boost=(2, 2), read=(0.02, 0.02))
        out, _ = chain.apply(image, line_kernel(5.0, 0.0, 7), np.random.default_rng(0))
        assert (out == 1).all()
        # Below saturation the noise stays.
        grey, _ = chain.apply(image * 0.5, line_kernel(5.0, 0.0, 7), np.random.default_rng(0))
        assert grey.std() > 0.005
        unclipped = Degradation(highlight_boost=(2, 2), saturate=False, quantise=False)
        assert (
            unclipped.apply(image, np.ones((1, 1), np.float32), np.random.default_rng(0))[0].min()
            > 1
        )

    def test_uint8_input_is_scaled(self):
        rng = np.random.default_rng(4)
        codes = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
        chain = Degradation(read=(0.01, 0.01))
        kernel = line_kernel(5.0, 30.0, 7)
        a, _ = chain.apply(codes, kernel, np.random.default_rng(1))
        b, _ = chain.apply(codes.astype(np.float32) / 255, kernel, np.random.default_rng(1))
        np.testing.assert_array_equal(a, b)
        assert 0.2 < a.mean() < 0.8

    @pytest.mark.parametrize("cores", [1, 4])
    def test_tall_images_render_strip_by_strip_as_one(self, cores, monkeypatch):
        # Three strips, a reflected border, highlights and both noises; the reference runs the
        # chain on the whole image at once, its noise drawn in one go from the same streams.
        # On several cores the strips are blurred side by side; the bytes must not change.
        workers = strip_threads(monkeypatch, cores)
        rng = np.random.default_rng(8)
        image = (rng.random((2 * STRIP_ROWS + 40, 37, 3)) * 255).astype(np.uint8)
        image[100:140, 10:20] = 255
        kernel = line_kernel(6.0, 30.0, 9)
        params = DegradationParams(boost=3.0, shot=0.003, read=0.01, noise_seed=2**63 + 5)
        chain = Degradation(boundary="reflect", highlight_boost=(1, 4))
        got = chain.render(image[..., ::-1], kernel, params)

        sharp = image[..., ::-1].astype(np.float32) / 255
        light = srgb_to_linear(sharp)
        light = np.where((sharp >= 0.99).any(-1, keepdims=True), light * np.float32(3), light)
        light = blur(light, kernel, boundary="reflect", method="direct")
        light = poisson_gaussian(light, 0.003, 0.01, noise_streams(params.noise_seed))
        expected = quantise(linear_to_srgb(np.clip(light, 0, 1)))
        np.testing.assert_array_equal(got, expected)
        as_bytes = chain.render(image[..., ::-1], kernel, params, dtype=np.uint8)
        assert as_bytes.dtype == np.uint8
        np.testing.assert_array_equal(as_bytes, np.rint(expected * 255))
        assert workers == [min(cores, 3)] * 2  # a thread a strip at most

    def test_strips_in_threads_stop_with_the_render_and_wide_ones_keep_their_own(self, monkeypatch):
        monkeypatch.setattr(degradation, "fft_threads", lambda: 4)
        image = np.full((3 * STRIP_ROWS, 40, 3), 100, np.uint8)
        kernel = line_kernel(3.0, 0.0, 5)

        def fail(*args):
            raise KeyboardInterrupt

        monkeypatch.setattr(Degradation, "_finish_strip", fail)
        with pytest.raises(KeyboardInterrupt) as caught:
            Degradation().render(image, kernel, DegradationParams())
        # Its traceback, kept as a caller keeps it, must not keep the strips' threads going.
        assert caught.traceback and not [t for t in threading.enumerate()
                                         if t.name.startswith("blurgen")]  # fmt: skip
        monkeypatch.undo()
        # Strips as wide as a channel's threads take are blurred one at a time, each on them.
        workers = strip_threads(monkeypatch, 4)
        wide = np.full((2 * STRIP_ROWS, 3200, 1), 100, np.uint8)  # one channel, too
        out = Degradation().render(wide, kernel, DegradationParams(), dtype=np.uint8)
        assert workers == [1] and out.shape == (2 * STRIP_ROWS - 4, 3196, 1)

    def test_render_converts_strips_not_the_whole_image(self):
        image = np.full((8192, 256, 3), 128, np.uint8)
        params = DegradationParams(read=0.01, jpeg_quality=90)
        chain = Degradation()
        kernel = line_kernel(20.0, 0.0, 31)
        chain.render(image[:64], kernel, params)  # the modules it imports on first use
        tracemalloc.start()
        try:
            out = chain.render(image, kernel, params, dtype=np.uint8)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert out.shape == (8162, 226, 3)
        assert peak < 4 * image.size  # a float32 copy of the image alone

    def test_render_replays_a_record(self):
        chain = Degradation(shot=(0.001, 0.01), read=(0.0, 0.02), jpeg_quality=(60, 90))
        image = np.random.default_rng(3).random((32, 32, 3)).astype(np.float32)
        kernel = line_kernel(6.0, 10.0, 9)
        out, params = chain.apply(image, kernel, np.random.default_rng(11))
        np.testing.assert_array_equal(chain.render(image, kernel, params), out)

    @pytest.mark.parametrize("space", ["srgb", "gamma", "naive"])
    def test_8_bit_input_through_tables_gives_the_float_path_bits(self, space):
        # 8-bit crops are decoded through a 256-entry table; it must change no bit.
        chain = Degradation(space=space, gamma=2.4977, highlight_boost=(1.5, 1.5),
                            highlight_threshold=0.9, shot=(0.001, 0.004))  # fmt: skip
        pixels = np.random.default_rng(4).integers(0, 256, (300, 40, 3), dtype=np.uint8)
        pixels[:20] = 255  # highlights, boosted
        kernel = line_kernel(6.0, 30.0, 9)
        params = chain.sample(np.random.default_rng(2))
        as_float = pixels.astype(np.float32) / np.float32(255)
        for boundary in ("valid", "reflect"):
            chain = Degradation(**{**chain.to_dict(), "boundary": boundary})
            expected = chain.render(as_float, kernel, params)
            np.testing.assert_array_equal(chain.render(pixels, kernel, params), expected)
            mirrored = chain.render(as_float[:, ::-1], kernel, params)
            np.testing.assert_array_equal(chain.render(pixels[:, ::-1], kernel, params), mirrored)

    def test_rgb_order_kept(self):
        image = np.zeros((20, 20, 3), np.float32)
        image[..., 0] = 0.7
        out, _ = Degradation().apply(image, line_kernel(5.0, 0.0, 7), np.random.default_rng(0))
        assert out[..., 1:].max() == 0 and out[..., 0].min() > 0.6

    def test_seeds_and_params(self):
        config = Degradation(shot=(0.001, 0.01), read=(0.0, 0.02), jpeg_quality=(60, 90))
        image = np.random.default_rng(3).random((32, 32, 3)).astype(np.float32)
        kernel = line_kernel(6.0, 10.0, 9)
        a, pa = config.apply(image, kernel, np.random.default_rng(11))
        b, pb = config.apply(image, kernel, np.random.default_rng(11))
        c, pc = config.apply(image, kernel, np.random.default_rng(12))
        np.testing.assert_array_equal(a, b)
        assert pa == pb and pa != pc and not np.array_equal(a, c)
        assert 0.001 <= pa.shot <= 0.01 and 0 <= pa.read <= 0.02 and 60 <= pa.jpeg_quality <= 90
        assert a.shape == (24, 24, 3) and a.dtype == np.float32
        np.testing.assert_array_equal(a * 255, np.rint(a * 255))

    def test_json_round_trip(self):
        config = Degradation(
            space="gamma", gamma=2.4, highlight_boost=(1.5, 3), jpeg_quality=(70, 95)
        )
        again = Degradation.from_dict(json.loads(config.to_json()))
        assert again == config

    def test_params_default(self):
        params = Degradation().sample(np.random.default_rng(0))
        assert params == DegradationParams(noise_seed=params.noise_seed)

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"space": "lab"}, "'lab'"),
            ({"boundary": "same"}, "'same'"),
            ({"shot": (0.2, 0.1)}, r"\(0.2, 0.1\)"),
            ({"read": (-1, 0)}, r"\(-1, 0\)"),
            ({"jpeg_quality": (0, 50)}, r"\(0, 50\)"),
            ({"jpeg_quality": (50.5, 60)}, "whole numbers"),
            ({"highlight_boost": (0.5, 2)}, r"\(0.5, 2\)"),
            ({"gamma": -1}, "-1"),
            ({"shot": 0.1}, "pair"),
        ],
    )
    def test_invalid_values_named(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            Degradation(**kwargs)

    def test_unknown_setting(self):
        with pytest.raises(ValueError, match="wobble"):
            Degradation.from_dict({"wobble": 1})


@pytest.mark.parametrize(
    "chain",
    [Degradation(), Degradation(space="gamma", saturate=False), Degradation(space="naive")],
)
def test_a_batch_renders_the_bytes_of_one_pair_at_a_time(chain):
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (6, 40, 44, 3), dtype=np.uint8)
    crops[:, :8] = 255  # highlights for the boost
    lengths, angles = [3, 5, 7, 7.5, 4, 6], [0, 30, 60, 90, 120, 150]
    kernels = np.stack([line_kernel(n, a, 9) for n, a in zip(lengths, angles, strict=True)])
    params = [DegradationParams(boost=[1.0, 3.0][i % 2], shot=[0.0, 0.002][i // 3 % 2],
                                read=[0.0, 0.004][i // 2 % 2],
                                jpeg_quality=[None, 85][i % 3 == 0], noise_seed=i)
              for i in range(6)]  # fmt: skip
    one_at_a_time = np.stack([chain.render(c, k, p, dtype=np.uint8)
                              for c, k, p in zip(crops, kernels, params, strict=True)])  # fmt: skip
    batch = chain.render_batch(crops, kernels, params)
    assert batch.dtype == np.uint8 and batch.shape == (6, 32, 36, 3)
    np.testing.assert_array_equal(batch, one_at_a_time)
    with pytest.raises(ValueError, match="8-bit crops and the 'valid' boundary"):
        Degradation(boundary="reflect").render_batch(crops, kernels, params)
    with pytest.raises(ValueError, match="one of each per sample"):
        chain.render_batch(crops, kernels[:5], params)


def test_the_encode_table_gives_the_curves_byte_for_every_float32_in_0_1():
    # 2**30 floats, in chunks: every value the sensor can hand the sRGB encoding.
    chain = Degradation()
    one = int(np.float32(1).view(np.int32))
    for start in range(0, one + 1, 1 << 24):
        light = np.arange(start, min(start + (1 << 24), one + 1), dtype=np.int32).view(np.float32)
        expected = chain._bytes_by_curve(light)
        np.testing.assert_array_equal(chain._to_bytes(light), expected, err_msg=f"from {start}")


# A camera's response with a toe and a shoulder, 17 levels.
CURVE = tuple(
    float(v)
    for v in np.round(
        np.linspace(0, 1, 17) ** 0.45 * (1 - 0.15 * np.sin(np.pi * np.linspace(0, 1, 17))), 6
    )
)


@pytest.mark.parametrize("space, gamma", [("srgb", 2.2), ("gamma", 2.2), ("naive", 2.2),
                                          ("gamma", 0.3), ("gamma", 0.01),
                                          ("curve", 2.2)])  # fmt: skip
def test_the_encode_table_matches_the_curve_at_its_steps_and_beyond_0_1(space, gamma):
    curve = CURVE if space == "curve" else None
    chain = Degradation(space=space, gamma=gamma, tone_curve=curve)
    table = _encode_table(space, gamma, curve)
    values = [np.random.default_rng(0).uniform(-0.1, 1.1, 100_000).astype(np.float32),
              np.array([-np.inf, -1, -0.0, 0, 1e-45, 1e-38, 1, 1.0000001, 2, np.inf],
                       np.float32)]  # fmt: skip
    if table is None:  # steps closer than any bucket: the curve itself encodes
        assert gamma == 0.01
    else:
        shift, base, thresholds = table
        assert base[0] == 0 and base[-1] == 255 and np.all(np.diff(base.astype(int)) >= 0)
        steps = thresholds[~np.isnan(thresholds)].view(np.int32)
        starts = np.flatnonzero(np.diff(base.astype(int))).astype(np.int32) << shift
        near = np.concatenate([steps, starts])[:, None] + np.arange(-3, 4, dtype=np.int32)
        values.append(near.ravel().view(np.float32))
        assert len(steps) + len(starts) >= 255  # every step of the staircase is in the table
    light = np.concatenate(values)
    expected = chain._bytes_by_curve(light.copy())
    assert table is None or len(np.unique(expected)) == 256
    np.testing.assert_array_equal(chain._to_bytes(light.copy()), expected)


def test_a_camera_response_blurs_between_its_inverse_and_itself():
    # Independent of the library's curve code: float64 interpolation, a direct convolution.
    rng = np.random.default_rng(12)
    image = rng.random((30, 34, 3)).astype(np.float32)
    kernel = line_kernel(5.0, 60.0, 7)
    chain = Degradation(space="curve", tone_curve=CURVE, quantise=False)
    got = chain.render(image, kernel, DegradationParams())
    levels = np.linspace(0, 1, len(CURVE))
    light = np.interp(image.astype(np.float64), CURVE, levels).astype(np.float32)
    light = np.clip(blur(light, kernel, method="direct"), 0, 1)
    expected = np.interp(light.astype(np.float64), levels, CURVE)
    np.testing.assert_allclose(got, expected, atol=2e-6)
    # Not the sRGB curve's result: the response is the one used.
    assert np.abs(Degradation(quantise=False).render(image, kernel, DegradationParams())
                  - got).max() > 0.01  # fmt: skip


def test_a_camera_response_is_recorded_and_asked_for_by_name():
    chain = Degradation(space="curve", tone_curve=list(CURVE))
    assert chain.tone_curve == CURVE and Degradation.from_dict(chain.to_dict()) == chain
    assert "tone_curve" not in Degradation().to_dict()  # older configs read as they did
    written = chain.settings_of()["tone_curve"]  # every digit: it loads back as it was
    assert Degradation(space="curve", tone_curve=written.split(",")).tone_curve == CURVE
    with pytest.raises(ValueError, match="needs the camera's response"):
        Degradation(space="curve")
    with pytest.raises(ValueError, match="needs space 'curve', not 'gamma'"):
        Degradation(space="gamma", tone_curve=CURVE)
    assert chain.calibrated({"gamma": 1.5}).tone_curve is None  # a fitted gamma replaces it
