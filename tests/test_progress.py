"""Progress where stderr is not a terminal: a line a while, none with --quiet."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from blurgen.cli import options
from blurgen.cli.main import cli


@pytest.mark.parametrize(("every", "quiet", "shows"), [(0.0, False, True), (1e9, False, False),
                                                       (0.0, True, False)])  # fmt: skip
def test_progress_lines_off_a_terminal(tmp_path, monkeypatch, every, quiet, shows):
    monkeypatch.setattr(options, "PROGRESS_EVERY", every)
    args = ["kernels", "-n", "4", "--size", "15", "-o", str(tmp_path / "bank.h5")]
    result = CliRunner().invoke(cli, args + (["-q"] if quiet else []))
    assert result.exit_code == 0, result.output
    shown = re.findall(r"^kernels: (\d+)/4 \((\d+) %\) in \d+ s", result.output, re.M)
    assert bool(shown) == shows
    if shows:
        assert shown[-1] == ("4", "100")
