"""A minimal writer of uncompressed CMYK TIFF files, for tests of image reading.

OpenCV cannot write CMYK and Pillow is not a dependency, so the few tags a baseline TIFF reader
needs are laid out by hand (TIFF 6.0, section 16: PhotometricInterpretation 5, "separated").
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_SHORT, _LONG = 3, 4


def write_cmyk_tiff(path: Path, cmyk: np.ndarray) -> None:
    """Write (H, W, 4) uint8 ink amounts (0 = no ink, 255 = full) as a one-strip CMYK TIFF."""
    height, width, channels = cmyk.shape
    assert channels == 4 and cmyk.dtype == np.uint8
    pixels = np.ascontiguousarray(cmyk).tobytes()
    tags = [  # (tag, type, count, value); None values are offsets filled in below
        (256, _SHORT, 1, width),
        (257, _SHORT, 1, height),
        (258, _SHORT, 4, None),  # BitsPerSample: 8 for each ink, stored after the directory
        (259, _SHORT, 1, 1),  # no compression
        (262, _SHORT, 1, 5),  # separated (CMYK)
        (273, _LONG, 1, None),  # StripOffsets
        (277, _SHORT, 1, 4),  # SamplesPerPixel
        (278, _SHORT, 1, height),  # RowsPerStrip
        (279, _LONG, 1, len(pixels)),  # StripByteCounts
        (284, _SHORT, 1, 1),  # chunky planar configuration
        (332, _SHORT, 1, 1),  # InkSet: CMYK
    ]
    directory = 8
    bits_at = directory + 2 + 12 * len(tags) + 4
    pixels_at = bits_at + 8
    out = bytearray(b"II*\x00" + struct.pack("<I", directory) + struct.pack("<H", len(tags)))
    for tag, kind, count, value in tags:
        value = {258: bits_at, 273: pixels_at}.get(tag, value)
        if kind == _SHORT and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)  # no further directory
    out += struct.pack("<4H", 8, 8, 8, 8)
    out += pixels
    Path(path).write_bytes(bytes(out))
