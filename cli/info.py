"""``blurgen info``: versions, and which compute backends work here (and why not)."""

from __future__ import annotations

import platform
from importlib import metadata

import click

import blurgen
from blurgen.backend import cuda_status, torch_cuda_status

PACKAGES = ("numpy", "scipy", "opencv-python", "torch", "click", "h5py", "cupy-cuda12x")


@click.command("info")
def info_command():
    """Print blurgen's version, its dependencies' versions and the usable devices: CuPy runs
    kernels and the forward model on a GPU, PyTorch the networks (BGAN, DBGAN)."""
    click.echo(f"blurgen {blurgen.__version__}")
    click.echo(f"python  {platform.python_version()} ({platform.platform()})")
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "not installed"
        click.echo(f"  {name:14s} {version}")
    click.echo("devices:")
    click.echo("  cpu             available (NumPy, PyTorch)")
    for label, status in (("cuda (CuPy)", cuda_status), ("cuda (PyTorch)", torch_cuda_status)):
        ok, reason = status()
        click.echo(f"  {label:15s} {'available' if ok else 'unavailable'}: {reason}")
