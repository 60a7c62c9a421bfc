"""Presets as data: plain YAML files of settings, named as make-dataset's flags
(``max_len: 70``, ``mix: motion=0.7,linear=0.3``), turned into configs without the command line.

``load("camera-shake")`` is the config ``blurgen make-dataset --preset camera-shake`` builds
before its flags; ``load("none")`` is blurgen's plain defaults; ``load("my.yaml")`` reads a
preset written by ``blurgen calibrate`` (or any ``--config`` file of these settings).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from blurgen import methods as registry
from blurgen.degradation import DEGRADATION_SETTINGS, Degradation
from blurgen.settings import Setting, parsed

FOLDER = Path(__file__).resolve().parent
# The name of blurgen's plain defaults, with no file.
NONE = "none"
# What each shipped preset is, in a few words, for --help (its file's comment says more).
SUMMARIES = {
    "camera-shake": "fitted to real camera-shake photos",
    "deblurgan": "DeblurGAN's blur, for comparisons",
    "phone": "camera-shake's blur through a generic phone camera's ISP, sharpening and JPEG",
    "realblur": "camera-shake's blur through RealBlur's camera as RSBlur modelled it",
    NONE: "blurgen's plain defaults",
}


def names() -> list[str]:
    """The shipped presets' names (without ``none``)."""
    return sorted(path.stem for path in FOLDER.glob("*.yaml"))


def all_settings() -> dict[str, Setting]:
    """Every setting of a dataset's config by name: the dataset's, each registered method's,
    the degradation's."""
    from blurgen.pipeline import DATASET_SETTINGS

    every = [*DATASET_SETTINGS, *(s for m in registry.methods() for s in m.settings),
             *DEGRADATION_SETTINGS]  # fmt: skip
    return {setting.name: setting for setting in every}


def path_of(name_or_path: str | os.PathLike) -> Path:
    """The file of a shipped preset's name, or a path as it is.

    Raises:
        ValueError: neither a preset's name nor an existing file (the message names it and
            the presets).
    """
    if str(name_or_path) in names():
        return FOLDER / f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise ValueError(f"no preset {str(name_or_path)!r}: not a file, nor one of "
                     f"{', '.join([*names(), NONE])}")  # fmt: skip


def read_mapping(path: str | os.PathLike) -> dict:
    """The mapping a YAML (``.yaml``, ``.yml``) or JSON file holds.

    Raises:
        ValueError: the file cannot be read or parsed, or holds no mapping (the message names
            it).
    """
    path = Path(path)
    try:
        text = path.read_text()
        yaml_file = path.suffix.lower() in (".yaml", ".yml")
        data = yaml.safe_load(text) if yaml_file else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read '{path}': {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"'{path}' must hold a mapping of setting names to values")
    return data


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The settings a YAML or JSON file holds, by setting name (``per-image`` read as
    ``per_image``, an off switch ``no_flips: true`` as ``flips: false``), values as written.

    Raises:
        ValueError: the file cannot be read, is not a mapping, or has a key that is no
            setting or one set twice (the message names the file and the key).
    """
    path = Path(path)
    data = read_mapping(path)
    settings = all_settings()
    offs = {s.off_name: s for s in settings.values() if s.kind == "switch"}
    values: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key).replace("-", "_")
        if key in offs:
            if not isinstance(value, bool):
                raise ValueError(f"'{path}': {key} must be true or false, got {value!r}")
            key, value = offs[key].name, not value
        elif key not in settings:
            raise ValueError(f"'{path}' has an unknown setting: {key}")
        if key in values:
            raise ValueError(f"'{path}' sets {key} twice")
        values[key] = value
    return values


def config_from_settings(values: Mapping[str, Any]) -> Any:
    """The :class:`~blurgen.pipeline.DatasetConfig` of settings as flags or files give them
    (by name; missing or None: the setting's default). ``mix`` draws the methods when given,
    ``blur`` otherwise.

    Raises:
        ValueError: a value cannot be read or is out of range (the message names the flag).
    """
    from blurgen.pipeline import DATASET_SETTINGS, DatasetConfig

    every = all_settings()
    given = {name: value for name, value in values.items() if value is not None}
    unknown = sorted(set(given) - set(every))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    typed = parsed(tuple(every.values()),
                   {s.name: given.get(s.name, s.default) for s in every.values()})  # fmt: skip
    dataset = {s.name: typed[s.name] for s in DATASET_SETTINGS}
    dataset["mix"] = parse_mix(dataset["mix"])
    return DatasetConfig(**dataset, **sections(typed),
                         degradation=Degradation.from_settings(typed))  # fmt: skip


def sections(typed: Mapping[str, Any]) -> dict[str, Any]:
    """Each registered method's config section from its settings' parsed values."""
    return {
        method.section: method.section_from_settings({s.name: typed.get(s.name)
                                                      for s in method.settings})
        for method in registry.methods() if method.section
    }  # fmt: skip


def parse_mix(text: str | None) -> tuple[tuple[str, float], ...]:
    """``METHOD=W,...`` as ``((method, weight), ...)``; () for None or empty."""
    if not text:
        return ()
    pairs = []
    for part in str(text).split(","):
        method, _, weight = part.partition("=")
        try:
            pairs.append((method.strip(), float(weight)))
        except ValueError:
            raise ValueError(f"--mix: expected METHOD=WEIGHT, got {part!r}") from None
    return tuple(pairs)


def load(name_or_path: str | os.PathLike, **settings: Any) -> Any:
    """The config of a shipped preset (by name), of ``"none"`` (the plain defaults), or of a
    YAML or JSON file of settings; ``settings`` (by name, as flags take them: ``patch=128``,
    ``blur="camera"``, ``read="0,0.01"``) override the file's, as flags override a preset
    (``blur`` replaces the file's ``mix``).

    Returns:
        A :class:`~blurgen.pipeline.DatasetConfig`.

    Raises:
        ValueError: an unknown name, an unreadable file, an unknown setting, a bad value, or
            ``blur`` and ``mix`` both set at one level (the message says which).
    """
    name = str(name_or_path)
    path = None if name == NONE else path_of(name_or_path)
    where = f"preset {name}" if path is None or name in names() else f"'{path}'"
    values = {} if path is None else read(path)
    for level, given in ((where, values), ("the settings given", settings)):
        if given.get("blur") is not None and given.get("mix") is not None:
            raise ValueError(f"{level} sets both blur and mix: give one")
    if settings.get("blur") is not None:
        values.pop("mix", None)
    try:
        return config_from_settings({**values, **settings})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
