"""``python -m blurgen.cli``: the ``blurgen`` command."""

from .main import main

main()
