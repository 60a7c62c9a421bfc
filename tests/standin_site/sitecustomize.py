"""Run as Python starts in processes with this folder on ``PYTHONPATH`` (see
``cupy_standin.python_path``): CuPy's modules are the stand-in's there too, as in the process
that started them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cupy_standin import modules  # noqa: E402

sys.modules.update(modules())
