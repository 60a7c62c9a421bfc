"""Files: atomic writes (temporary name, then rename), Ctrl-C at safe points, PNG output, and
opening HDF5 files with errors that name them.

Nothing blurgen writes may look complete before it is: every file is written under a temporary
name beside its destination and renamed into place only once it is whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import h5py
import numpy as np


def check_output_path(path: str | os.PathLike) -> Path:
    """The output path, after checking that its folder exists and is writable.

    Raises:
        FileNotFoundError: the folder does not exist.
        PermissionError: the folder is not writable.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"output folder '{folder}' is not writable")
    return path


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name a file is written under before it is renamed to ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = check_output_path(path)
    temporary = partial_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def interrupt_between_steps() -> Iterator[Callable[[], None]]:
    """Defer Ctrl-C to points the caller chooses.

    Python raises KeyboardInterrupt wherever the main thread happens to be, and one that lands
    in a weakref callback or finaliser is printed and dropped, so a long job would go on.
    Inside this block a first Ctrl-C is only recorded; the yielded ``check()`` raises
    KeyboardInterrupt at the next safe point. A second Ctrl-C raises at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    received = []

    def record(signum: int, frame: object) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    def check() -> None:
        if received:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, record)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)


def open_hdf5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file for reading.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5 or is damaged (h5py's reason, with the file's name,
            which h5py's own message lacks).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"'{path}' cannot be read as an HDF5 file ({exc})") from exc


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 1]; :func:`load_image` without the bit depth."""
    return load_image(path)[0]


def load_image(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an image file as RGB float32 in [0, 1] (sRGB-encoded values as stored).

    8- and 16-bit files are scaled by their maximum; grey images are repeated to RGB; an alpha
    channel is dropped (colours are kept as stored, not composited); CMYK files arrive as RGB
    through OpenCV's own conversion.

    Returns:
        ``(image, bits)``: (H, W, 3) float32 in RGB order, and the file's bits per channel
        (8, 16, or 32 for float files).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an image OpenCV can decode, or has an unsupported layout;
            the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"'{path}': no such file")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"'{path}': not an image OpenCV can read, or corrupt")
    if raw.dtype == np.uint8:
        image, bits = raw.astype(np.float32) / 255, 8
    elif raw.dtype == np.uint16:
        image, bits = raw.astype(np.float32) / 65535, 16
    elif raw.dtype == np.float32:
        image, bits = np.clip(raw, 0, 1), 32
    else:
        raise ValueError(f"'{path}': unsupported pixel type {raw.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2), bits
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"'{path}': unsupported layout {raw.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2), bits
    return np.ascontiguousarray(image[..., 2::-1]), bits


def write_png(path: str | os.PathLike, rgb: np.ndarray, bits: int = 8) -> Path:
    """Write an RGB (H, W, 3) or grey (H, W) image as PNG, atomically.

    Args:
        path: destination file.
        rgb: uint8 or uint16 array in RGB channel order (not OpenCV's BGR), or float in [0, 1],
            which is rounded to ``bits`` (8 or 16) per channel.
        bits: depth for float input.
    """
    image = np.asarray(rgb)
    if image.dtype.kind == "f":
        top, dtype = (65535, np.uint16) if bits == 16 else (255, np.uint8)
        image = np.rint(np.clip(image, 0, 1) * top).astype(dtype)
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3):
        raise ValueError(
            f"expected an 8/16-bit (H, W) or (H, W, 3) image, got {image.dtype} {image.shape}"
        )
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode a PNG for '{path}'")
    with atomic_path(path) as temporary:
        temporary.write_bytes(encoded.tobytes())
    return Path(path)
