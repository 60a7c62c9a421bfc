"""blurgen: paired blurred/sharp training data for image deblurring.

The physical blur model is ``I_B = k * I_S + N``: a camera-shake kernel ``k`` (see
:mod:`blurgen.kernels`) convolved with a sharp image, plus sensor noise. The command-line tool is
``blurgen`` (see ``blurgen --help``).
"""

from typing import Any

__version__ = "0.1.0"

from .forward import blur  # noqa: E402

__all__ = ["__version__", "blur", "BlurTransform", "BlurRecord"]


def __getattr__(name: str) -> Any:
    # The transform pulls in the synthesiser and every blur method: only when asked for.
    if name in ("BlurTransform", "BlurRecord"):
        from . import transform

        return getattr(transform, name)
    raise AttributeError(f"module 'blurgen' has no attribute {name!r}")
