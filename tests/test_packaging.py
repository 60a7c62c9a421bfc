"""What a plain (not editable) install ships: every package of the source tree."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {line.split("=")[0].strip(): line.split("=")[1].strip()
               for line in config["options"]["package_dir"].strip().splitlines()}  # fmt: skip
    found = set()
    for package, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([package, *relative]))
    assert found <= listed, f"setup.cfg's packages lack {sorted(found - listed)}"
