"""`denoise train`: train a model, or fine-tune one, on clean images with noise added on the fly."""


from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise.cli.common import (
    EXIT_INTERRUPTED,
    ChannelsOption,
    DatasetOption,
    PathOption,
    ThreadsOption,
    TrainNoiseOption,
    app,
    fail,
    same_command,
)
from denoise.errors import DenoiseError
from denoise.training.config import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_PATCH_SIZE,
    FINE_TUNE_LEARNING_RATE,
    SELF_PATCH_SIZE,
)


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the trained model (.keras).")],
    dataset: DatasetOption = "folder",
    path: PathOption = None,
    noise: TrainNoiseOption = None,
    target: Annotated[str, typer.Option(help=(
        "clean (default): the images are clean and --noise is added to them. self: the images are noisy photos "
        "with no clean twins; the model learns their noise from them alone (see --self-method), e.g. to adapt a "
        "shipped model to one camera with --init-from."))] = "clean",
    self_method: Annotated[str, typer.Option(help=(
        "With --target self: recorrupt (default): measure the images' noise and train on pairs recorrupted with "
        "more of it (Recorrupted-to-Recorrupted); neighbours: learn one pixel of each 2x2 cell from its neighbour "
        "(Neighbor2Neighbor), which needs no noise measurement."))] = "recorrupt",
    validation_path: Annotated[Optional[Path], typer.Option(help=(
        "With --target self: a folder holding clean/ and noisy/ twins of a few images (same names), to report "
        "PSNR every epoch beside the self-supervised score and keep the best model by it."))] = None,
    arch: Annotated[Optional[str], typer.Option(
        help="unet (default; with --init-from: that model's), conv (no skips) or dense (784-32-784 for "
             "28x28).")] = None,
    width: Annotated[int, typer.Option(min=4, help="Filters at the first scale (unet, conv).")] = 32,
    depth: Annotated[int, typer.Option(min=1, max=5, help="Number of downsampling scales (unet).")] = 3,
    channels: ChannelsOption = None,
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    patch_size: Annotated[Optional[int], typer.Option(min=8, help=(
        f"Side of the square training patches. Default {DEFAULT_PATCH_SIZE}, or {SELF_PATCH_SIZE} with "
        "--self-method neighbours (which halves them)."))] = None,
    crop_size: Annotated[Optional[int], typer.Option(min=8, help="Train on random crops of this side from each patch, "
                                                           "at new positions every step (more variety from few "
                                                           "images; e.g. --patch-size 128 --crop-size 64).")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(min=1, help="Default: one pass over the patches.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(
        help=f"Default {DEFAULT_LEARNING_RATE:g}, or {FINE_TUNE_LEARNING_RATE:g} with --init-from (a higher rate "
             "undoes what the model knew).")] = None,
    lr_schedule: Annotated[str, typer.Option(help="cosine (decays to 2% by the last epoch) or constant.")] = "cosine",
    clean_fraction: Annotated[float, typer.Option(min=0.0, max=0.99, help="Share of patches left without noise, "
                                                  "so a blind model learns to leave clean images as they are.")] = 0.0,
    loss: Annotated[str, typer.Option(help="mse, or psnr: each patch's error in dB, so light noise and clean "
                                           "images weigh as much as heavy noise in blind training.")] = "mse",
    validation_fraction: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.1,
    seed: int = 0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Use at most this many source images.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint beside --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out, once this run has a model to put "
                                                 "there (a finished epoch, or the --init-from model).")] = False,
    init_from: Annotated[Optional[Path], typer.Option(help="Fine-tune: start from this model (a .keras file or a "
                                                          "shipped model's name) with a fresh optimizer. It is "
                                                          "validated first and kept unless training beats it.")] = None,
    precision: Annotated[str, typer.Option(metavar="MODE", help=(
        "float32 (default), bfloat16 or auto (bfloat16 on CPUs with AMX or AVX-512 BF16, as `run` does): the "
        "convolutions compute in bfloat16 with float32 weights; training steps take about half the time there "
        "(measured 0.07 vs 0.13 s). The saved model computes in float32 wherever it is loaded."))] = "float32",
    threads: ThreadsOption = None,
    distribute: Annotated[bool, typer.Option(help="Train on every GPU of this machine at once (TensorFlow's "
                                                  "MirroredStrategy; --batch-size is split between them).")] = False,
) -> None:
    """Train a denoising model: clean images in, noise added on the fly, the best epoch kept at --out."""
    from denoise.api import train as train_model

    options = dict(
        arch=arch, width=width, depth=depth, channels=channels, epochs=epochs, batch_size=batch_size,
        patch_size=patch_size, crop_size=crop_size, steps_per_epoch=steps_per_epoch, learning_rate=learning_rate,
        lr_schedule=lr_schedule, loss=loss, clean_fraction=clean_fraction, validation_fraction=validation_fraction,
        seed=seed, limit=limit, resume=resume, overwrite=overwrite, precision=precision, distribute=distribute,
        target=target, self_method=self_method, validation_path=validation_path,
    )
    try:  # the library checks every option before TensorFlow's import (seconds) and the dataset's reading (minutes)
        result = train_model(out, dataset=dataset, path=path, noise=noise, init_from=init_from, threads=threads,
                             on_epoch=_print_epoch, on_message=_print_start, **options)
    except DenoiseError as exc:
        fail(str(exc))
    for problem in _dataset_problems(result.dataset_notes) + _model_problems(result):
        typer.secho(f"warning: {problem}", err=True, fg=typer.colors.YELLOW)
    if result.interrupted:
        typer.echo(_interrupted_message(result, target == "self" and self_method == "neighbours", resume, init_from),
                   err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    measure = result.history[-1].measure if result.history else "PSNR"
    best = f", best validation {measure} {result.best_psnr:.2f} dB" if result.best_psnr is not None else ""
    typer.echo(f"Done: {result.epochs_done} epochs{best}, model at {out}")


def _interrupted_message(result, no_checkpoint: bool, resume: bool, init_from: Path | None) -> str:
    """What an interrupted run left, and the command that goes on from there (no_checkpoint: a Neighbor2Neighbor
    run, which keeps no resumable checkpoint)."""
    from denoise.training.config import checkpoint_path

    out = result.out
    if no_checkpoint and result.epochs_done > 0:
        return (f"Interrupted after {result.epochs_done} epochs; the best model so far is at {out}. Continue "
                f"from it with --init-from {out} and another --out.")
    # A checkpoint of this run, or of the run it resumes: not one an interrupted --overwrite run has not replaced yet.
    if checkpoint_path(out).exists() and (resume or result.epochs_done > 0):
        command = same_command(add=["--resume"], drop=["--resume", "--overwrite"])
        return (f"Interrupted after {result.epochs_done} epochs; the best model so far is at {out}. "
                f"Continue with: {command}")
    kept = f"{out} holds the starting model, unchanged" if init_from else (
        f"{out} was left as it was" if out.exists() else f"nothing was written to {out}")
    return (f"Interrupted before the first epoch finished; {kept}. Start again with: "
            f"{same_command(add=['--overwrite'] if out.exists() else [], drop=['--overwrite'])}")


def _model_problems(result) -> list[str]:
    """Warnings about the model kept: collapsed to a constant output, or no better than its noisy input."""
    best = next((report for report in reversed(result.history) if report.best), None)
    if best is None:
        return []
    if best.collapsed:
        return [f"the model kept at {result.out} puts out (nearly) constant images: it learnt to ignore its input. "
                "Train longer, with a smaller --batch-size or another --learning-rate, or try --arch unet."]
    if best.denoised_psnr < best.noisy_psnr:
        return [f"the model kept at {result.out} is worse than its noisy input ({best.denoised_psnr:.2f} against "
                f"{best.noisy_psnr:.2f} dB, {best.measure}, on the validation images). Train longer or try "
                "--arch unet."]
    return []


def _dataset_problems(notes: dict) -> list[str]:
    """What a loader left out (unreadable or too small images), as lines worth a warning."""
    problems = []
    for key, what in (("skipped_unreadable", "unreadable"), ("skipped_too_small", "smaller than --patch-size")):
        skipped = notes.get(key) or []
        if skipped:
            shown = ", ".join(str(item) for item in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            problems.append(f"{len(skipped)} images were left out as {what}: {shown}")
    return problems


def _print_start(line: str) -> None:
    """What training is about to do; a warning (images with no noise to learn from) on stderr, in yellow."""
    if line.startswith("warning: "):
        typer.secho(line, err=True, fg=typer.colors.YELLOW)
    else:
        typer.echo(line)


def _print_epoch(report) -> None:
    mark = "  (best, saved)" if report.best else ""
    mark += "  [output is a constant image]" if report.collapsed else ""
    what = f"epoch {report.epoch}/{report.epochs}  loss {report.loss:.5f}" if report.epoch else "starting model"
    if report.self_scores:
        mark = f"  self-supervised score {report.self_scores[0]:.2f} -> {report.self_scores[1]:.2f} dB" + mark
    typer.echo(f"{what}  validation {report.measure}: noisy {report.noisy_psnr:.2f} dB -> denoised "
               f"{report.denoised_psnr:.2f} dB"
               f"  [{report.seconds:.0f}s]{mark}")
