"""Reading the PyTorch files a user hands us: checkpoints and VGG-19 weights."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch


def read_torch_file(path: str | os.PathLike, what: str, *, map_location: Any = "cpu") -> Any:
    """The object saved in the ``torch.save`` file ``path``.

    Args:
        path: the file.
        what: what the file should be, for messages (e.g. ``"checkpoint"``).
        map_location: as for :func:`torch.load`.

    Only tensors, containers and plain values are unpickled (``weights_only=True``): a file
    from elsewhere cannot run code.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not one torch.load can read safely (corrupt, truncated, another
            format, or holding other Python objects).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' not found")
    try:
        with warnings.catch_warnings():
            # A pickle not written by torch.save draws a warning asking for a bug report to
            # PyTorch before the error below; the error says all there is to say.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    # torch's messages advise loading again with weights_only=False, which would run whatever
    # code an untrusted file holds: none of their text is passed on.
    except pickle.UnpicklingError:
        raise ValueError(
            f"{what} '{path}' cannot be read safely: it is damaged, another format, or holds "
            "Python objects other than tensors and plain values, which blurgen never unpickles"
        ) from None
    # torch.load fails with many other exception types (zip reading, EOF, bad keys) on a file
    # that is damaged or not its format; the user needs the file's name, and torch's first
    # line where it gives no such advice ("failed finding central directory").
    except Exception as exc:
        reason = next(iter(str(exc).splitlines()), "").split(". ")[0]
        detail = f" ({reason})" if reason and "weights_only" not in str(exc) else ""
        raise ValueError(
            f"{what} '{path}' cannot be read: it is damaged or not a PyTorch file{detail}"
        ) from None
