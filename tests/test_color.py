"""sRGB, gamma and tone-curve transfer functions against the standard's published values and
closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from blurgen.color import (
    SRGB_ENCODED_KNEE,
    SRGB_LINEAR_KNEE,
    as_uint,
    check_curve,
    curve_to_linear,
    gamma_to_linear,
    linear_to_curve,
    linear_to_gamma,
    linear_to_srgb,
    srgb_to_linear,
)


def reference_srgb_to_linear(x: float) -> float:
    return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4


def test_known_values():
    x = np.array([0.0, 0.5, 1.0, 0.2])
    expected = [reference_srgb_to_linear(v) for v in x]
    np.testing.assert_allclose(srgb_to_linear(x), expected, rtol=1e-12)
    assert srgb_to_linear(np.array(0.5)) == pytest.approx(0.214041140, abs=1e-9)
    assert linear_to_srgb(np.array(0.18)) == pytest.approx(0.461356129, abs=1e-9)


def test_knees_meet():
    # The linear segment and the power curve meet at the published breakpoints.
    assert SRGB_ENCODED_KNEE / 12.92 == pytest.approx(SRGB_LINEAR_KNEE, rel=1e-4)
    below, above = np.nextafter(SRGB_ENCODED_KNEE, 0), np.nextafter(SRGB_ENCODED_KNEE, 1)
    assert srgb_to_linear(np.array(above)) - srgb_to_linear(np.array(below)) < 1e-6


def test_round_trip_float32_and_float64():
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    x32 = x.astype(np.float32)
    y32 = srgb_to_linear(x32)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(linear_to_srgb(y32), x32, atol=1e-6)


def test_monotonic_and_endpoints():
    x = np.linspace(0, 1, 10001)
    assert np.all(np.diff(srgb_to_linear(x)) > 0)
    assert srgb_to_linear(np.array(1.0)) == pytest.approx(1.0)
    assert linear_to_srgb(np.array(0.0)) == 0.0


def test_gamma():
    x = np.array([0.0, 0.25, 1.0])
    np.testing.assert_allclose(gamma_to_linear(x, 2.2), x**2.2)
    np.testing.assert_allclose(linear_to_gamma(gamma_to_linear(x, 2.2), 2.2), x, atol=1e-12)


@pytest.mark.parametrize("function", [srgb_to_linear, linear_to_srgb, gamma_to_linear,
                                      linear_to_gamma])  # fmt: skip
def test_integer_images_are_scaled_not_taken_as_0_to_255(function):
    codes = np.array([0, 128, 255], np.uint8)
    np.testing.assert_allclose(function(codes), function(codes / np.float32(255)), rtol=1e-6)
    deep = np.array([0, 32768, 65535], np.uint16)
    np.testing.assert_allclose(function(deep), function(deep / np.float32(65535)), rtol=1e-6)
    assert function(codes).dtype == np.float32
    with pytest.raises(TypeError, match="int32"):
        function(codes.astype(np.int32))


def test_uint8_srgb_to_linear_values():
    # 128/255 decodes to about 0.2158 (not 97, nor 128 ** 2.4 / ...)
    np.testing.assert_allclose(
        srgb_to_linear(np.array([0, 128, 255], np.uint8)), [0, 0.2158605, 1], atol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_curves_equal_the_formulas_and_leave_the_input(dtype):
    x = (np.random.default_rng(5).random((40, 30, 3)) * 1.2 - 0.1).astype(dtype)
    x[0, 0] = [0.0, SRGB_LINEAR_KNEE, SRGB_ENCODED_KNEE]
    before = x.copy()
    formulas = {
        linear_to_srgb: np.where(
            x <= SRGB_LINEAR_KNEE,
            12.92 * x,
            1.055 * np.maximum(x, SRGB_LINEAR_KNEE) ** (1 / 2.4) - 0.055,
        ),
        srgb_to_linear: np.where(
            x <= SRGB_ENCODED_KNEE,
            x / 12.92,
            ((np.maximum(x, SRGB_ENCODED_KNEE) + 0.055) / 1.055) ** 2.4,
        ),
        lambda v: gamma_to_linear(v, 2.4977): np.maximum(x, 0) ** 2.4977,
        lambda v: linear_to_gamma(v, 2.4977): np.maximum(x, 0) ** (1 / 2.4977),
    }
    for curve, expected in formulas.items():
        out = curve(x)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected.astype(dtype))
    np.testing.assert_array_equal(x, before)


def test_as_uint_rounds_to_the_nearest_level_and_clips():
    values = np.array([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 127.5 / 255, 1.0, 1.3], np.float32)
    eight = as_uint(values)
    assert eight.dtype == np.uint8
    # Half-way rounds to even (NumPy's rint), as the decoders' inverses expect nothing else.
    np.testing.assert_array_equal(eight, [0, 0, 0, 1, 128, 255, 255])
    sixteen = as_uint(np.array([0.5, 1.0]), bits=16)
    assert sixteen.dtype == np.uint16 and sixteen.tolist() == [32768, 65535]
    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        as_uint(values, bits=12)


def test_a_tone_curve_joins_its_levels_by_straight_lines_and_inverts_exactly():
    curve = check_curve([0, 0.8, 1])  # levels 0, 1/2, 1
    light = np.array([-0.5, 0, 0.25, 0.5, 0.75, 1, 1.5], np.float32)
    encoded = linear_to_curve(light, curve)
    assert encoded.dtype == np.float32
    # Above 1 (a sensor that does not saturate) the last line goes on: slope 0.4.
    np.testing.assert_allclose(encoded, [0, 0, 0.4, 0.8, 0.9, 1, 1.2], atol=1e-7)
    np.testing.assert_allclose(curve_to_linear(encoded[1:-1], curve), light[1:-1], atol=1e-7)
    # 8-bit input is scaled to [0, 1] first, as for the other curves.
    assert curve_to_linear(np.array([204], np.uint8), curve)[0] == pytest.approx(0.5)


def test_a_dense_tone_curve_follows_the_power_law_it_samples():
    levels = np.linspace(0, 1, 4097)
    curve = tuple(levels ** (1 / 2.2))
    x = np.random.default_rng(1).random(10_000).astype(np.float32) * 0.98 + 0.02
    # Straight lines between samples 1/4096 apart: within their chord's error of the curve.
    np.testing.assert_allclose(linear_to_curve(x, curve), linear_to_gamma(x, 2.2), atol=2e-5)
    np.testing.assert_allclose(curve_to_linear(linear_to_gamma(x, 2.2), curve), x, atol=2e-5)


@pytest.mark.parametrize(
    "bad, why",
    [([0, 1], "3 to 65536"), ([0, 0.5, 0.5, 1], r"its value 2 \(0.5\) is not above"),
     ([0.1, 0.5, 1], "from 0 to 1, got 0.1 to 1"), ([0, 0.5, 0.9], "to 0.9"),
     (["a", 1, 2], "numbers")],
)  # fmt: skip
def test_a_tone_curve_that_is_not_one_is_refused(bad, why):
    with pytest.raises(ValueError, match=why):
        check_curve(bad)
