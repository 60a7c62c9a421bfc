"""The registry of blur methods: each is one module (its config section, settings, draw, render
and file columns; see :class:`~blurgen.methods.base.BlurMethod`), registered here.

Adding a method is a new module and one line in :data:`REGISTERED`. A method registered later
with :func:`register` (a plugin) works everywhere but in config sections, whose fields are
fixed when :class:`blurgen.sample.SampleConfig` is defined: such a method has none.
"""

from __future__ import annotations

from .base import BlurMethod, Job, LearnedBlur
from .camera import CameraShakeBlur
from .kernel import LineBlur, TrajectoryBlur
from .learned import BganMethod
from .video import VideoBlur

__all__ = ["BlurMethod", "Job", "LearnedBlur", "get", "names", "by_code", "register", "methods",
           "for_source", "drawn_names"]  # fmt: skip

_METHODS: dict[str, BlurMethod] = {}


def register(method: BlurMethod) -> BlurMethod:
    """Add a method; its name and file code must be new.

    Raises:
        ValueError: a method of that name or code is registered.
    """
    for other in _METHODS.values():
        if method.name == other.name or method.code == other.code:
            raise ValueError(f"blur method {method.name!r} (code {method.code}) clashes with "
                             f"{other.name!r} (code {other.code})")  # fmt: skip
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method added by :func:`register` (a test's, for example)."""
    if name in {m.name for m in REGISTERED}:
        raise ValueError(f"{name!r} is one of blurgen's own methods")
    _METHODS.pop(name, None)


def get(name: str) -> BlurMethod:
    """The method called ``name``.

    Raises:
        ValueError: there is none; the message lists the methods.
    """
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(f"unknown blur method {name!r}: one of {', '.join(names())}") from None


def by_code(code: int) -> BlurMethod:
    """The method whose file code is ``code``."""
    for method in _METHODS.values():
        if method.code == code:
            return method
    raise ValueError(f"no blur method has code {code} (a file of a newer blurgen, or a plugin's)")


def names() -> tuple[str, ...]:
    """The registered methods' names, in registration order."""
    return tuple(_METHODS)


def methods() -> tuple[BlurMethod, ...]:
    """The registered methods, in registration order."""
    return tuple(_METHODS.values())


def for_source(kind: str) -> BlurMethod:
    """The method that blurs every source of a kind other than ``"photo"`` (``"video"``).

    Raises:
        ValueError: none does.
    """
    for method in _METHODS.values():
        if method.source == kind:
            return method
    raise ValueError(f"no blur method reads {kind} sources")


def drawn_names() -> tuple[str, ...]:
    """The names ``blur`` and ``mix`` may give: the methods that blur photos."""
    return tuple(name for name, method in _METHODS.items() if method.source == "photo")


# blurgen's methods, in the order --blur lists them.
REGISTERED = (TrajectoryBlur(), LineBlur(), BganMethod(), CameraShakeBlur(), VideoBlur())
for _method in REGISTERED:
    register(_method)
