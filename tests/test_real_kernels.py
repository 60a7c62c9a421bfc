"""Generated kernels against kernels estimated from real camera-shake photos (../shared/data).

Estimated kernels are smeared by the estimation, so only the scale of the blur is compared: the
typical real extent must lie within the bulk of the generated ones. A generator that made
kernels several times too small or too large would fail.
"""

from __future__ import annotations

import numpy as np

from blurgen.kernels import kernel_centroid, motion_kernels


def major_std(kernel: np.ndarray) -> float:
    """Standard deviation in pixels of a kernel's mass along its principal axis."""
    k = np.asarray(kernel, np.float64)
    k = k / k.sum()
    rows, cols = np.indices(k.shape)
    my, mx = (k * rows).sum(), (k * cols).sum()
    cxx = (k * (cols - mx) ** 2).sum()
    cyy = (k * (rows - my) ** 2).sum()
    cxy = (k * (cols - mx) * (rows - my)).sum()
    return float(np.sqrt(np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])[1]))


def test_blur_extent_matches_real_camera_shake(shared_data):
    files = sorted((shared_data / "kernels" / "lai2016_real_estimated").glob("*.npy"))
    assert len(files) >= 20
    real = np.array([major_std(np.load(f)) for f in files])
    ours = np.array([major_std(k) for k in motion_kernels(400, 64, seed=0)])
    low, high = np.percentile(ours, [10, 90])
    assert low < np.median(real) < high
    # Unlike many estimated kernels, ours are centred on the anchor.
    assert np.abs(kernel_centroid(motion_kernels(400, 64, seed=0)) - 32).max() < 0.05
