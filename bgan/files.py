"""Reading the PyTorch files a user hands us: checkpoints and VGG-19 weights."""

from __future__ import annotations

import os
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
        ValueError: the file is not one torch.load can read (corrupt, truncated, another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    # torch.load fails with many exception types (unpickling, zip reading, EOF, missing
    # classes) on a file that is damaged or not its format; the user needs the file's name.
    except Exception as exc:
        reason = next(iter(str(exc).splitlines()), "")  # torch's messages run to paragraphs
        raise ValueError(
            f"{what} '{path}' cannot be read: it is damaged or not a PyTorch file "
            f"({type(exc).__name__}: {reason})"
        ) from exc
