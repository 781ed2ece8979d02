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
    RuntimeOption,
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
    runtime: RuntimeOption = RunSettings.runtime,
    ensemble: EnsembleOption = RunSettings.ensemble,
    html: Annotated[Optional[Path], typer.Option(metavar="DIR", help=(
        "Write a before-and-after report here (DIR/index.html): per image the noisy input and the output, "
        "their PSNR and SSIM, zoomed crops and a map of what was removed."))] = None,
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
        cleaner = load_model(model, settings=RunSettings(precision=precision, runtime=runtime, ensemble=ensemble,
                                                           reuse_input=True))
        request = LoadRequest(path=path, patch_size=None, validation_fraction=1.0, channels=channels, seed=seed,
                              limit=limit)
        data = load_dataset(dataset, request)
        images = list(data.validation)[:limit]
        pages = _html_report(html, model, noise)
        report = evaluate_model(cleaner, images, noise, seed=seed, names=list(data.validation_names)[:limit],
                                on_image=pages and (lambda score, noisy, denoised: _add_page(pages, score, noisy,
                                                                                             denoised, model, noise)))
        index = pages and pages.write()
    except DenoiseError as exc:
        fail(str(exc))
    if index:
        typer.echo(f"report: {index}", err=True)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    s = report.summary()
    typer.echo(f"{s['count']} images, noise {s['noise']}, model {model}")
    typer.echo(f"  noisy input : PSNR {s['noisy_psnr']:6.2f} dB   SSIM {s['noisy_ssim']:.4f}")
    typer.echo(f"  denoised    : PSNR {s['denoised_psnr']:6.2f} dB   SSIM {s['denoised_ssim']:.4f}")


def _html_report(folder: Path | None, model: Path, noise):
    if folder is None:
        return None
    from denoise.report.html import HtmlReport

    return HtmlReport(folder, f"denoise eval {model.stem}, {noise}")


def _add_page(pages, score, noisy, denoised, model: Path, noise) -> None:
    from denoise.report.html import Detected

    scores = {"PSNR noisy": score.noisy_psnr, "PSNR denoised": score.denoised_psnr, "SSIM noisy": score.noisy_ssim,
              "SSIM denoised": score.denoised_ssim}
    pages.add(score.name, noisy, denoised, Detected(f"{noise} (added)", float("nan"), model.stem), scores)
