"""Presets as data: blurgen.presets.load gives the configs the command line builds, without
click, and says which file or setting is wrong."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from blurgen import presets
from blurgen.cli.main import cli
from blurgen.pipeline import DatasetConfig


def command_config(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["make-dataset", "-o", "x.h5", "--dry-run", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["config"]


def as_json(config: DatasetConfig) -> dict:
    return json.loads(json.dumps(config.to_dict()))


@pytest.mark.parametrize("name", [*presets.names(), "none"])
def test_a_preset_is_what_make_dataset_builds_from_it(name):
    assert as_json(presets.load(name)) == command_config("--preset", name)


def test_settings_override_the_file_as_flags_do(tmp_path):
    config = presets.load("camera-shake", patch=64, blur="camera", read="0,0.01")
    assert as_json(config) == command_config("--patch", "64", "--blur", "camera", "--read",
                                              "0,0.01")  # fmt: skip
    assert presets.load("none") == DatasetConfig()
    mine = tmp_path / "mine.yaml"
    mine.write_text("per-image: 3\nno_flips: true\nmix: motion=1,camera=1\ncamera_steps: 8\n")
    config = presets.load(mine)
    assert config.per_image == 3 and not config.flips and config.camera.steps == 8
    assert as_json(config) == command_config("--preset", "none", "--config", str(mine))


def test_errors_name_the_file_and_the_setting(tmp_path):
    with pytest.raises(ValueError, match="no preset 'camera': not a file, nor one of camera-shake"):
        presets.load("camera")
    bad = tmp_path / "bad.yaml"
    for text, message in (("pach: 3\n", "'.*bad.yaml' has an unknown setting: pach"),
                          ("blur: motion\nmix: motion=1\n", "sets both blur and mix"),
                          ("patch: 2\n", "'.*bad.yaml': --patch: 2 is smaller than the minimum 8"),
                          ("fractions: [a]\n", "--fractions: expected comma-separated numbers"),
                          ("- 1\n", "must hold a mapping"),
                          ("no_flips: 1\n", "no_flips must be true or false")):  # fmt: skip
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            presets.load(bad)
    with pytest.raises(ValueError, match="mix: expected METHOD=WEIGHT"):
        presets.load("none", mix="motion")


def test_every_preset_is_named_in_the_help():
    help_text = " ".join(CliRunner().invoke(cli, ["make-dataset", "--help"]).output.split())
    for name in [*presets.names(), "none"]:
        assert f"{name} ({' '.join(presets.SUMMARIES[name].split())})" in help_text


def test_a_bad_value_in_a_config_file_names_its_flag_and_the_file(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("isp: true\nisp_red_gain: 5,1\nshot: -1\n")
    # The file's value, the flag's (no file named), then the file's next bad value.
    curve = tmp_path / "curve.yaml"
    curve.write_text("space: curve\ntone_curve: [0, 0.5, 0.4, 1]\n")
    result = CliRunner().invoke(cli, ["make-dataset", "-o", str(tmp_path / "x.h5"),
                                      "--dry-run", "--config", str(curve)])  # fmt: skip
    assert re.search(r"--tone-curve must rise: its value 2 \(0.4\).*'.*curve.yaml'\)$",
                     result.output.strip()), result.output  # fmt: skip
    cases = (
        ([], r"--isp-red-gain must be a range .* \(set in '.*mine.yaml'\)$"),
        (["--isp-red-gain", "2,1"], r"--isp-red-gain must .*\(2.0, 1.0\)$"),
        (["--isp-red-gain", "2,3"], r"^Error: shot range .*'.*mine.yaml'\)$"),
    )
    for extra, wanted in cases:
        result = CliRunner().invoke(cli, ["make-dataset", "-o", str(tmp_path / "x.h5"),
                                          "--dry-run", "--config", str(bad), *extra])  # fmt: skip
        assert result.exit_code == 2
        assert re.search(wanted, result.output.strip().splitlines()[-1]), result.output
