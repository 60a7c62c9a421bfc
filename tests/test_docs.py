"""Documentation made from the code stays what the code says."""

from __future__ import annotations

import re
from pathlib import Path

from blurgen.h5 import schema_table

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_format_page_holds_the_schema_the_writer_lays_out():
    text = (DOCS / "format.md").read_text()
    block = re.search(r"<!-- schema-table[^>]*-->\n(.*?)<!-- /schema-table -->", text, re.S)
    assert block, "docs/format.md has no schema-table markers"
    assert block.group(1) == schema_table(), (
        "docs/format.md's table differs from blurgen.h5.schema_table(); paste this between "
        f"its markers:\n{schema_table()}"
    )
