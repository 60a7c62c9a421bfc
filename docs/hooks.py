"""MkDocs hooks: the package laid out as it installs, for the API reference, whose docstrings'
Sphinx roles (``:func:`x```) show as code; and the benchmark pictures under bench/results/
joining the site where the pages link to them (``../bench/results/NAME.png``), without copies in
docs/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SITE_FOLDER = "bench-results"
# setup.cfg's package_dir: folders of the repository that install inside blurgen.
INSIDE = {"kernels": "kernels", "bgan": "bgan", "cli": "cli"}
API_TREE = ROOT / ".cache" / "api" / "blurgen"


def on_startup(command, dirty):
    """The package's Python files copied to .cache/api/blurgen as it installs, for mkdocstrings
    to read (it follows links back to their folders, so links would not do); before any
    plugin's configuration, as mkdocstrings looks for its paths there."""
    shutil.rmtree(API_TREE, ignore_errors=True)
    sources = shutil.ignore_patterns("__pycache__", "data", "weights")
    shutil.copytree(ROOT / "blurgen", API_TREE, ignore=sources)
    for name, folder in INSIDE.items():
        shutil.copytree(ROOT / folder, API_TREE / name, ignore=sources)


def on_files(files, config):
    for path in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"{SITE_FOLDER}/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    return re.sub(r"\]\(\.\./bench/results/", f"]({SITE_FOLDER}/", markdown)


def on_page_content(html, page, config, files):
    """``:func:`~a.b```, rendered ``:func:<code>~a.b</code>``, as ``<code>b</code>``."""
    return re.sub(r":[a-z]+:<code>~?(?:[\w.]*\.)?([^<.]+)</code>",
                  lambda m: f"<code>{m.group(1)}</code>", html)  # fmt: skip
