"""Generated kernels against kernels estimated from real camera-shake photos (../shared/data).

Estimated kernels are smeared by the estimation, so only the scale of the blur is compared: the
typical real extent must lie within the bulk of the generated ones. A generator that made
kernels several times too small or too large would fail.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from blurgen.kernels import kernel_centroid, kernel_extent, line_kernel, motion_kernels


def test_blur_extent_matches_real_camera_shake(shared_data):
    files = sorted((shared_data / "kernels" / "lai2016_real_estimated").glob("*.npy"))
    assert len(files) >= 20
    real = np.array([kernel_extent(np.load(f)) for f in files])
    ours = kernel_extent(motion_kernels(400, 64, seed=0))
    low, high = np.percentile(ours, [10, 90])
    assert low < np.median(real) < high
    # Unlike many estimated kernels, ours are centred on the anchor.
    assert np.abs(kernel_centroid(motion_kernels(400, 64, seed=0)) - 32).max() < 0.05


def test_extent_closed_forms():
    # A horizontal streak of L equal pixels: sqrt((L^2 - 1) / 12); a point: 0.
    streak = np.zeros((15, 15))
    streak[7, 2:13] = 1
    assert kernel_extent(streak) == pytest.approx(np.sqrt((11**2 - 1) / 12))
    point = np.zeros((5, 5))
    point[2, 2] = 1
    assert kernel_extent(point) == 0
    # The principal axis, whatever its direction: a rotated streak keeps its extent.
    assert kernel_extent(line_kernel(20.0, 35.0, 31)) == pytest.approx(20 / np.sqrt(12), rel=0.05)
    both = kernel_extent(np.stack([streak, streak.T]))
    assert both.shape == (2,) and both[0] == pytest.approx(both[1])


def test_the_default_preset_covers_the_real_kernels(shared_data):
    from click.testing import CliRunner

    from blurgen.calibrate import coverage_shortfall, drawn_extents, read_kernel_extents
    from blurgen.cli.main import cli
    from blurgen.pipeline import DatasetConfig

    result = CliRunner().invoke(cli, ["make-dataset", "-o", "unused.h5", "--dry-run", "--json"])
    default = DatasetConfig.from_dict(json.loads(result.output)["config"])
    real = read_kernel_extents([shared_data / "kernels" / "lai2016_real_estimated"])
    # Every real extent lies between the 5th and 95th percentiles of the default's kernels.
    assert coverage_shortfall(drawn_extents(default, 4000), real) == 0
