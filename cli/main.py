"""The ``blurgen`` command group.

Each command's module is imported when the command runs (or its help is shown), not when the
group is: ``blurgen make-dataset`` does not import the training commands, and the worker
processes make-dataset spawns, which import the script that started them, do not import the
CLI's modules at all.
"""

from __future__ import annotations

import importlib
import logging

import click

import blurgen
from blurgen.io import stderr_off_descriptor_2

# name: (module in blurgen.cli, attribute)
COMMANDS = {
    "make-dataset": ("dataset", "make_dataset_command"),
    "inspect": ("dataset", "inspect_command"),
    "preview": ("dataset", "preview_command"),
    "export": ("dataset", "export_command"),
    "kernels": ("kernels", "kernels_command"),
    "train-bgan": ("train", "train_bgan_command"),
    "train-deblur": ("train", "train_deblur_command"),
    "deblur": ("deblur", "deblur_command"),
    "evaluate": ("deblur", "evaluate_command"),
    "blur": ("blur", "blur_command"),
    "realism": ("realism", "realism_command"),
    "calibrate": ("calibrate", "calibrate_command"),
    "info": ("info", "info_command"),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported by name, when needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(f".{module}", __package__), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(blurgen.__version__, prog_name="blurgen")
def cli():
    """blurgen: paired blurred/sharp training data for image deblurring.

    Blur is modelled as I_B = k * I_S + N: a camera-shake kernel k convolved with the sharp
    image, plus noise. Run `blurgen COMMAND --help` for each command.
    """


def main() -> None:
    """Console-script entry point."""
    # Before anything holds sys.stderr: progress bars and logs written while a worker thread
    # decodes an image must not be read back as the decoder's complaint.
    stderr_off_descriptor_2()
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    cli()
