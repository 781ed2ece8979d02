"""The `denoise` command line. Each module registers its commands on the one Typer app of common.py."""

# Importing the command modules registers their commands, in this order in --help: run, noise, then the rest.
from denoise.cli import run  # noqa: F401  isort: skip
from denoise.cli import models  # noqa: F401  isort: skip
from denoise.cli.common import app


def main() -> None:
    """Console-script entry point."""
    app(prog_name="denoise")


__all__ = ["app", "main"]
