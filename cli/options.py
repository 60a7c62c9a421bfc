"""Options and behaviour shared by every command: seeds, devices, verbosity, errors, progress."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from blurgen import methods as registry
from blurgen import presets
from blurgen.backend import DEVICES, BackendUnavailable
from blurgen.cluster import ClusterError
from blurgen.settings import Setting

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


def setting_option(setting: Setting, **changes: Any) -> Callable:
    """The click option of a setting (its flag, type, default and help), with ``changes`` to
    click's arguments."""
    args: dict[str, Any] = {"help": setting.help}
    flags = [setting.flag]
    if setting.kind == "switch":
        flags = [f"{setting.flag}/--{setting.off_name.replace('_', '-')}"]
        args["default"] = setting.default
    elif setting.kind == "int":
        args["type"] = click.IntRange(min=setting.minimum) if setting.minimum is not None else int
    elif setting.kind == "float":
        args["type"] = float
    elif setting.kind == "choice":
        args["type"] = click.Choice(setting.values)
    if setting.metavar or setting.kind == "floats":
        args["metavar"] = setting.metavar or "A,B,..."
    if setting.default is not None:
        args.update(default=setting.default, show_default=True)
    return click.option(*flags, setting.name, **{**args, **changes})


def settings_options(*settings: Setting, **changes: dict[str, Any]) -> Callable:
    """Options for ``settings``, whose values the command receives in one ``settings``
    argument (by name, as given: text, numbers, None when not given); ``changes`` maps a
    setting's name to changes to its option."""

    def decorate(command: Callable) -> Callable:
        for setting in reversed(settings):
            command = setting_option(setting, **changes.get(setting.name, {}))(command)

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {s.name: kwargs.pop(s.name) for s in settings}
            return command(*args, settings=values, **kwargs)

        return wrapper

    return decorate


def built(make: Callable[..., Any], *args: Any) -> Any:
    """``make(*args)``, a bad setting's ValueError as a usage error (exit status 2) that names
    the --config file where the setting it names came from there."""
    try:
        return make(*args)
    except ValueError as exc:
        message = str(exc)
        ctx = click.get_current_context(silent=True)
        path = ctx.meta.get(CONFIG_PATH) if ctx else None
        if path is not None and any(
            layer == "config" and setting_layer(name) == 1 and _mentions(message, name)
            for name, layer in ctx.meta.get(LAYERS, {}).items()
        ):
            message += f" (set in '{path}')"
        raise click.UsageError(message) from None


def _mentions(message: str, name: str) -> bool:
    """Whether an error message names option ``name``: its flag, or the name alone."""
    flag = re.escape("--" + name.replace("_", "-"))
    word = rf"(?<![\w-])({flag}|{re.escape(name)})(?![\w-])"
    return re.search(word, message) is not None


def learned_blur(config: Any, device: str) -> Any:
    """The learned blur that ``config``'s methods render with, loaded on ``device``, or
    None."""
    for method in config.blur_methods():
        if method.learned:
            return method.load(config, device)
    return None


def method_settings() -> tuple[Setting, ...]:
    """Every registered blur method's settings."""
    return tuple(s for method in registry.methods() for s in method.settings)


def blur_or_mix(blur_option: str, mix: Any) -> tuple[Any, int]:
    """The mix to use (None where --blur overrides it) and the level that chose the methods:
    --blur (option ``blur_option``) and --mix both say which methods make the blur, and the
    one set at the higher level (the command line over --config over the preset) decides."""
    blur_level, mix_level = setting_layer(blur_option), setting_layer("mix")
    if blur_level and blur_level == mix_level and mix:
        raise click.UsageError("--blur and --mix (or a --config file's blur and mix) both set "
                               "the blur methods: give one")  # fmt: skip
    return (None if blur_level > mix_level else mix), max(blur_level, mix_level)


def refuse_unused(methods: Iterable[str], level: int, hint: str) -> None:
    """Refuse the settings of blur methods left out of ``methods`` that the user gave at
    ``level`` or above (see :func:`set_by_user`): they would do nothing. ``hint`` says how to
    use a method, with ``{name}`` for its name."""
    for method in registry.methods():
        flags = set_by_user([s.name for s in method.settings], level)
        if flags and method.name not in methods:
            verb = "applies" if len(flags) == 1 else "apply"
            raise click.UsageError(f"{', '.join(flags)} only {verb} to {method.title} "
                                   f"({hint.format(name=method.name)})")  # fmt: skip


# ctx.meta key: the name of each option whose default a preset or a --config file set, and which
# of the two set it (a config file's values are the user's own, as flags are; a preset's are not).
LAYERS = "blurgen.layers"
# ctx.meta key: the --config file's path.
CONFIG_PATH = "blurgen.config"


def _settings(ctx: click.Context, param: click.Parameter, path: Path) -> dict:
    """The option values a YAML or JSON file holds, by option name, checked against the
    command's options. Keys are the options' names or their long flags (``per_image``,
    ``per-image``, ``json``); an off switch (``no_flips: true``, ``overwrite: true``) sets its
    option to the opposite value, as the flag does."""
    try:
        data = presets.read_mapping(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    params = {p.name: p for p in ctx.command.params if p.expose_value}
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
        ctx.meta[CONFIG_PATH] = value


def _load_preset(ctx: click.Context, param: click.Parameter, value: str) -> None:
    """Make a shipped preset's settings the defaults, below --config's and the flags'."""
    if value != presets.NONE:
        path = presets.path_of(value)
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


def preset_choice(default: str) -> Callable:
    """The --preset option, defaulting to the preset ``default``."""
    every = [*presets.names(), presets.NONE]
    return click.option(
        "--preset",
        type=click.Choice(every),
        default=default,
        show_default=True,
        is_eager=True,
        expose_value=False,
        callback=_load_preset,
        help="Shipped settings of the kernel model and the degradation: "
        + "; ".join(
            f"{name} ({presets.SUMMARIES[name]})" if name in presets.SUMMARIES else name
            for name in every
        )  # fmt: skip
        + ". --config and flags override it.",
    )


preset_option = preset_choice("camera-shake")

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
