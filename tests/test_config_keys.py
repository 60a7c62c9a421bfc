"""Every setting of a ``--config`` file acts exactly as its flag does."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import blurgen
from blurgen.cli import dataset
from blurgen.cli.main import cli

# name: cases of (command-line arguments, the same as --config settings). Each case runs
# both ways on the default preset; what the command then does must be the same.
CASES: dict[str, list[tuple[list[str], dict]]] = {
    "sources": [(["{image}", "{image2}"], {"sources": ["{image}", "{image2}"]})],
    "output": [(["-o", "{out}"], {"output": "{out}"})],
    "patch": [(["--patch", "64"], {"patch": 64})],
    "per_image": [(["--per-image", "2"], {"per_image": 2}), (["--per-image", "2"],
                                                             {"per-image": 2})],
    "kernel_size": [(["--kernel-size", "15"], {"kernel_size": 15})],
    "blur": [(["--blur", "camera"], {"blur": "camera"}),
             (["--blur", "linear"], {"blur": "linear"})],
    "bgan": [(["--bgan", "builtin:lai2016"], {"bgan": "builtin:lai2016"}),
             (["--blur", "bgan", "--bgan", "builtin:lai2016"],
              {"blur": "bgan", "bgan": "builtin:lai2016"})],
    "mix": [(["--mix", "motion=1,camera=1"], {"mix": "motion=1,camera=1"}),
            (["--mix", "motion=1", "--blur", "camera"], {"mix": "motion=1", "blur": "camera"})],
    "flips": [(["--no-flips"], {"flips": False}), (["--no-flips"], {"no_flips": True})],
    "limit": [(["--limit", "1"], {"limit": 1})],
    "strict": [(["--strict"], {"strict": True})],
    "iters": [(["--iters", "100"], {"iters": 100}),
              (["--iters", "100", "--blur", "camera"], {"iters": 100, "blur": "camera"})],
    "max_len": [(["--max-len", "20"], {"max_len": 20})],
    "expl": [(["--expl", "0.005"], {"expl": 0.005})],
    "fractions": [(["--fractions", "0.5,1"], {"fractions": [0.5, 1]})],
    "camera_steps": [(["--camera-steps", "16"], {"camera_steps": 16}),
                     (["--camera-steps", "16", "--blur", "camera"],
                      {"camera_steps": 16, "blur": "camera"})],
    "camera_speeds": [(["--blur", "camera", "--camera-speeds", "1,0,0,0,0,0"],
                       {"blur": "camera", "camera_speeds": [1, 0, 0, 0, 0, 0]})],
    "camera_extent": [(["--blur", "camera", "--camera-extent", "0.1,0.2"],
                       {"blur": "camera", "camera_extent": [0.1, 0.2]})],
    "camera_focal": [(["--blur", "camera", "--camera-focal", "1"],
                      {"blur": "camera", "camera_focal": 1})],
    "rolling_shutter": [(["--blur", "camera", "--rolling-shutter", "0.5,1"],
                         {"blur": "camera", "rolling_shutter": [0.5, 1]}),
                        (["--rolling-shutter", "0.5"], {"rolling_shutter": 0.5})],
    "seed": [(["--seed", "7"], {"seed": 7})],
    "device": [(["--device", "cuda"], {"device": "cuda"})],
    "workers": [(["--workers", "1"], {"workers": 1})],
    "executor": [(["--executor", "processes"], {"executor": "processes"}),
                 (["--executor", "processes", "--ray", "local"],
                  {"executor": "processes", "ray": "local"})],
    "space": [(["--space", "naive"], {"space": "naive"})],
    "gamma": [(["--gamma", "2"], {"gamma": 2})],
    "tone_curve": [(["--space", "curve", "--tone-curve", "0,0.6,1"],
                    {"space": "curve", "tone_curve": [0, 0.6, 1]}),
                   (["--tone-curve", "0,0.6,1"], {"tone_curve": "0,0.6,1"})],
    "boundary": [(["--boundary", "reflect"], {"boundary": "reflect"})],
    "saturate": [(["--no-saturate"], {"saturate": False})],
    "highlight_boost": [(["--highlight-boost", "1,2"], {"highlight_boost": [1, 2]})],
    "shot": [(["--shot", "0,0.01"], {"shot": [0, 0.01]})],
    "read": [(["--read", "0.01"], {"read": 0.01})],
    "quantise": [(["--no-quantise"], {"quantise": False})],
    "jpeg": [(["--jpeg", "50,90"], {"jpeg": [50, 90]})],
    "isp": [(["--isp"], {"isp": True}), (["--no-isp"], {"no_isp": True})],
    "isp_matrix": [(["--isp", "--isp-matrix", "1,0,0,0,1,0,0,0,1"],
                    {"isp": True, "isp_matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1]}),
                   (["--isp-matrix", "1,0,0,0,1,0,0,0,1"], {"isp_matrix": "1,0,0,0,1,0,0,0,1"})],
    "isp_red_gain": [(["--isp", "--isp-red-gain", "2"], {"isp": True, "isp_red_gain": 2})],
    "isp_blue_gain": [(["--isp", "--isp-blue-gain", "1.5,1.6"],
                       {"isp": True, "isp_blue_gain": [1.5, 1.6]})],
    "isp_demosaic": [(["--isp", "--isp-demosaic", "vng"], {"isp": True, "isp_demosaic": "vng"})],
    "sharpen": [(["--isp", "--sharpen", "0.5,1"], {"isp": True, "sharpen": [0.5, 1]})],
    "sharpen_radius": [(["--isp", "--sharpen", "1", "--sharpen-radius", "2"],
                        {"isp": True, "sharpen": 1, "sharpen_radius": 2})],
    "resume": [(["--overwrite"], {"resume": False}), (["--overwrite"], {"overwrite": True})],
    "ray_address": [(["--ray", "local"], {"ray": "local"})],
    "shard_pairs": [(["--ray", "local", "--shard-pairs", "4"], {"ray": "local", "shard_pairs": 4})],
    "consolidate": [(["--consolidate"], {"consolidate": True}),
                    (["--ray", "local", "--consolidate"], {"ray": "local", "consolidate": True})],
    "dry_run": [(["--dry-run"], {"dry_run": True}),
                (["--dry-run", "--json"], {"dry_run": True, "json": True})],
    "as_json": [(["--json"], {"json": True})],
    "frame_dirs": [(["--frames-dir", "{frames}"], {"frames_dir": ["{frames}"]}),
                   (["--frames-dir", "{frames}", "--frames-dir", "{frames}"],
                    {"frames_dir": ["{frames}", "{frames}"]})],
    "frames": [(["--frames", "5"], {"frames": 5}),
               (["--frames-dir", "{frames}", "--frames", "3,5"],
                {"frames_dir": ["{frames}"], "frames": [3, 5]})],
    "interpolate": [(["--frames-dir", "{frames}", "--interpolate", "2"],
                     {"frames_dir": ["{frames}"], "interpolate": 2})],
    "max_motion": [(["--frames-dir", "{frames}", "--max-motion", "2.5"],
                    {"frames_dir": ["{frames}"], "max_motion": 2.5})],
    "verbose": [(["-v"], {"verbose": True})],
    "quiet": [(["-q"], {"quiet": True})],
}  # fmt: skip


@pytest.fixture
def images(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    names = {}
    for key in ("image", "image2"):
        path = tmp_path / f"{key}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (400, 420, 3), dtype=np.uint8))
        names[key] = str(path)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), rng.integers(0, 256, (400, 420, 3), dtype=np.uint8))
    return {**names, "frames": str(frames), "out": str(tmp_path / "pairs.h5")}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """The runs make-dataset starts, recorded instead of done."""
    made: list = []

    def record(kind: str):
        def run(paths, output, config, seed, *, learned=None, progress=None, **options):
            learned = None if learned is None else learned.__getstate__()
            made.append((kind, [str(p) for p in paths], str(output), config, seed, learned,
                         options))  # fmt: skip
            Path(output).write_bytes(b"")
            return {"pairs": 0, "kept": 0, "skipped": [], "shards": 0, "reused": 0}

        return run

    monkeypatch.setattr(dataset, "make_dataset", record("local"))
    monkeypatch.setattr(dataset, "make_dataset_ray", record("ray"))
    ticks = iter(range(1000))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    return made


def _run(args: list[str], values: dict, calls: list) -> tuple:
    calls.clear()
    result = CliRunner().invoke(cli, ["make-dataset", *args])
    # A message names a setting as the user gave it: "--camera-steps", or "camera_steps (in
    # --config)", and a bad value the file it came from; read as the flag, the two runs must
    # say the same.
    flagged = re.sub(r"(\w+) \(in --config\)", lambda m: "--" + m[1].replace("_", "-"),
                     result.output)  # fmt: skip
    flagged = re.sub(r" \(set in '[^']*'\)", "", flagged)
    return result.exit_code, flagged, list(calls)


def _fill(item, values: dict):
    if isinstance(item, str):
        return item.format(**values)
    if isinstance(item, list):
        return [_fill(part, values) for part in item]
    if isinstance(item, dict):
        return {key: _fill(part, values) for key, part in item.items()}
    return item


def test_every_option_has_a_case():
    options = {p.name for p in dataset.make_dataset_command.params} - {"config", "preset", "help"}
    assert options == set(CASES), "give each make-dataset option a case in CASES"


@pytest.mark.parametrize(
    ("args", "settings"),
    [case for cases in CASES.values() for case in cases],
    ids=[f"{name}-{i}" for name, cases in CASES.items() for i in range(len(cases))],
)
def test_a_config_setting_acts_as_its_flag(tmp_path, images, calls, args, settings):
    args, settings = _fill(args, images), _fill(settings, images)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    needs = [] if "sources" in settings else [images["image"]]
    needs += [] if "output" in settings else ["-o", images["out"]]
    by_flag = _run([*needs, *args], images, calls)
    by_file = _run([*needs, "--config", str(config)], images, calls)
    assert by_flag == by_file
    # A written YAML key may be spelt as its flag, with dashes: the same again.
    config.write_text(yaml.safe_dump({k.replace("_", "-"): v for k, v in settings.items()}))
    assert _run([*needs, "--config", str(config)], images, calls) == by_flag


def test_blur_in_a_config_file_replaces_the_presets_mix(tmp_path, images, calls):
    config = tmp_path / "config.yaml"
    config.write_text("blur: camera\ncamera_steps: 16\n")
    code, output, made = _run([images["image"], "-o", images["out"], "--config", str(config)],
                              images, calls)  # fmt: skip
    assert code == 0, output
    used = made[0][3]
    assert used.methods() == ["camera"]
    assert used.camera.steps == 16
    recorded = used.to_dict()
    assert recorded["blur"] == "camera" and recorded["mix"] == []


def test_a_mix_records_no_unused_blur(images, calls):
    code, output, made = _run([images["image"], "-o", images["out"]], images, calls)
    assert code == 0, output
    recorded = made[0][3].to_dict()
    assert "blur" not in recorded and [m for m, _ in recorded["mix"]] == ["motion", "linear"]


@pytest.mark.parametrize("place", ["flag", "config"])
def test_a_bgan_checkpoint_without_learned_blur_is_an_error(tmp_path, images, calls, place):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(100))
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"bgan": str(junk)}))
    given = ["--bgan", str(junk)] if place == "flag" else ["--config", str(config)]
    code, output, made = _run([images["image"], "-o", images["out"], *given], images, calls)
    assert code == 2 and not made
    assert "--bgan only applies to learned blur (--blur bgan or a --mix that draws it)" in output


def test_blur_and_mix_at_the_same_level_are_an_error(images, calls):
    code, output, made = _run([images["image"], "-o", images["out"], "--blur", "camera",
                               "--mix", "motion=1"], images, calls)  # fmt: skip
    assert code == 2 and not made
    assert "both set the blur methods: give one" in output


def test_unknown_and_twice_given_settings_are_named(tmp_path, images, calls):
    config = tmp_path / "config.yaml"
    for text, message in (("pach: 64\n", "unknown setting: pach"),
                          ("per_image: 2\nper-image: 3\n", "sets per_image twice"),
                          ("no_flips: 1\n", "no_flips must be true or false")):  # fmt: skip
        config.write_text(text)
        code, output, _ = _run([images["image"], "-o", images["out"], "--config", str(config)],
                               images, calls)  # fmt: skip
        assert code == 2 and message in output, output


class _Started(Exception):
    """What a training command would have started, raised instead of training."""


def _value(param, folder: Path, data: Path):
    """A value for a training option other than its default, as a flag and as a setting."""
    import click

    # click marks an option without a default by a sentinel of its own.
    default = param.default if isinstance(param.default, (bool, int, float, str)) else None
    if param.is_flag:
        return not default
    kind = param.type
    if isinstance(kind, click.Choice):
        return next(choice for choice in kind.choices if choice != default)
    if isinstance(kind, click.Path):
        path = str(data) if kind.dir_okay is False else str(folder)
        return [path] if param.multiple else path
    if isinstance(kind, click.types.IntParamType):
        return (default or getattr(kind, "min", None) or 1) + 1
    if isinstance(kind, click.types.FloatParamType):
        return (default or 0) + 0.25
    return "other"


@pytest.mark.parametrize("command", ["train-bgan", "train-deblur"])
def test_a_training_setting_acts_as_its_flag(tmp_path, monkeypatch, command):
    from blurgen.bgan import train, train_deblur

    def start(config, run, **options):
        raise _Started(config, str(run), options)

    monkeypatch.setattr(train, "BganTrainer", start)
    monkeypatch.setattr(train_deblur, "DeblurTrainer", start)
    folder, data = tmp_path / "photos", tmp_path / "pairs.h5"
    folder.mkdir()
    data.write_bytes(b"")
    required = {"train-bgan": ["--sharp", str(folder), "--blurry", str(folder)],
                "train-deblur": ["--data", str(data)]}[command]  # fmt: skip
    base = [command, *required, "-o", str(tmp_path / "run")]

    def run(args: list[str]) -> tuple:
        result = CliRunner().invoke(cli, [*base, *args])
        exc = result.exception
        return result.exit_code, result.output, exc.args if isinstance(exc, _Started) else repr(exc)

    params = cli.get_command(None, command).params
    # Verbosity reaches no trainer: test_progress has it.
    names = [p.name for p in params if p.name not in ("config", "help", "sharp", "blurry", "data",
                                                      "run", "verbose", "quiet")]  # fmt: skip
    assert len(names) > 20
    config = tmp_path / "config.yaml"
    for param in params:
        if param.name not in names:
            continue
        value = _value(param, folder, data)
        flag = max(param.opts, key=len)
        if param.is_flag:
            args = [flag if value else param.secondary_opts[0]] if param.secondary_opts else [flag]
        else:
            args = [part for v in (value if isinstance(value, list) else [value])
                    for part in (flag, str(v))]  # fmt: skip
        config.write_text(yaml.safe_dump({param.name: value}))
        by_flag, by_file = run(args), run(["--config", str(config)])
        assert by_flag == by_file, param.name
        assert by_flag[0] != 0 or isinstance(by_flag[2], tuple), (param.name, by_flag)


def test_settings_of_a_method_the_command_line_replaces_are_not_errors(tmp_path, images, calls):
    # A calibrated preset holds the kernel model; typing another blur leaves it unused.
    preset = Path(blurgen.__file__).parent / "presets" / "camera-shake.yaml"
    code, output, made = _run([images["image"], "-o", images["out"], "--config", str(preset),
                               "--blur", "camera"], images, calls)  # fmt: skip
    assert code == 0, output
    assert made[0][3].methods() == ["camera"]
    config = tmp_path / "config.yaml"
    config.write_text("blur: camera\nmax_len: 20\n")
    result = CliRunner().invoke(cli, ["make-dataset", images["image"], "-o", images["out"],
                                      "--config", str(config)])  # fmt: skip
    assert result.exit_code == 2
    assert "max_len (in --config) only applies to motion blur" in result.output


def test_null_settings(tmp_path, images, calls):
    config = tmp_path / "config.yaml"
    for text, message in (("per_image: null\n", "per_image cannot be null"),
                          ("flips: null\n", "flips cannot be null")):  # fmt: skip
        config.write_text(text)
        code, output, _ = _run([images["image"], "-o", images["out"], "--config", str(config)],
                               images, calls)  # fmt: skip
        assert code == 2 and message in output, output
    # An option without a default is unset by null, as a calibrated preset unsets the mix.
    config.write_text("mix: null\njpeg: null\n")
    code, output, made = _run([images["image"], "-o", images["out"], "--config", str(config)],
                              images, calls)  # fmt: skip
    assert code == 0, output
    assert made[0][3].mix == () and made[0][3].degradation.jpeg_quality is None


def test_one_value_for_a_repeatable_setting(tmp_path, monkeypatch):
    from blurgen.bgan import train_deblur

    def start(config, run, **options):
        raise _Started(config)

    monkeypatch.setattr(train_deblur, "DeblurTrainer", start)
    data = tmp_path / "pairs.h5"
    data.write_bytes(b"")
    config = tmp_path / "config.yaml"
    config.write_text(f"data: {data}\n")
    result = CliRunner().invoke(cli, ["train-deblur", "--config", str(config), "-o",
                                      str(tmp_path / "run")])  # fmt: skip
    assert isinstance(result.exception, _Started), result.output
    assert result.exception.args[0].data == (str(data),)
