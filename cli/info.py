"""``blurgen info``: versions, and which compute backends work here (and why not)."""

from __future__ import annotations

import platform
from importlib import metadata

import click

import blurgen
from blurgen.backend import cuda_status, torch_cuda_status

# Each dependency under the names it is distributed by (OpenCV's headless and contrib builds,
# CuPy's builds for each CUDA): the first one installed is reported.
PACKAGES = (
    ("numpy",), ("scipy",),
    ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
     "opencv-contrib-python-headless"),
    ("torch",), ("click",), ("h5py",),
    ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
)  # fmt: skip


@click.command("info")
def info_command():
    """Print blurgen's version, its dependencies' versions and the usable devices: CuPy runs
    kernels and the forward model on a GPU, PyTorch the networks (BGAN, DBGAN)."""
    click.echo(f"blurgen {blurgen.__version__}")
    click.echo(f"python  {platform.python_version()} ({platform.platform()})")
    for names in PACKAGES:
        name, version = installed(names)
        click.echo(f"  {name:22s} {version}")
    click.echo("devices:")
    click.echo("  cpu             available (NumPy, PyTorch)")
    for label, status in (("cuda (CuPy)", cuda_status), ("cuda (PyTorch)", torch_cuda_status)):
        ok, reason = status()
        click.echo(f"  {label:15s} {'available' if ok else 'unavailable'}: {reason}")


def installed(names: tuple[str, ...]) -> tuple[str, str]:
    """The first of ``names`` that is installed, and its version; else the first name and
    ``"not installed"``."""
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return names[0], "not installed"
