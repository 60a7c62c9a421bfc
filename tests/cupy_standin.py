"""A strict stand-in for CuPy, made of NumPy, so that the CUDA paths run on machines without a GPU.

It computes with NumPy (so its results are the CPU's, bit for bit) but keeps CuPy's rules about
where data lives, which is what goes wrong in code written without a GPU to run it on:

* its arrays refuse to become NumPy arrays implicitly (``np.asarray``, a NumPy ufunc, assigning
  one into a NumPy array): ``.get()`` copies to the host, as in CuPy;
* its functions, ufuncs and methods refuse NumPy arrays as arguments (CuPy's "Unsupported
  type"): ``cupy.asarray`` copies to the device. Index arrays may be NumPy's, as in CuPy;
  assigned values may not (CuPy takes them for some indices only);
* reductions and indexing give 0-d arrays, not scalars (CuPy has no device scalars);
* copies between host and device are recorded in :data:`TRANSFERS`;
* ``RawKernel`` checks each launch's arguments against the kernel's C signature (count, element
  type, C order, scalar types) and then runs a Python emulation of the kernel, written here
  from its CUDA source (:data:`_EMULATIONS`, by the kernel's name).

It stands in for the ``cupy``, ``cupyx``, ``cupyx.scipy`` and ``cupyx.scipy.fft`` modules
(:func:`modules`). It does not check that CuPy has every NumPy function or keyword it is asked
for, nor the GPU's rounding: the gpu-marked tests on a real device do.

Processes started with :func:`python_path` as their ``PYTHONPATH`` (spawned workers, commands)
have the stand-in too. Run as a script, it runs another with the stand-in in place of CuPy, and
in the processes that one starts, to try a bench's CUDA rows before a GPU's time is spent on
them (the figures are NumPy's, not a GPU's)::

    python tests/cupy_standin.py bench/make_dataset.py --large 0 --cuda-pairs 200
"""

from __future__ import annotations

import os
import re
import runpy
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
from numpy.lib.mixins import NDArrayOperatorsMixin

# Each copy between host and device, in order: ("to device" or "to host", bytes).
TRANSFERS: list[tuple[str, int]] = []

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
    "NumPy array explicitly."
)


def _to_host(value: Any, where: str) -> Any:
    """The NumPy storage of stand-in arrays in ``value`` (through lists, tuples and dicts);
    a NumPy array there is an error, as it is for CuPy."""
    if isinstance(value, ndarray):
        return value._host
    if isinstance(value, np.ndarray):
        raise TypeError(f"Unsupported type {type(value)} in {where}: a host array where CuPy "
                        "takes device arrays (cupy.asarray copies it to the device)")  # fmt: skip
    if isinstance(value, list | tuple):
        return type(value)(_to_host(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _to_host(v, where) for k, v in value.items()}
    return value


def _index(key: Any) -> Any:
    """An index with the stand-in's arrays as their storage (CuPy copies NumPy index arrays and
    lists to the device itself)."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key._host if isinstance(key, ndarray) else key


def _to_device(value: Any) -> Any:
    """NumPy arrays and scalars in a result as stand-in arrays (CuPy returns 0-d arrays where
    NumPy returns scalars)."""
    if isinstance(value, np.ndarray | np.generic):
        return ndarray(np.asarray(value))
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v) for v in value)
    return value


def _on_device(function: Callable, where: str | None = None) -> Callable:
    """``function`` (a NumPy or SciPy one) as CuPy's: device arrays in, device arrays out."""
    name = where or getattr(function, "__name__", repr(function))

    def call(*args: Any, **kwargs: Any) -> Any:
        return _to_device(function(*_to_host(args, name), **_to_host(kwargs, name)))

    call.__name__ = name
    return call


class ndarray(NDArrayOperatorsMixin):  # noqa: N801 (CuPy's name)
    """A device array: NumPy storage behind CuPy's rules (see the module's docstring)."""

    __array_priority__ = 100

    def __init__(self, host: np.ndarray) -> None:
        self._host = host

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_to_host(inputs, where), **_to_host(kwargs, where))
        if out is not None:  # in place: the caller's arrays, as NumPy returns them
            return out[0] if len(out) == 1 else out
        return _to_device(result)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any) -> Any:
        # CuPy dispatches NumPy's functions on its arrays to its own, which take device arrays.
        return _on_device(func)(*args, **kwargs)

    def get(self) -> np.ndarray:
        """A NumPy copy on the host."""
        TRANSFERS.append(("to host", self.nbytes))
        return self._host.copy()

    def astype(self, dtype: Any, order: str = "K", copy: bool = True) -> Any:
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return ndarray(self._host.astype(dtype, order=order))

    def __getitem__(self, key: Any) -> Any:
        return _to_device(self._host[_index(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._host[_index(key)] = _to_host(value, "an assignment")

    def __getattr__(self, name: str) -> Any:
        # Attributes (shape, dtype, flags...) as NumPy's; methods taking and giving device arrays.
        # Not NumPy's protocols (__array_interface__ would hand NumPy the host buffer).
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._host, name)
        if callable(value):
            return _on_device(value, f"ndarray.{name}")
        return _to_device(value)

    def __len__(self) -> int:
        return len(self._host)

    def __iter__(self) -> Any:
        return (ndarray(np.asarray(row)) for row in self._host)

    def __bool__(self) -> bool:
        return bool(self._host)

    def __int__(self) -> int:
        return int(self._host)

    def __float__(self) -> float:
        return float(self._host)

    def __repr__(self) -> str:
        return f"stand-in cupy {self._host!r}"

    # NumPy's own attributes, which __getattr__ would otherwise wrap or look up on every use.
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    nbytes = property(lambda self: self._host.nbytes)
    flags = property(lambda self: self._host.flags)
    T = property(lambda self: ndarray(self._host.T))


# get_xp and the like tell CuPy's arrays by their class's module.
ndarray.__module__ = "cupy"


def asarray(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    """A device array: ``a`` itself (cast if need be), or a host array or list copied over."""
    if isinstance(a, ndarray):
        return a.astype(dtype, copy=False) if dtype is not None else a
    copy = ndarray(np.array(a, dtype=dtype, order=order or "K"))
    TRANSFERS.append(("to device", copy.nbytes))
    return copy


_C_TYPES = {"float": np.float32, "double": np.float64, "float2": np.complex64,
            "double2": np.complex128, "int": np.int32, "long long": np.int64,
            "unsigned char": np.uint8}  # fmt: skip


class RawKernel:
    """A CUDA kernel from source: each launch is checked against its C signature, then run by
    its emulation (:data:`_EMULATIONS`)."""

    def __init__(self, code: str, name: str, **options: Any) -> None:
        code = re.sub(r"//[^\n]*", "", code)
        match = re.search(rf"__global__\s+void\s+{re.escape(name)}\s*\(([^)]*)\)", code)
        if match is None:
            raise ValueError(f"no __global__ function {name!r} in the source")
        if name not in _EMULATIONS:
            raise NotImplementedError(f"the CuPy stand-in has no emulation of {name!r}")
        self.name = name
        self.parameters = [_parameter(text) for text in match[1].split(",")]

    def __call__(self, grid: tuple, block: tuple, args: tuple, **options: Any) -> None:
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments, "
                            f"got {len(args)}")  # fmt: skip
        hosts = []
        for (c_type, pointer, name), value in zip(self.parameters, args, strict=True):
            dtype = np.dtype(_C_TYPES[c_type])
            if pointer:
                if not isinstance(value, ndarray):
                    raise TypeError(f"{self.name}: {name} must be a device array, got "
                                    f"{type(value).__name__}")  # fmt: skip
                contiguous = value.flags.c_contiguous
                if value.dtype != dtype or not contiguous:
                    raise TypeError(f"{self.name}: {name} must be C-contiguous {dtype}, got "
                                    f"{value.dtype} (C-contiguous: {contiguous})")  # fmt: skip
                hosts.append(value._host.reshape(-1))
            else:
                # A Python number would be passed with the width CuPy guesses, not the C type's.
                if not isinstance(value, np.generic) or value.dtype != dtype:
                    raise TypeError(f"{self.name}: {name} must be a NumPy {dtype} scalar, got "
                                    f"{value!r}")  # fmt: skip
                hosts.append(value)
        threads = int(np.prod(grid)) * int(np.prod(block))
        _EMULATIONS[self.name](*hosts, threads=threads)


def _parameter(text: str) -> tuple[str, bool, str]:
    """``(C type, is a pointer, name)`` of one parameter of a kernel's signature."""
    words = text.replace("*", " * ").replace("__restrict__", " ").split()
    name = words[-1]
    pointer = "*" in words
    c_type = " ".join(w for w in words[:-1] if w not in ("const", "*"))
    if c_type not in _C_TYPES:
        raise ValueError(f"the CuPy stand-in does not know the C type {c_type!r}")
    return c_type, pointer, name


def _integrate_trajectories(
    noise: np.ndarray, velocity0: np.ndarray, gain: np.ndarray, pull: np.ndarray,
    points: np.ndarray, shake_ptr: np.ndarray, shake_step: np.ndarray,
    shake_factor: np.ndarray, step: np.float64, steps: np.int32, n: np.int32,
    positions: np.ndarray, threads: int,
) -> None:  # fmt: skip
    """kernels/_cuda.py's kernel, one trajectory a lane of NumPy vectors instead of a thread."""
    n, steps = int(n), int(steps)
    if threads < n:
        raise ValueError(f"integrate_trajectories launched with {threads} threads for {n}")
    noise = noise.reshape(steps, n)
    positions = positions.reshape(steps + 1, n)
    x = np.zeros(n, np.complex128)
    v = velocity0.copy()
    used = points - 1
    shake = shake_ptr[:-1].copy()
    last_shake = shake_ptr[1:]
    positions[0] = 0
    for t in range(steps):
        active = t < used
        e = noise[t].astype(np.complex128)
        dv = gain * e - pull * x
        pending = active & (shake < last_shake)
        shakes = pending.copy()
        shakes[pending] = shake_step[shake[pending]] == t
        r = shake_factor[shake[shakes]]
        dv[shakes] += r * v[shakes]
        shake[shakes] += 1
        moved = v + dv
        moved *= step / np.hypot(moved.real, moved.imag)
        v = np.where(active, moved, v)
        x = np.where(active, x + moved, x)
        positions[t + 1] = x


# Python emulations of CUDA kernels by name: called with a launch's arguments (the NumPy storage
# of the pointers, flat; the scalars as given) and its number of threads, they write the outputs.
_EMULATIONS: dict[str, Callable[..., None]] = {"integrate_trajectories": _integrate_trajectories}


class _Runtime:
    """``cupy.cuda.runtime``: one device, which runs everything."""

    @staticmethod
    def getDeviceCount() -> int:  # noqa: N802 (CuPy's names)
        return 1

    @staticmethod
    def getDeviceProperties(device: int) -> dict:  # noqa: N802
        return {"name": b"CuPy stand-in (NumPy)"}

    @staticmethod
    def runtimeGetVersion() -> int:  # noqa: N802
        return 12080


class _Device:
    """``cupy.cuda.Device``: the one device, always idle (NumPy has finished when it returns)."""

    def __init__(self, device: int = 0) -> None:
        self.id = device

    def synchronize(self) -> None:
        pass


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def _numpy_function(name: str) -> Any:
    """Module-level ``__getattr__``: NumPy's dtypes and constants as they are, its functions as
    CuPy's."""
    if name.startswith("__"):  # the module's own (__file__, __path__...) are not NumPy's
        raise AttributeError(name)
    value = getattr(np, name)
    if isinstance(value, type) or not callable(value):
        return value
    return _on_device(value, f"cupy.{name}")


_FFT_NAMES = ("fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn",
              "ifftn", "rfftn", "irfftn", "next_fast_len")  # fmt: skip
_MODULES: dict[str, types.ModuleType] = {}
_MODULES["cupy"] = _module(
    "cupy", ndarray=ndarray, asarray=asarray, RawKernel=RawKernel, __getattr__=_numpy_function,
    cuda=_module("cupy.cuda", runtime=_Runtime, Device=_Device), __version__="stand-in",
)  # fmt: skip
_MODULES["cupyx.scipy.fft"] = _module(
    "cupyx.scipy.fft", **{n: _on_device(getattr(scipy.fft, n), n) for n in _FFT_NAMES}
)
_MODULES["cupyx.scipy"] = _module("cupyx.scipy", fft=_MODULES["cupyx.scipy.fft"])
_MODULES["cupyx"] = _module("cupyx", scipy=_MODULES["cupyx.scipy"])


def modules() -> dict[str, types.ModuleType]:
    """The stand-in's modules by the names to put them under in ``sys.modules``."""
    return dict(_MODULES)


# Its sitecustomize puts the stand-in in place as Python starts.
_SITE = Path(__file__).resolve().parent / "standin_site"


def python_path() -> str:
    """A ``PYTHONPATH`` for processes that should have the stand-in too: its site folder,
    then the current ``PYTHONPATH``."""
    return os.pathsep.join(filter(None, [str(_SITE), os.environ.get("PYTHONPATH")]))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/cupy_standin.py SCRIPT [ARGS...]")
    sys.modules.update(modules())
    os.environ["PYTHONPATH"] = python_path()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, str(Path(script).resolve().parent))  # a bench's own helpers
    runpy.run_path(script, run_name="__main__")
