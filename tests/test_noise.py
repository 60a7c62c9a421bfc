"""Shot and read noise against independent references: SciPy's Poisson and normal distributions.

The exact draws are checked count for count against the Poisson's quantile function; the
approximation's whole distribution (every one of its 65,536 normal values pushed through it)
against the Poisson's distribution function; and the noisy values' moments, over many pixels,
against the model, on both sides of the switch between the two.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from blurgen.noise import (
    APPROXIMATION_ERROR,
    EXACT_BELOW,
    _approximate_counts,
    _exact_counts,
    _small_counts,
    noise_streams,
    normal_table,
    poisson_gaussian,
)

EVERY_NORMAL = np.arange(1 << 16).astype(np.uint16)


def approximation_cdf(mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts 0 .. K and the approximation's distribution function there, exactly."""
    counts = _approximate_counts(np.full(EVERY_NORMAL.size, mean, np.float32), EVERY_NORMAL)
    counts = counts.astype(np.int64)
    ks = np.arange(counts.max() + 2)
    return ks, np.cumsum(np.bincount(counts, minlength=ks.size)[: ks.size]) / counts.size


def counts_of(photons: float, size: int, seed: int) -> np.ndarray:
    """Shot-noise counts of ``size`` pixels of ``photons`` mean photons (gain 1/64)."""
    light = np.full(size, photons / 64, np.float32)
    return poisson_gaussian(light, 1 / 64, 0.0, noise_streams(seed)) * 64


class TestNormalTable:
    def test_moments(self):
        table = normal_table().astype(np.float64)
        assert table.dtype == np.float64 and table.size == 1 << 16
        assert abs(table.mean()) < 1e-7 and table.var() == pytest.approx(1, abs=1e-6)
        np.testing.assert_array_equal(table, -table[::-1])

    def test_distribution_within_its_resolution(self):
        # Each value stands for 1/65536 of the mass, so the distribution functions can differ by
        # at most that much, just below and just above each value.
        table = normal_table().astype(np.float64)
        above = np.arange(1, table.size + 1) / table.size
        assert np.abs(above - stats.norm.cdf(table)).max() <= 2**-16
        assert np.abs(above - 2**-16 - stats.norm.cdf(table)).max() <= 2**-16

    def test_read_only(self):
        with pytest.raises(ValueError):
            normal_table()[0] = 0


class TestExactCounts:
    def test_inverts_the_poisson_on_the_rows(self):
        # Means on the table's rows (multiples of 1/8) have no remainder: the count is the
        # Poisson's quantile of the high 32 bits, exactly, as SciPy computes it.
        rng = np.random.default_rng(0)
        means = rng.integers(0, EXACT_BELOW * 8, 20000) / np.float32(8)
        bits = rng.integers(0, 2**64, means.size, dtype=np.uint64)
        uniform = ((bits >> np.uint64(32)).astype(np.float64) + 0.5) / 2**32
        expected = stats.poisson.ppf(uniform, means)
        np.testing.assert_array_equal(_exact_counts(means.astype(np.float32), bits), expected)

    def test_inverts_the_poisson_in_the_tails(self):
        # Uniforms near 0 and 1, where cells hold several steps of the distribution function.
        means = np.repeat(np.arange(1, EXACT_BELOW * 8) / np.float32(8), 8)
        high = np.tile(np.array([0, 3, 2**20, 2**25, 2**32 - 2**25, 2**32 - 2**20, 2**32 - 9,
                                 2**32 - 1], np.uint64), means.size // 8)  # fmt: skip
        uniform = (high.astype(np.float64) + 0.5) / 2**32
        counts = _exact_counts(means, high << np.uint64(32))
        np.testing.assert_array_equal(counts, stats.poisson.ppf(uniform, means))

    def test_remainder_inverts_the_poisson(self):
        rng = np.random.default_rng(1)
        means = rng.random(20000) / 8
        uniform = rng.integers(0, 2**16, means.size, dtype=np.uint16)
        # Taken as 1 - u: uniform k stands for 1 - (k + 0.5) / 65536.
        expected = stats.poisson.ppf(1 - (uniform + 0.5) / 2**16, means)
        np.testing.assert_array_equal(_small_counts(means, uniform), expected)

    def test_negative_and_zero_means_count_nothing(self):
        bits = np.random.default_rng(2).integers(0, 2**64, 6, dtype=np.uint64)
        means = np.array([-5.0, -1.0, -0.125, -1e-6, 0.0, 0.0], np.float32)
        np.testing.assert_array_equal(_exact_counts(means, bits), 0)


def test_dark_pixels_draw_without_warnings():
    # At 1/12 photon and below the approximation divides by zero; exact draws replace it.
    light = np.array([0, 1 / 12, 0.05, -0.01, 1 / 12 + 1e-7, 3.0], np.float32) / 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = poisson_gaussian(np.tile(light, 1000), 1 / 64, 0.001, noise_streams(0))
    assert np.isfinite(counts).all()


class TestApproximateCounts:
    @pytest.mark.parametrize("mean", [EXACT_BELOW, 16.5, 20.0, 64.0, 1000.0, 1e5])
    def test_distribution_within_the_bound(self, mean):
        ks, cdf = approximation_cdf(mean)
        assert np.abs(cdf - stats.poisson.cdf(ks, mean)).max() <= APPROXIMATION_ERROR

    def test_error_falls_as_the_mean_grows(self):
        errors = []
        for mean in (16.0, 32.0, 128.0):
            ks, cdf = approximation_cdf(mean)
            errors.append(np.abs(cdf - stats.poisson.cdf(ks, mean)).max())
        assert errors[0] > errors[1] > errors[2]
        assert errors[0] > APPROXIMATION_ERROR / 2  # the bound is tight at the threshold

    @pytest.mark.parametrize("mean", [EXACT_BELOW, 40.0, 300.0])
    def test_mean_and_variance(self, mean):
        counts = _approximate_counts(np.full(EVERY_NORMAL.size, mean, np.float32), EVERY_NORMAL)
        assert counts.mean() == pytest.approx(mean, abs=1e-4)
        assert counts.var() == pytest.approx(mean, rel=1e-4)

    def test_whole_counts(self):
        counts = _approximate_counts(np.float32([16.0, 17.3, 5000.25]), EVERY_NORMAL[[0, 7, 9]])
        np.testing.assert_array_equal(counts, np.floor(counts))


class TestPoissonGaussian:
    @pytest.mark.parametrize("photons", [0.05, 0.7, 3.0, 12.0, 40.0, 900.0])
    def test_moments_match_the_model(self, photons):
        # Mean x and variance shot * x + read**2, low counts (exact) and high (approximated).
        shot, read, size = 0.004, 0.003, 400_000
        level = photons * shot
        noisy = poisson_gaussian(np.full(size, level, np.float32), shot, read,
                                 noise_streams(int(photons * 100))).astype(np.float64)  # fmt: skip
        variance = shot * level + read**2
        assert noisy.mean() == pytest.approx(level, abs=4 * np.sqrt(variance / size))
        assert noisy.var() == pytest.approx(variance, rel=4 * np.sqrt(2 / size) + 1e-3)

    @pytest.mark.parametrize("photons", [0.3, 1.0, 2.5, 6.0])
    def test_low_counts_are_poisson(self, photons):
        # Whole photons, none below zero, and P(0) = exp(-photons).
        counts = counts_of(photons, 400_000, seed=3)
        np.testing.assert_array_equal(counts, np.rint(counts))
        assert counts.min() == 0
        zero = np.exp(-photons)
        assert np.mean(counts == 0) == pytest.approx(zero, abs=4 * np.sqrt(zero / counts.size))
        observed = np.bincount(counts.astype(np.int64))
        expected = stats.poisson.pmf(np.arange(observed.size), photons) * counts.size
        kept = expected > 20
        assert stats.chisquare(observed[kept], expected[kept] * observed[kept].sum()
                               / expected[kept].sum()).pvalue > 1e-3  # fmt: skip

    def test_no_seam_at_the_switch(self):
        # Just below the threshold the draws are exact, at it approximated: the two sides'
        # moments and distribution functions agree with the Poisson's and with each other.
        means = (EXACT_BELOW - 2**-10, EXACT_BELOW)
        sides = [counts_of(mean, 1_000_000, seed) for mean, seed in zip(means, (4, 5), strict=True)]
        ks = np.arange(60)
        cdfs = []
        for counts, mean in zip(sides, means, strict=True):
            assert counts.mean() == pytest.approx(mean, abs=4 * np.sqrt(mean / counts.size))
            assert counts.var() == pytest.approx(mean, rel=4 * np.sqrt(2 / counts.size))
            cdfs.append(np.searchsorted(np.sort(counts), ks, side="right") / counts.size)
            assert np.abs(cdfs[-1] - stats.poisson.cdf(ks, mean)).max() < 2e-3
        assert np.abs(cdfs[0] - cdfs[1]).max() < 3e-3

    def test_seeded_and_any_shape(self):
        image = np.random.default_rng(1).random((9, 7, 3)).astype(np.float32)
        a = poisson_gaussian(image, 0.01, 0.01, noise_streams(5))
        np.testing.assert_array_equal(a, poisson_gaussian(image, 0.01, 0.01, noise_streams(5)))
        assert a.shape == image.shape and a.dtype == np.float32
        assert not np.array_equal(a, poisson_gaussian(image, 0.01, 0.01, noise_streams(6)))
        flat = poisson_gaussian(image.ravel(), 0.01, 0.01, noise_streams(5))
        np.testing.assert_array_equal(flat, a.ravel())

    def test_strips_in_order_equal_the_whole(self, monkeypatch):
        # Strips of any length, each drawn after the one before, in pieces smaller than a
        # strip too (the chunks the draws are made in).
        monkeypatch.setattr("blurgen.noise._CHUNK", 1000)
        image = (np.random.default_rng(2).random((70, 31, 3)) ** 3).astype(np.float32)
        whole = poisson_gaussian(image, 0.002, 0.004, noise_streams(9))
        rng = noise_streams(9)
        strips = [poisson_gaussian(image[a:b], 0.002, 0.004, rng) for a, b in
                  ((0, 1), (1, 30), (30, 33), (33, 70))]  # fmt: skip
        np.testing.assert_array_equal(np.concatenate(strips), whole)

    def test_levels_each_alone(self):
        image = np.full((64, 64), 0.2, np.float32)
        photons = poisson_gaussian(image, 0.01, 0.0, noise_streams(1)) / 0.01
        np.testing.assert_allclose(photons, np.rint(photons), atol=1e-4)  # whole photons
        read = poisson_gaussian(image, 0.0, 0.05, noise_streams(1)) - image
        assert read.std() == pytest.approx(0.05, rel=0.05)
        np.testing.assert_array_equal(poisson_gaussian(image, 0, 0, None), image)

    def test_same_noise_for_cupy_arrays(self, cupy_standin):
        # Noise is drawn on the host: a CuPy array gets the CPU's values, on its device.
        image = np.random.default_rng(3).random((40, 30, 3)).astype(np.float32)
        on_host = poisson_gaussian(image, 0.003, 0.01, noise_streams(11))
        on_device = poisson_gaussian(cupy_standin.asarray(image), 0.003, 0.01, noise_streams(11))
        assert isinstance(on_device, cupy_standin.ndarray)
        np.testing.assert_array_equal(on_device.get(), on_host)
