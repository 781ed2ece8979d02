"""The `denoise` command line. Each module registers its commands on the one Typer app of common.py."""

import sys

# Importing the command modules registers their commands, in this order in --help: run, noise, then the rest.
from denoise.cli import run  # noqa: F401  isort: skip
from denoise.cli import noise  # noqa: F401  isort: skip
from denoise.cli import train  # noqa: F401  isort: skip
from denoise.cli import evaluate  # noqa: F401  isort: skip
from denoise.cli import info  # noqa: F401  isort: skip
from denoise.cli.common import EXIT_BUG, EXIT_INTERRUPTED, app, report_bug


def main() -> None:
    """Console-script entry point. Anticipated errors are DenoiseErrors, shown by each command as one line and exit
    code 2; anything else is a bug: one line on the terminal, the traceback in a file that line names."""
    try:
        app(prog_name="denoise")
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling starts (e.g. while TensorFlow loads)
        print("Interrupted; nothing was written.", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - the last resort; SystemExit and KeyboardInterrupt pass through
        report_bug(exc)
        raise SystemExit(EXIT_BUG) from None


__all__ = ["app", "main"]
