"""The ``blurgen`` command group."""

from __future__ import annotations

import logging

import click

import blurgen

from .blur import blur_command
from .calibrate import calibrate_command
from .dataset import export_command, inspect_command, make_dataset_command, preview_command
from .deblur import deblur_command, evaluate_command
from .info import info_command
from .kernels import kernels_command
from .realism import realism_command
from .train import train_bgan_command, train_deblur_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(blurgen.__version__, prog_name="blurgen")
def cli():
    """blurgen: paired blurred/sharp training data for image deblurring.

    Blur is modelled as I_B = k * I_S + N: a camera-shake kernel k convolved with the sharp
    image, plus noise. Run `blurgen COMMAND --help` for each command.
    """


cli.add_command(make_dataset_command)
cli.add_command(inspect_command)
cli.add_command(preview_command)
cli.add_command(export_command)
cli.add_command(kernels_command)
cli.add_command(train_bgan_command)
cli.add_command(train_deblur_command)
cli.add_command(deblur_command)
cli.add_command(evaluate_command)
cli.add_command(blur_command)
cli.add_command(realism_command)
cli.add_command(calibrate_command)
cli.add_command(info_command)


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    cli()
