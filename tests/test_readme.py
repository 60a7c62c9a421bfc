"""The README's Python blocks run, in order, as one script."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from blurgen.cli.main import cli
from blurgen.pipeline import bundled_images

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(path: Path) -> list[str]:
    """The fenced ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.M | re.S)


def test_the_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photos = bundled_images()
    shutil.copy(photos[0], "photo.png")
    for folder in ("photos", "real_photos"):
        Path(folder).mkdir()
        for photo in photos:
            shutil.copy(photo, folder)
    result = CliRunner().invoke(cli, ["kernels", "-n", "64", "-o", "bank.h5", "-q"])
    assert result.exit_code == 0, result.output
    blocks = python_blocks(README)
    assert len(blocks) >= 8
    namespace = {"__name__": "__main__"}
    for number, block in enumerate(blocks, 1):
        if "make_dataset_ray" in block and importlib.util.find_spec("ray") is None:
            continue  # Ray is an extra (the test command installs it)
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"README's python block {number} fails:\n{block}") from exc
