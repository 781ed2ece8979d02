"""`denoise datasets`, `denoise info` and `denoise compact`: what is installed, what a model is, smaller copies."""


from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from denoise.cli.common import (
    EXIT_FAILED_FILES,
    app,
    fail,
    resolve_model,
)
from denoise.errors import DenoiseError
from denoise.runtime import start_tensorflow


@app.command()
def datasets() -> None:
    """List the installed dataset loaders: name, package, version, and whether they load."""
    from denoise.datasets import find_plugins

    plugins = find_plugins()
    broken = 0
    typer.echo(f"{'name':<16} {'package':<20} {'version':<10} status")
    for plugin in plugins:
        try:
            status = "ok  " + plugin.describe()
        except DenoiseError as exc:
            status, broken = f"BROKEN: {exc}", broken + 1
        typer.echo(f"{plugin.name:<16} {plugin.package:<20} {plugin.version:<10} {status}")
    if broken:
        raise typer.Exit(EXIT_FAILED_FILES)


@app.command()
def compact(
    model: Annotated[Path, typer.Argument(help="The .keras model to copy.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the compact copy (.keras).")],
) -> None:
    """Copy a model with its weights stored as float16: half the file size, outputs within 0.1 of an 8-bit level.

    denoise loads such files back into float32 (or bfloat16, see --precision) to run them. The shipped models
    are stored this way.
    """
    start_tensorflow()
    from denoise.nn.architectures import with_weights_in
    from denoise.nn.model_files import check_model_file_name
    from denoise.nn.saving import load_model, save_model

    try:
        check_model_file_name(out)
        keras_model, metadata = load_model(model)
        save_model(with_weights_in(keras_model, "float16"), out, {**metadata, "stored_as": "float16"})
    except DenoiseError as exc:
        fail(str(exc))
    typer.echo(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB, from {model.stat().st_size / 1e6:.1f} MB)")


@app.command()
def info(model: Annotated[Path, typer.Argument(help="A .keras model file, or a shipped model's name.")]) -> None:
    """Show what a model is and how it was trained (reads its metadata; no TensorFlow needed)."""
    from denoise.nn.model_files import describe_model_file

    try:
        lines = describe_model_file(resolve_model(model))
    except DenoiseError as exc:
        fail(str(exc))
    for line in lines:
        typer.echo(line)
