"""`denoise eval`: PSNR and SSIM of a model's outputs on a dataset, beside the noisy input's."""


from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise.cli.common import (
    ChannelsOption,
    DatasetOption,
    EnsembleOption,
    NoiseOption,
    PathOption,
    PrecisionOption,
    app,
    fail,
    resolve_model,
)
from denoise.errors import DenoiseError
from denoise.inference.settings import RunSettings
from denoise.nn.model_files import shipped_model_names


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Argument(help="The model to evaluate: a .keras file, or a shipped model's name "
                                               f"({', '.join(shipped_model_names())}).")],
    dataset: DatasetOption = "folder",
    path: PathOption = None,
    noise: NoiseOption = "gaussian:25",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Evaluate at most this many images.")] = None,
    channels: ChannelsOption = None,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print per-image scores as JSON.")] = False,
    precision: PrecisionOption = RunSettings.precision,
    ensemble: EnsembleOption = RunSettings.ensemble,
) -> None:
    """Print PSNR and SSIM of the noisy input and of the model's output on a dataset's images."""
    from denoise.datasets import LoadRequest, get_plugin, load_dataset
    from denoise.nn.model_files import read_metadata

    model = resolve_model(model)
    try:  # checked before TensorFlow's import
        read_metadata(model)
        get_plugin(dataset)
        if path is not None and not path.exists():
            raise DenoiseError(f"--path {path} does not exist. Give the folder (or file) the dataset lies in.")
    except DenoiseError as exc:
        fail(str(exc))
    from denoise.api import evaluate as evaluate_model
    from denoise.api import load_model

    try:
        cleaner = load_model(model, settings=RunSettings(precision=precision, ensemble=ensemble, reuse_input=True))
        request = LoadRequest(path=path, patch_size=None, validation_fraction=1.0, channels=channels, seed=seed,
                              limit=limit)
        data = load_dataset(dataset, request)
        images = list(data.validation)[:limit]
        report = evaluate_model(cleaner, images, noise, seed=seed, names=list(data.validation_names)[:limit])
    except DenoiseError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    s = report.summary()
    typer.echo(f"{s['count']} images, noise {s['noise']}, model {model}")
    typer.echo(f"  noisy input : PSNR {s['noisy_psnr']:6.2f} dB   SSIM {s['noisy_ssim']:.4f}")
    typer.echo(f"  denoised    : PSNR {s['denoised_psnr']:6.2f} dB   SSIM {s['denoised_ssim']:.4f}")
