"""The benchmark scripts still import: they call the package's internals, which move."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(path.stem for path in BENCH.glob("*.py") if path.stem != "common")


@pytest.mark.skipif(not SCRIPTS, reason="no bench folder beside the tests")
@pytest.mark.parametrize("name", SCRIPTS)
def test_bench_script_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their neighbour, common
    monkeypatch.setattr(sys, "argv", [name])
    module = importlib.import_module(name)
    assert callable(getattr(module, "main", None)), f"bench/{name}.py has no main()"
