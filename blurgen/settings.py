"""Settings as users write them: a flag (``--max-len 40``), or a key of a ``--config`` file or
a preset (``max_len: 40``), parsed the same way, without click.

Each part of a dataset's config declares its settings where it is defined: the dataset's own
(:data:`blurgen.pipeline.DATASET_SETTINGS`), each blur method's (:mod:`blurgen.methods`) and the
degradation's (:data:`blurgen.degradation.DEGRADATION_SETTINGS`). The command line builds its
options from them (:mod:`blurgen.cli.options`), :mod:`blurgen.presets` reads files with them,
and the documentation lists them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# How a setting's text is read: int and float are numbers; floats a comma-separated list;
# range one number or LOW,HIGH (a fixed value or a range); pair LOW,HIGH (one number for both);
# choice one of ``choices``; switch true or false (``--x/--no-x``); text as it is.
KINDS = ("int", "float", "floats", "range", "pair", "choice", "switch", "text")


@dataclass(frozen=True)
class Setting:
    """One setting: its flag ``--name-with-dashes``, its file key ``name``, and its help.

    Attributes:
        name: the key (``max_len``); the flag is ``--max-len``.
        help: one or two sentences for ``--help`` and the docs.
        kind: how its text is read (:data:`KINDS`).
        default: the value when not given (in the form a file holds it), or None when the
            owner's model decides (the help then says the default in brackets).
        choices: for ``kind="choice"``: the values, or a function that gives them when asked
            (the registered blur methods).
        minimum: for ``kind="int"``: the smallest value allowed.
        metavar: how ``--help`` shows the value (``LOW,HIGH``).
        off: for ``kind="switch"``: the name of the off flag's key (``no_flips``), if not
            ``no_`` + ``name``.
    """

    name: str
    help: str
    kind: str = "text"
    default: Any = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    minimum: int | None = None
    metavar: str | None = None
    off: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def flag(self) -> str:
        """The command-line flag, ``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")

    @property
    def values(self) -> tuple[str, ...]:
        """A choice's values."""
        return self.choices() if callable(self.choices) else self.choices

    @property
    def off_name(self) -> str:
        """The key of a switch's off flag (``no_flips``)."""
        return self.off or "no_" + self.name

    def parse(self, value: Any) -> Any:
        """The typed value of ``value`` as a flag or a file gives it (text, a number, a list
        for lists and ranges, true/false for switches); None stays None.

        Raises:
            ValueError: it cannot be read; the message names the flag.
        """
        if value is None:
            return None
        try:
            return _PARSERS[self.kind](self, value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.flag}: {exc}") from None


@dataclass(frozen=True)
class Parameter:
    """One setting ``blurgen calibrate`` searches: its range, whether it is a whole number, and
    what it sets."""

    low: float
    high: float
    integer: bool = False
    help: str = ""


def _numbers(value: Any) -> tuple[float, ...]:
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        return tuple(float(part) for part in parts if str(part).strip())
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {value!r}") from None


def _int(setting: Setting, value: Any) -> int:
    if isinstance(value, bool) or float(value) != int(float(value)):
        raise ValueError(f"expected a whole number, got {value!r}")
    number = int(float(value))
    if setting.minimum is not None and number < setting.minimum:
        raise ValueError(f"{number} is smaller than the minimum {setting.minimum}")
    return number


def _float(setting: Setting, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def _range(setting: Setting, value: Any) -> float | tuple[float, float]:
    values = _numbers(value)
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values
    raise ValueError(f"expected a number or LOW,HIGH, got {value!r}")


def _pair(setting: Setting, value: Any) -> tuple[float, float]:
    values = _range(setting, value)
    return values if isinstance(values, tuple) else (values, values)


def _choice(setting: Setting, value: Any) -> str:
    if str(value) not in setting.values:
        raise ValueError(f"expected one of {', '.join(setting.values)}, got {value!r}")
    return str(value)


def _switch(setting: Setting, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


_PARSERS = {
    "int": _int,
    "float": _float,
    "floats": lambda setting, value: _numbers(value),
    "range": _range,
    "pair": _pair,
    "choice": _choice,
    "switch": _switch,
    "text": lambda setting, value: str(value),
}


def parsed(settings: tuple[Setting, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    """The typed values of ``settings`` found in ``values`` (by name), None where absent."""
    return {s.name: s.parse(values.get(s.name)) for s in settings}


def as_flags(message: str, fields: Mapping[str, str]) -> str:
    """An error message about a config's fields, each field (a key of ``fields``) named as its
    setting's flag instead (``{"red_gain": "isp_red_gain"}``: ``--isp-red-gain``)."""
    for field, setting in fields.items():
        flag = "--" + setting.replace("_", "-")
        message = re.sub(rf"(?<![\w-]){re.escape(field)}\b", flag, message)
    return message
