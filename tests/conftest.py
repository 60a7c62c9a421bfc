"""Shared fixtures: the GPU marker's skip, the CuPy stand-in, and the reference data that only
some clones have."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cupy_standin import modules as standin_modules
from cupy_standin import python_path as standin_python_path

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


@pytest.fixture
def cupy_standin(request, monkeypatch):
    """CuPy's modules replaced by the strict NumPy stand-in of tests/cupy_standin.py for one test,
    and in the processes it starts: ``device="cuda"`` then runs here. Modules and caches that
    hold on to CuPy are dropped before and after, so that neither the stand-in nor the real CuPy
    leaks into the other's tests."""
    monkeypatch.setenv("PYTHONPATH", standin_python_path())
    cached = [name for name in sys.modules if name.split(".")[0] in ("cupy", "cupyx")]
    for name in [*cached, "blurgen.kernels._cuda"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name, module in standin_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    cuda_status.cache_clear()
    request.addfinalizer(_forget_the_standin)  # before monkeypatch puts back what it removed
    return sys.modules["cupy"]


def _forget_the_standin() -> None:
    sys.modules.pop("blurgen.kernels._cuda", None)
    cuda_status.cache_clear()


@pytest.fixture(params=["standin", pytest.param("device", marks=pytest.mark.gpu)])
def cuda(request) -> str:
    """Each CUDA test twice: on the GPU (gpu-marked: skips without one) and, everywhere, with
    the CuPy stand-in (:func:`cupy_standin`), so that the CUDA paths run on every machine.
    Returns ``"standin"`` or ``"device"``."""
    if request.param == "standin":
        request.getfixturevalue("cupy_standin")
    return request.param
