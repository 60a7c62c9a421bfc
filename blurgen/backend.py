"""Array backends: NumPy everywhere, CuPy on NVIDIA GPUs.

This is the only module that imports CuPy, and it does so lazily, so that ``import blurgen`` works
on machines without CUDA. Library functions follow their data (:func:`get_xp`); a device *string*
is accepted only at the edges (the CLI, generators that create arrays from nothing). The networks
(BGAN, DBGAN) run on PyTorch, whose CUDA support is separate from CuPy's:
:func:`check_torch_device` checks theirs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

DEVICES = ("cpu", "cuda")


class BackendUnavailable(RuntimeError):
    """The requested device cannot be used here; the message says why and what to do."""


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """Whether the CuPy backend works on this machine, and a sentence saying why (not).

    Returns:
        ``(True, "<GPU name>, CUDA runtime <version>")`` when a device ran a tiny computation,
        otherwise ``(False, reason)`` with an actionable reason.
    """
    try:
        import cupy
    except ImportError:
        return False, "cupy is not installed (pip install cupy-cuda12x, or cupy-cuda13x)"
    except Exception as exc:  # a broken CuPy install raises all sorts of errors at import
        return False, f"cupy is installed but failed to import: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"cupy is installed but no CUDA driver was found ({_first_line(exc)})"
    if count == 0:
        return False, "cupy is installed but no CUDA device is visible"
    try:
        # Runs a compiled kernel, so a missing NVRTC or a driver too old for the toolkit shows here
        # rather than in the middle of a job.
        if int(cupy.arange(4).sum()) != 6:
            return False, "cupy is installed but a test computation on the GPU gave a wrong result"
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        runtime = cupy.cuda.runtime.runtimeGetVersion()
    except Exception as exc:
        return False, f"cupy is installed but the GPU cannot run code ({_first_line(exc)})"
    return True, f"{name}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def check_device(device: str) -> str:
    """Validate a device string and make sure it can be used.

    Args:
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        The device string, normalised to lower case.

    Raises:
        ValueError: for an unknown device name.
        BackendUnavailable: for ``"cuda"`` when CuPy cannot run here, with the reason.
    """
    return _checked(device, cuda_status, "")


def torch_cuda_status() -> tuple[bool, str]:
    """Whether PyTorch can use a CUDA device, and a sentence saying why (not).

    Returns:
        ``(True, "<GPU name>, PyTorch <version>")``, otherwise ``(False, reason)``.
    """
    import torch

    if torch.version.cuda is None:
        return False, (
            f"this PyTorch build ({torch.__version__}) has no CUDA support; install a CUDA "
            "build of torch"
        )
    if not torch.cuda.is_available():
        return False, (
            f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) finds no CUDA device "
            "or driver"
        )
    return True, f"{torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}"


def check_torch_device(device: str) -> str:
    """:func:`check_device` for the PyTorch networks: ``"cuda"`` needs PyTorch's CUDA support
    (:func:`torch_cuda_status`), not CuPy's."""
    return _checked(device, torch_cuda_status, " to PyTorch")


def _checked(device: str, status: Callable[[], tuple[bool, str]], where: str) -> str:
    name = str(device).lower()
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if name == "cuda":
        ok, reason = status()
        if not ok:
            raise BackendUnavailable(f"device 'cuda' is not available{where}: {reason}")
    return name


def xp_for_device(device: str) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) for a validated device string."""
    if check_device(device) == "cuda":
        import cupy

        return cupy
    return np


def get_xp(array: Any) -> ModuleType:
    """The array module that owns ``array``: ``cupy`` for CuPy arrays, otherwise ``numpy``."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    if get_xp(array) is np:
        return np.asarray(array)
    return array.get()
