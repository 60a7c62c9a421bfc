"""Shared fixtures: the GPU marker's skip, and the reference data that only some clones have."""

from __future__ import annotations

from pathlib import Path

import pytest

from blurgen.backend import cuda_status

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    ok, reason = cuda_status()
    if not ok:
        skip = pytest.mark.skip(reason=f"no working CUDA device: {reason}")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA
