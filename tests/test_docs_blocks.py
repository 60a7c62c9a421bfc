"""Every code block of README.md and of the documentation site runs, on small inputs.

Each page's ```python blocks run in order as one script, and its ```bash blocks command by
command, in a folder holding what the examples name: ``photo.png``, ``photos/`` and
``real_photos/`` (the bundled photos), ``clips/`` (two short videos), ``takes/run1/`` (numbered
frames), ``bank.h5`` (64 kernels). ``blurgen`` commands run through click; ``python
bench/NAME.py ...`` has its arguments parsed by the script's own parser (a benchmark takes
minutes to hours, so the test stops it there); ``torchrun ... -m blurgen.cli ...``, commands
that need a cluster (``--ray auto``) and the benchmark page's records of runs have their
arguments parsed by the command, not run. Listings (```text: file trees, scripts of one-off
runs) do not run. What
the environment itself runs is left to it: ``pip install`` (CI installs), ``python -m pytest``
(this suite), ``mkdocs`` (CI builds the site), ``ray start`` (a cluster's).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.cli.main import cli
from blurgen.pipeline import bundled_images

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LEFT_TO_THE_ENVIRONMENT = ("pip install", "python -m pytest", "mkdocs ", "ray start", "bash ")
# Pages whose commands record the runs behind their figures (minutes to hours, on the project's
# reference data): parsed by their commands, not run again.
RECORDS = ("benchmarks.md", "notes.md")


class Parsed(Exception):
    """A benchmark's arguments parsed: stop before it runs."""


def blocks(path: Path, language: str) -> list[str]:
    """The fenced blocks of ``language`` in a Markdown file, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(), re.M | re.S)


def commands(block: str) -> list[str]:
    """A bash block's commands: continuation lines joined, comments dropped, split at &&."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
    return [part.strip() for line in lines if line and not line.startswith("#")
            for part in line.split("&&")]  # fmt: skip


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photos = bundled_images()
    shutil.copy(photos[0], "photo.png")
    for name in ("photos", "real_photos"):
        Path(name).mkdir()
        for photo in photos:
            shutil.copy(photo, name)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.random((300, 420, 3)), (0, 0), 2)
    texture = (texture * 600 - 170).clip(0, 255).astype(np.uint8)
    Path("clips").mkdir()
    for k, speed in enumerate((2, 3)):
        writer = cv2.VideoWriter(f"clips/clip{k}.mkv", cv2.VideoWriter_fourcc(*"FFV1"), 30,
                                 (300, 300))  # fmt: skip
        for i in range(16):
            writer.write(np.ascontiguousarray(texture[:, speed * i : speed * i + 300]))
        writer.release()
    Path("takes/run1").mkdir(parents=True)
    for i in range(12):
        cv2.imwrite(
            f"takes/run1/{i:04d}.png", np.ascontiguousarray(texture[:, 4 * i : 4 * i + 300])
        )
    result = CliRunner().invoke(cli, ["kernels", "-n", "64", "-o", "bank.h5", "-q"])
    assert result.exit_code == 0, result.output
    return tmp_path


def run_command(command: str, where: str, record: bool = False) -> None:
    """One command of a bash block (``record``: of a run behind a figure, parsed only)."""
    words = shlex.split(command)
    if command.startswith(LEFT_TO_THE_ENVIRONMENT) or (record and words[0] in ("cp", "mv")):
        return  # a record's file moves act on its run's files
    if words[0] == "blurgen" and (record or ("--ray" in words and "local" not in words)):
        if record:  # the run's own input files, as placeholders: their options are checked
            for word in words:
                if Path(word).suffix in (".txt", ".pt", ".h5", ".yaml") and not Path(word).exists():
                    Path(word).parent.mkdir(parents=True, exist_ok=True)
                    Path(word).touch()
        parse_command(words[1:], where)  # a recorded run, or one that needs a cluster
        return
    if words[0] == "blurgen":
        result = CliRunner().invoke(cli, words[1:])
        assert result.exit_code == 0, f"{where}: `{command}` failed:\n{result.output}"
        return
    if words[0] == "torchrun":
        parse_command(words[words.index("blurgen.cli") + 1 :], where)
        return
    if words[0] == "python" and words[1].startswith("bench/"):
        parse_bench(words[1], words[2:], where)
        return
    raise AssertionError(f"{where}: no rule runs `{command}`; add one to tests/test_docs_blocks.py")


def parse_command(args: list[str], where: str) -> None:
    """The command's arguments parsed and checked by click, without running it."""
    command = cli.get_command(None, args[0])
    assert command is not None, f"{where}: no command {args[0]}"
    command.make_context(args[0], args[1:])


def parse_bench(script: str, args: list[str], where: str) -> None:
    """A benchmark's arguments parsed by its own parser, stopped before it runs (a GPU run's
    as on the CPU where there is no GPU: its parser checks the device)."""
    if "--device" in args and not torch.cuda.is_available():
        args = [("cpu" if a == "cuda" and args[i - 1] == "--device" else a)
                for i, a in enumerate(args)]  # fmt: skip
    path = ROOT / script
    assert path.is_file(), f"{where}: no {script}"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        original = argparse.ArgumentParser.parse_args

        def parse(self, argv=None, namespace=None):
            original(self, args, namespace)  # exits on a bad argument
            raise Parsed

        argparse.ArgumentParser.parse_args = parse
        try:
            module.main()
        except Parsed:
            return
        finally:
            argparse.ArgumentParser.parse_args = original
        raise AssertionError(f"{where}: {script} never parsed its arguments")
    finally:
        sys.path.remove(str(path.parent))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_code_blocks_of_a_page_run(page, folder):
    where = page.relative_to(ROOT)
    for number, block in enumerate(blocks(page, "bash"), 1):
        for command in commands(block):
            run_command(command, f"{where} bash block {number}", page.name in RECORDS)
    namespace = {"__name__": "__main__"}
    for number, block in enumerate(blocks(page, "python"), 1):
        if "make_dataset_ray" in block and importlib.util.find_spec("ray") is None:
            continue  # Ray is an extra (the test command installs it)
        try:
            exec(compile(block, f"{where} python block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{where}'s python block {number} fails:\n{block}") from exc


def test_every_page_is_collected_and_code_blocks_name_their_language():
    assert any(p.name == "python.md" for p in PAGES)
    for page in PAGES:
        for fence in re.findall(r"^```(\w*)$", page.read_text(), re.M)[::2]:
            assert fence in ("bash", "python", "text"), (
                f"{page.name}: a ```{fence or '(no language)'} block: give bash or python "
                "(they run), or text (a listing)"
            )
