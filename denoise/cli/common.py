"""What every command shares: the Typer app, exit codes, option types, and how errors and TensorFlow are met.

The CLI is the one place that prints, exits and draws progress bars. TensorFlow takes seconds to import, so it is
imported only inside the commands that run a model; `denoise --help`, `--version`, `datasets` and `info` never
load it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise import __version__
from denoise.errors import DenoiseError
from denoise.inference.settings import MAX_ENSEMBLE
from denoise.noise.specs import EXAMPLES as NOISE_EXAMPLES
from denoise.noise.specs import NoiseSpec, parse_noise, parse_noise_mix
from denoise.runtime import parse_precision, parse_runtime  # TensorFlow-free

app = typer.Typer(
    help="Clean folders of noisy images in one command; train a denoising autoencoder on your own images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_FAILED_FILES = 1  # the run finished but some files failed
EXIT_ERROR = 2  # nothing was done: bad arguments, missing model, unknown dataset...
EXIT_BUG = 3  # an unexpected error: a bug in denoise (or in what it runs on); the traceback is in a file
EXIT_INTERRUPTED = 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"denoise {__version__}")
        raise typer.Exit()


def fail(message: str, code: int = EXIT_ERROR) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def report_bug(exc: BaseException) -> None:
    """Say in one line that something unexpected failed, with the file its full traceback was written to."""
    import tempfile
    import time
    import traceback

    folder = Path(tempfile.gettempdir())
    path = folder / f"denoise-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        where = f"the full traceback is in {path}"
    except OSError:
        where = "the traceback could not be written to a file"
    typer.secho(f"error: unexpected {type(exc).__name__}: {exc}. This is a bug in denoise; {where}. Please include "
                "it when you report the bug.", err=True, fg=typer.colors.RED)


def checked(parse):
    """A Typer parser from a function that raises DenoiseError, so a bad value exits 2 with its message."""
    def parser(text: str):
        try:
            return parse(text)
        except DenoiseError as exc:
            raise typer.BadParameter(str(exc)) from None
    return parser


def shard_option(text: str) -> tuple[int, int]:
    from denoise.batch.plan import parse_shard

    return parse_shard(text)


@app.callback()
def main_options(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Clean folders of noisy images; train, evaluate and inspect denoising models."""


NoiseOption = Annotated[
    NoiseSpec, typer.Option(parser=checked(parse_noise), metavar="SPEC", help=f"Noise to add, e.g. {NOISE_EXAMPLES}.")
]
# Typer takes the parser's result as it is: a NoiseSpec, or a NoiseMix of several specs joined by '+'.
TrainNoiseOption = Annotated[
    Optional[NoiseSpec], typer.Option(parser=checked(parse_noise_mix), metavar="SPEC[+SPEC...]", help=(
        f"Noise to add, e.g. {NOISE_EXAMPLES}. Several specs joined by '+' are mixed: each batch draws one of them, "
        "e.g. camera-jpeg:0-1+gaussian:0-50. Default: gaussian:0-50; none with --target self."))
]
DatasetOption = Annotated[str, typer.Option("--dataset", "-d", help="A dataset loader; see `denoise datasets`.")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    min=1, help="Use at most N cores: TensorFlow's intra-op pool gets N threads (inter-op: up to 2); run also "
                "keeps one reader and at most 2N writer threads (they mostly wait for the disk). Default: every core "
                "this process may use (its CPU affinity).")]
PrecisionOption = Annotated[str, typer.Option(
    parser=checked(parse_precision), metavar="MODE", help="Arithmetic of the model's layers. auto: "
    "bfloat16 on CPUs that compute it natively (AMX or AVX-512 BF16; about 3x faster, PSNR within 0.02 dB), else "
    "float32.")]
RuntimeOption = Annotated[str, typer.Option(
    parser=checked(parse_runtime), metavar="NAME", help="What runs the model. auto: litert (TensorFlow Lite's "
    "XNNPACK kernels: on 2 AVX2 cores as fast as TensorFlow or 1.1x, the same output, about 300 MB less memory on "
    "12 MP photos) wherever it computes in float32 on a CPU, else tensorflow.")]
EnsembleOption = Annotated[int, typer.Option(
    min=1, max=MAX_ENSEMBLE, metavar="N", help=f"Average the model over N flips and transposes of each image "
    f"(1-{MAX_ENSEMBLE}): N times slower, a little cleaner (about +0.1 dB with 2, +0.15 with 8 on CSet5).")]
PathOption = Annotated[Optional[Path], typer.Option(
    "--path", help="Where the dataset's files lie: a folder of images for 'folder', the folder of the IDX or .npz "
                   "files for 'mnist' and 'fashion-mnist' (default: the Keras cache, else a download).")]


def channels_option(value: Optional[int]) -> Optional[int]:
    if value is not None and value not in (1, 3):
        raise typer.BadParameter(f"{value} is not possible: give 1 (grayscale) or 3 (colour).")
    return value


ChannelsOption = Annotated[Optional[int], typer.Option(
    callback=channels_option, help="1 = grayscale, 3 = colour; default: as stored.")]


def resolve_model(path_or_name: Path) -> Path:
    """A model argument as a file path: a .keras file, or a shipped model's name such as gaussian."""
    from denoise.nn.model_files import resolve_model as resolve

    return resolve(path_or_name)


def same_command(add: list[str] = (), drop: list[str] = ()) -> str:
    """The command line this process was started with, as `denoise ...`, with flags dropped and added: what a
    message suggests running next."""
    import shlex
    import sys

    args = [arg for arg in sys.argv[1:] if arg not in drop]
    return "denoise " + shlex.join(args + [flag for flag in add if flag not in args])


