"""Learned blur (BGAN) and the deblurring network (DBGAN) trained on blurgen pairs.

``BlurGAN`` (a trained blur generator) and ``Deblurrer`` (a trained deblurring network) are
imported from here on first use, so that importing a submodule does not load the networks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BlurGAN", "Deblurrer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import infer

        return getattr(infer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
