"""Options and behaviour shared by every command: seeds, devices, verbosity, errors, progress."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import yaml
from click.core import ParameterSource

import blurgen
from blurgen.backend import DEVICES, BackendUnavailable
from blurgen.cluster import ClusterError
from blurgen.degradation import SPACES, Degradation
from blurgen.forward import BOUNDARIES

seed_option = click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Root seed. The same seed and options give identical output.",
)


def _device_option(help: str) -> Callable:
    return click.option(
        "--device", type=click.Choice(DEVICES), default="cpu", show_default=True, help=help
    )


device_option = _device_option(
    "Where to compute: cpu (NumPy) or cuda (CuPy, needs cupy-cuda12x or -cuda13x and a GPU)."
)
torch_device_option = _device_option(
    "Where the network runs: cpu, or cuda (a CUDA build of PyTorch and a GPU)."
)

strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Stop at the first unusable image (unreadable, damaged, truncated, too small) "
    "instead of skipping it.",
)

real_option = click.option(
    "--real",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Real blurry photos: a folder, files or a .txt list (repeatable).",
)

overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output file (it stays untouched until the new one is complete).",
)


def default_workers() -> int:
    """Workers when not told: the cores this process may use, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=default_workers(),
    show_default=True,
    help="Workers on the CPU: processes, or threads for make-dataset (see its --executor). The "
    "output does not depend on it.",
)


def degradation_options(command: Callable) -> Callable:
    """The forward model's options, combined into one ``degradation`` argument."""
    options = [
        click.option(
            "--space",
            type=click.Choice(SPACES),
            default="srgb",
            show_default=True,
            help="Blur in linear light after inverting sRGB (physical), after a plain "
            "gamma, or on the encoded values (naive).",
        ),
        click.option(
            "--gamma",
            type=float,
            default=2.2,
            show_default=True,
            help="Exponent for --space gamma.",
        ),
        click.option(
            "--boundary",
            type=click.Choice(BOUNDARIES),
            default="valid",
            show_default=True,
            help="valid: only pixels whose whole neighbourhood "
            "is inside (output smaller by K-1); reflect/wrap keep the size.",
        ),
        click.option(
            "--saturate/--no-saturate",
            default=True,
            show_default=True,
            help="Clip at 1 after blurring, as a sensor saturates.",
        ),
        click.option(
            "--highlight-boost",
            metavar="LOW,HIGH",
            help="Scale pixels saturated in the sharp image by a factor drawn from "
            "this range before blurring (light streaks).",
        ),
        click.option(
            "--shot",
            metavar="LOW,HIGH",
            default="0,0",
            show_default=True,
            help="Shot-noise gain range (Poisson, linear light).",
        ),
        click.option(
            "--read",
            metavar="LOW,HIGH",
            default="0,0",
            show_default=True,
            help="Read-noise standard deviation range (Gaussian).",
        ),
        click.option(
            "--quantise/--no-quantise",
            default=True,
            show_default=True,
            help="Round the result to 8 bits.",
        ),
        click.option("--jpeg", metavar="LOW,HIGH", help="JPEG quality range (1-100)."),
    ]
    for option in reversed(options):
        command = option(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in
                  ("space", "gamma", "boundary", "saturate", "highlight_boost", "shot", "read",
                   "quantise", "jpeg")}  # fmt: skip
        try:
            degradation = _degradation(values)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return command(*args, degradation=degradation, **kwargs)

    return wrapper


# The options of motion_options and camera_options, which only their methods use.
MOTION_OPTIONS = ("iters", "max_len", "expl", "fractions")
CAMERA_OPTIONS = ("camera_steps", "camera_speeds", "camera_extent", "camera_focal")


def motion_options(command: Callable) -> Callable:
    """The camera-shake model's options, combined into one ``motion`` argument: a dict of the
    :class:`~blurgen.kernels.MotionModel` fields that were given (the rest keep defaults)."""
    options = [
        click.option("--iters", type=click.IntRange(min=2), help="motion: points per trajectory "
                     "[2000]."),
        click.option("--max-len", type=float, help="motion: path length of the whole exposure in "
                     "px [60/64 of the kernel size]."),
        click.option("--expl", help="motion: explosiveness values, one drawn per kernel "
                     "[0.003,0.005,0.007,0.008,0.009,0.01]."),
        click.option("--fractions", help="motion: exposure fractions, one drawn per kernel "
                     "[0.1,0.5,1]; 1 alone gives every kernel the full path length."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        motion = {
            "iters": kwargs.pop("iters"),
            "max_len": kwargs.pop("max_len"),
            "expl": parse_floats(kwargs.pop("expl"), "--expl"),
            "fractions": parse_floats(kwargs.pop("fractions"), "--fractions"),
        }
        given = {name: value for name, value in motion.items() if value is not None}
        return command(*args, motion=given, **kwargs)

    return wrapper


def camera_options(command: Callable) -> Callable:
    """The 6-DoF camera-shake model's options, combined into one ``camera`` argument: a
    :class:`~blurgen.kernels.camera.CameraModel` of the given fields (the rest keep defaults).
    Their names are :data:`CAMERA_OPTIONS`."""
    options = [
        click.option("--camera-steps", type=click.IntRange(min=2), help="camera: recorded poses "
                     "over the exposure [32]."),
        click.option("--camera-speeds", metavar="P,Y,R,X,Y,Z", help="camera: relative speeds of "
                     "pitch, yaw, roll (radians) and x, y, z translation (depths) "
                     "[1,1,1,0.2,0.2,0.05]."),
        click.option("--camera-extent", metavar="LOW,HIGH", help="camera: the largest motion of "
                     "a pixel, as fractions of the kernel's reach (K // 2 - 1 px) [0.05,0.5]."),
        click.option("--camera-focal", metavar="LOW,HIGH", help="camera: focal length in units "
                     "of the photo's longer side [0.7,2]."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from blurgen.kernels.camera import CameraModel

        values = {
            "steps": kwargs.pop("camera_steps"),
            "speeds": parse_floats(kwargs.pop("camera_speeds"), "--camera-speeds"),
            "extent": parse_pair(kwargs.pop("camera_extent"), "--camera-extent"),
            "focal": parse_pair(kwargs.pop("camera_focal"), "--camera-focal"),
        }
        given = {name: value for name, value in values.items() if value is not None}
        try:
            camera = CameraModel(**given)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return command(*args, camera=camera, **kwargs)

    return wrapper


def _degradation(values: dict) -> Degradation:
    return Degradation(
        space=values["space"],
        gamma=values["gamma"],
        boundary=values["boundary"],
        saturate=values["saturate"],
        highlight_boost=parse_pair(values["highlight_boost"], "--highlight-boost"),
        shot=parse_pair(values["shot"], "--shot"),
        read=parse_pair(values["read"], "--read"),
        quantise=values["quantise"],
        jpeg_quality=parse_pair(values["jpeg"], "--jpeg"),
    )


def parse_pair(text: str | None, name: str) -> tuple[float, float] | None:
    """``LOW,HIGH`` (or a single value for both) from the command line, or None."""
    value = parse_range(text, name)
    if value is None or isinstance(value, tuple):
        return value
    return (value, value)


# ctx.meta key: the name of each option whose default a preset or a --config file set, and which
# of the two set it (a config file's values are the user's own, as flags are; a preset's are not).
LAYERS = "blurgen.layers"


def _settings(ctx: click.Context, param: click.Parameter, path: Path) -> dict:
    """The option values a YAML or JSON file holds, by option name, checked against the
    command's options. Keys are the options' names or their long flags (``per_image``,
    ``per-image``, ``json``); an off switch (``no_flips: true``, ``overwrite: true``) sets its
    option to the opposite value, as the flag does."""
    try:
        text = Path(path).read_text()
        data = (
            yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read '{path}': {exc}", param=param) from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"'{path}' must hold a mapping of option names to values")
    params = {p.name: p for p in ctx.command.params if p.name not in ("config", "preset")}
    names: dict[str, tuple[str, bool]] = {}  # key -> (option name, an off switch)
    for name, p in params.items():
        names[name] = (name, False)
        for flags, off in ((p.opts, False), (p.secondary_opts, True)):
            for flag in flags:
                if flag.startswith("--"):
                    names[flag[2:].replace("-", "_")] = (name, off and p.is_flag)
    settings: dict[str, Any] = {}
    for key, item in data.items():
        key = str(key).replace("-", "_")
        if key not in names:
            raise click.BadParameter(f"'{path}' has an unknown setting: {key}")
        name, off = names[key]
        if name in settings:
            raise click.BadParameter(f"'{path}' sets {name} twice")
        param = params[name]
        if off:
            if not isinstance(item, bool):
                raise click.BadParameter(f"'{path}': {key} must be true or false, got {item!r}")
            item = not item
        # null unsets an option that has no default (as a calibrated preset unsets mix); an
        # option with a default has no unset state on the command line either.
        if item is None and _has_default(param):
            raise click.BadParameter(f"'{path}': {key} cannot be null")
        # Ranges may be written as lists; the flags take them as LOW,HIGH. Options that take
        # several values (repeatable options, SOURCES) take lists, or one value alone.
        if _takes_many(param):
            item = item if isinstance(item, list) or item is None else [item]
        elif isinstance(item, list):
            item = ",".join(str(v) for v in item)
        settings[name] = item
    return settings


def _takes_many(param: click.Parameter) -> bool:
    return getattr(param, "multiple", False) or param.nargs != 1


def _has_default(param: click.Parameter) -> bool:
    # click marks an option given no default by a sentinel of its own, not None.
    return isinstance(param.default, (bool, int, float, str, tuple)) and param.default != ()


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Make a YAML or JSON file's settings the defaults, so that flags still override them."""
    if value is not None:
        settings = _settings(ctx, param, value)
        ctx.default_map = {**(ctx.default_map or {}), **settings}
        ctx.meta.setdefault(LAYERS, {}).update(dict.fromkeys(settings, "config"))


def _load_preset(ctx: click.Context, param: click.Parameter, value: str) -> None:
    """Make a shipped preset's settings the defaults, below --config's and the flags'."""
    if value != "none":
        path = PRESETS / f"{value}.yaml"
        settings = _settings(ctx, param, path)
        ctx.default_map = {**settings, **(ctx.default_map or {})}
        layers = ctx.meta.setdefault(LAYERS, {})
        for name in settings:
            layers.setdefault(name, "preset")


def setting_layer(name: str) -> int:
    """Where the current command's option ``name`` got its value: 2 from the command line, 1
    from a --config file, 0 from a preset or its default. A config file's value acts exactly
    as its flag does (a preset's is a default)."""
    ctx = click.get_current_context()
    source = ctx.get_parameter_source(name)
    if source == ParameterSource.COMMANDLINE:
        return 2
    if source == ParameterSource.DEFAULT_MAP and ctx.meta.get(LAYERS, {}).get(name) == "config":
        return 1
    return 0


def set_by_user(names: Iterable[str], level: int = 1) -> list[str]:
    """Those of the current command's options ``names`` that the user gave a value at
    ``level`` (see :func:`setting_layer`) or above, as the user wrote them: ``--flag``, or
    ``key (in --config)``."""
    values = click.get_current_context().params
    given = [n for n in names if setting_layer(n) >= max(1, level) and values.get(n) is not None]
    return [f"--{n.replace('_', '-')}" if setting_layer(n) == 2 else f"{n} (in --config)"
            for n in given]  # fmt: skip


PRESETS = Path(blurgen.__file__).resolve().parent / "presets"
PRESET_NAMES = sorted(p.stem for p in PRESETS.glob("*.yaml"))

preset_option = click.option(
    "--preset",
    type=click.Choice([*PRESET_NAMES, "none"]),
    default="camera-shake",
    show_default=True,
    is_eager=True,
    expose_value=False,
    callback=_load_preset,
    help="Shipped settings of the kernel model and the degradation: camera-shake (fitted to "
    "real camera-shake photos), deblurgan (DeblurGAN's blur, for comparisons) or none "
    "(blurgen's plain defaults). --config and flags override it.",
)

config_option = click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="YAML or JSON file of option values, named as the flags (per_image: 16, json: true, "
    "no_flips: true); each acts exactly as its flag does, and flags given on the command line "
    "override it.",
)


def verbosity_option(command: Callable) -> Callable:
    """``-v/--verbose`` and ``-q/--quiet``, combined into one ``verbosity`` argument (0 quiet)."""
    command = click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")(command)
    command = click.option("-v", "--verbose", is_flag=True, help="Print more detail.")(command)

    @functools.wraps(command)
    def wrapper(*args: Any, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
        return command(*args, verbosity=0 if quiet else 2 if verbose else 1, **kwargs)

    return wrapper


def user_errors(command: Callable) -> Callable:
    """Turn the errors a user can act on into one line and a non-zero exit, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, OSError, BackendUnavailable, ClusterError) as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt as exc:
            click.echo(f"interrupted{': ' + str(exc) if str(exc) else ''}", err=True)
            sys.exit(130)

    return wrapper


# Seconds between progress lines when stderr is not a terminal (a log file, a batch job's
# output): a bar's redraws would fill it, silence would look like a hang.
PROGRESS_EVERY = 60.0


@contextlib.contextmanager
def progress_bar(total: int, label: str, verbosity: int) -> Iterator[Callable[[int], None]]:
    """Progress on stderr, unless ``--quiet``: a bar on a terminal; elsewhere a line every
    PROGRESS_EVERY seconds (``label: done/total (percent), elapsed, left``), and a last one
    at the end of work that took longer than that.

    Yields a function to call with the number of items just finished.
    """
    if verbosity == 0:
        yield lambda count: None
        return
    if sys.stderr.isatty():
        with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
            yield bar.update
        return
    began = time.monotonic()
    state = {"done": 0, "shown": began}

    def line(now: float) -> None:
        done, elapsed = state["done"], now - began
        left = f", about {elapsed * (total - done) / done:.0f} s left" if 0 < done < total else ""
        share = f" ({100 * done / total:.0f} %)" if total else ""
        click.echo(f"{label}: {done}/{total}{share} in {elapsed:.0f} s{left}", err=True)
        state["shown"] = now

    def advance(count: int) -> None:
        state["done"] += count
        now = time.monotonic()
        if now - state["shown"] >= PROGRESS_EVERY:
            line(now)

    yield advance
    if state["done"] and time.monotonic() - began >= PROGRESS_EVERY:
        line(time.monotonic())


def parse_floats(text: str | None, name: str) -> tuple[float, ...] | None:
    """A comma-separated list of numbers from the command line, or None when not given."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint=name
        ) from None


def parse_range(text: str | None, name: str) -> float | tuple[float, float] | None:
    """``A`` (a fixed value) or ``A,B`` (a range) from the command line."""
    values = parse_floats(text, name)
    if values is None:
        return None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values
    raise click.BadParameter(f"expected a number or LOW,HIGH, got {text!r}", param_hint=name)
