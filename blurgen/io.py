"""Files: atomic writes (temporary name, then rename), Ctrl-C at safe points, PNG output, and
opening HDF5 files with errors that name them.

Nothing blurgen writes may look complete before it is: every file is written under a temporary
name beside its destination and renamed into place only once it is whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from blurgen.color import as_uint


def check_output_path(path: str | os.PathLike) -> Path:
    """The output path, after checking that its folder exists and takes new files.

    Raises:
        FileNotFoundError: the folder does not exist.
        PermissionError: the folder is not writable.
        OSError: the folder takes no new files all the same (the message names the path and
            says why; ``errno`` kept).
    """
    path, folder = _output_folder(path)
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write '{path}': output folder '{folder}' is not writable")
    try:
        # Permission bits are not the whole answer: root passes them, yet /proc, /sys and
        # some network shares refuse new files all the same, and a full or read-only disk too.
        handle, probe = tempfile.mkstemp(prefix=".blurgen-probe-", dir=folder)
    except OSError as exc:
        failure = OSError(f"cannot write '{path}': output folder '{folder}' takes no new files "
                          f"({exc.strerror or exc})")  # fmt: skip
        failure.errno = exc.errno
        raise failure from None
    os.close(handle)
    os.remove(probe)
    return path


def _output_folder(path: str | os.PathLike) -> tuple[Path, Path]:
    """``path`` and its folder, which must exist (FileNotFoundError naming it otherwise)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write '{path}': output folder '{folder}' does not exist")
    return path, folder


def deflated_chunk(chunk: np.ndarray, level: int, shuffle: bool = False) -> bytes:
    """The bytes HDF5 stores for ``chunk`` (a whole chunk, in the dataset's dtype) under its
    shuffle filter (where ``shuffle``: every element's first byte, then every second byte, and
    so on) and its deflate filter at ``level`` (0-9), for ``write_direct_chunk``: so that
    whoever makes the data compresses it, not the one process that writes the file."""
    data = np.ascontiguousarray(chunk)
    if shuffle:
        data = np.ascontiguousarray(data.reshape(-1).view(np.uint8).reshape(-1, data.itemsize).T)
    return zlib.compress(data, level)


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name a file is written under before it is renamed to ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left as it was; an OSError
    (a full disk, a folder that takes no files) comes out as one naming ``path``, its
    ``errno`` kept.
    """
    path = _output_folder(path)[0]  # not probed: the temporary file itself is the probe
    temporary = partial_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        failure = OSError(f"cannot write '{path}' ({exc.strerror or exc})")
        failure.errno = exc.errno
        raise failure from exc


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
    """Read a whole image file as RGB float32 in [0, 1] (sRGB-encoded values as stored).

    Conversions as :meth:`Photo.crop` makes them.

    Returns:
        ``(image, bits)``: (H, W, 3) float32 in RGB order, and the file's bits per channel
        (8, 16, or 32 for float files).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an image OpenCV can decode, is damaged or truncated (the
            decoder complained), or has an unsupported layout; the message names the file.
    """
    photo = Photo.open(path)
    return photo.crop(0, 0, *photo.size), photo.bits


class _DecoderOutput:
    """What image decoders print on the process's standard error while they decode.

    Decoders (libjpeg, libpng, libtiff) report damage by printing to file descriptor 2 and carry
    on, filling what is missing with grey. While any decode runs, descriptor 2 points at a
    temporary file (opened for appending) and each decode reads back what was written while it
    ran. Decodes share that time, so that several threads decode at once: what one reads back
    may be a neighbour's complaint, and a decode that reads anything runs again alone (decoders
    print the same for the same bytes), which tells. Python's own writes to ``sys.stderr``
    land there too while a decode runs; ``blurgen``'s commands move them off descriptor 2
    (:func:`stderr_off_descriptor_2`).
    """

    def __init__(self) -> None:
        self._state = threading.Condition()
        self._inside = 0  # decodes in progress
        self._alone = False  # the one in progress runs alone
        self._waiting = 0  # decodes waiting to run alone: others let them in first
        self._path = ""
        self._reader: Any = None
        self._saved = -1

    @contextlib.contextmanager
    def catching(self, alone: bool = False) -> Iterator[Callable[[], str]]:
        """Descriptor 2 caught while inside; yields a function that returns what was written
        to it since entering (call it before leaving)."""
        with self._state:
            if alone:
                self._waiting += 1
                self._state.wait_for(lambda: self._inside == 0)
                self._waiting -= 1
            else:
                self._state.wait_for(lambda: not self._alone and not self._waiting)
            if self._inside == 0:
                self._open()
            self._inside += 1
            self._alone = alone
            start = os.fstat(self._reader.fileno()).st_size
        try:
            yield lambda: self._read(start)
        finally:
            with self._state:
                self._inside -= 1
                self._alone = False
                if self._inside == 0:
                    self._close()
                self._state.notify_all()

    def _open(self) -> None:
        # Descriptor 2 appends (writes land at the end whatever anyone's offset); the reader
        # is a descriptor of its own, whose offset moves with nobody's writes.
        sys.stderr.flush()
        handle, self._path = tempfile.mkstemp(prefix="blurgen-decoder-")
        os.close(handle)
        writer = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        try:
            self._reader = open(self._path, "rb")
            self._saved = os.dup(2)
            os.dup2(writer, 2)
        finally:
            os.close(writer)

    def _close(self) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._reader.close()
        os.remove(self._path)

    def _read(self, start: int) -> str:
        with self._state:
            self._reader.seek(start)
            return self._reader.read().decode(errors="replace")


_DECODER_OUTPUT = _DecoderOutput()


def stderr_off_descriptor_2() -> None:
    """Point Python's ``sys.stderr`` at a copy of file descriptor 2, so that what the process
    prints there (progress bars, warnings, logs) is never taken for a decoder's complaint
    while an image decodes (:class:`_DecoderOutput`). For commands; does nothing where
    ``sys.stderr`` is not descriptor 2 already."""
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor
        return
    sys.stderr.flush()
    # Left open: it is the process's standard error from here on.
    sys.stderr = open(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding,
                      errors=sys.stderr.errors)  # fmt: skip


_OPENCV_PREFIX = re.compile(r"^\[ *[A-Z]+:\d+@[\d.]+\] *")


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode an encoded image as OpenCV stores it (BGR or BGRA order, native dtype).

    Whatever the decoder prints about the file (libjpeg's "Premature end of JPEG file",
    "Corrupt JPEG data", libpng's errors) is caught rather than printed and makes the image
    unusable: a decoder that complains has filled the damaged part with made-up pixels.

    Args:
        data: the file's bytes.
        name: the file's name for messages.

    Raises:
        ValueError: not decodable, or the decoder complained; the message names the file and
            quotes the decoder.
    """
    buffer = np.frombuffer(data, np.uint8)
    raw, printed = _decode_caught(buffer)
    if printed:  # this decode's complaint, or a neighbour's: alone, it prints only its own
        raw, printed = _decode_caught(buffer, alone=True)
    complaints = [line.strip() for line in printed.splitlines()]
    # OpenCV prefixes its own warnings with the time since start ("[ WARN:0@1.894] "): without
    # it the message, which a dataset records, is the same from run to run.
    complaints = [_OPENCV_PREFIX.sub("", line) for line in complaints if line]
    if complaints:
        raise ValueError(f"'{name}': damaged or truncated image (decoder: {complaints[0]})")
    if raw is None:
        raise ValueError(f"'{name}': damaged, truncated, or not an image format OpenCV reads")
    if raw.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"'{name}': unsupported pixel type {raw.dtype}")
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[2] not in (1, 3, 4)):
        raise ValueError(f"'{name}': unsupported layout {raw.shape}")
    return raw


def _decode_caught(buffer: np.ndarray, alone: bool = False) -> tuple[np.ndarray | None, str]:
    with _DECODER_OUTPUT.catching(alone) as printed:
        raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
        return raw, printed()


_SCALES = {np.dtype(np.uint8): (255, 8), np.dtype(np.uint16): (65535, 16),
           np.dtype(np.float32): (1, 32)}  # fmt: skip


@dataclass(frozen=True)
class Photo:
    """A decoded image kept as the file stores it, so that only the parts used are converted.

    A 100-megapixel 8-bit photo holds 300 MB here, against 1.2 GB as float32 RGB.

    Attributes:
        path: the file.
        pixels: (H, W) or (H, W, C) array as OpenCV decodes it: BGR(A) order, uint8, uint16 or
            float32.
        fingerprint: 32 hex digits identifying the file's bytes (BLAKE2b-128).
    """

    path: Path
    pixels: np.ndarray
    fingerprint: str

    @classmethod
    def open(cls, path: str | os.PathLike) -> Photo:
        """Read and decode an image file (see :func:`decode_image`).

        Raises:
            FileNotFoundError: no such file. ValueError: as :func:`decode_image`.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"'{path}': no such file")
        data = path.read_bytes()
        pixels = decode_image(data, str(path))
        return cls(path, pixels, file_fingerprint(data))

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.pixels.shape[0], self.pixels.shape[1]

    @property
    def bits(self) -> int:
        """Bits per channel in the file: 8, 16, or 32 for float files."""
        return _SCALES[self.pixels.dtype][1]

    def crop(self, y: int, x: int, height: int, width: int) -> np.ndarray:
        """Rows ``y .. y + height - 1`` and columns ``x .. x + width - 1`` as RGB float32 in
        [0, 1]: 8- and 16-bit values scaled by their maximum, float values clipped, grey
        repeated to RGB, alpha dropped (colours as stored, not composited; CMYK files arrive
        as RGB through OpenCV's own conversion).

        Raises:
            ValueError: the region is not inside the image.
        """
        region = self.region(y, x, height, width)
        if region.dtype == np.float32:
            return region
        return region.astype(np.float32) / np.float32(_SCALES[region.dtype][0])

    def region(self, y: int, x: int, height: int, width: int) -> np.ndarray:
        """The same region as :meth:`crop`, in the file's own dtype: uint8 and uint16 as
        stored (converted by whoever needs floats, e.g. through a table; a contiguous copy for
        colour photos, a view for grey ones), float clipped to [0, 1].

        Raises:
            ValueError: the region is not inside the image.
        """
        rows, cols = self.size
        if not (0 <= y and 0 <= x and height > 0 and width > 0 and y + height <= rows
                and x + width <= cols):  # fmt: skip
            raise ValueError(
                f"'{self.path}': region ({y}, {x}) + {height}x{width} is outside the "
                f"{rows}x{cols} image"
            )
        region = self.pixels[y : y + height, x : x + width]
        if region.dtype != np.float32 and region.ndim == 3 and region.shape[2] in (3, 4):
            # OpenCV reorders the channels several times as fast as NumPy copies the
            # reversed view.
            code = cv2.COLOR_BGR2RGB if region.shape[2] == 3 else cv2.COLOR_BGRA2RGB
            return cv2.cvtColor(region, code)
        region = _rgb(region)
        return np.clip(region, 0, 1) if region.dtype == np.float32 else region

    def rgb(self) -> np.ndarray:
        """The whole image as (H, W, 3) RGB in the file's own dtype, without converting it:
        uint8 and uint16 as stored (a view: grey repeated, alpha dropped, as :meth:`crop`),
        float clipped to [0, 1] (a copy)."""
        image = _rgb(self.pixels)
        return np.clip(image, 0, 1) if image.dtype == np.float32 else image


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """A view of OpenCV's grey, BGR or BGRA pixels as (H, W, 3) RGB."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        return np.broadcast_to(pixels, (*pixels.shape[:2], 3))
    return pixels[..., 2::-1]


def file_fingerprint(data: bytes) -> str:
    """32 hex digits identifying ``data`` (BLAKE2b with a 128-bit digest)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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
        image = as_uint(image, bits)
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
        temporary.write_bytes(memoryview(encoded))
    return Path(path)
