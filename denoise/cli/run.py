"""`denoise run` and `denoise noise`: clean (or add noise to) a file or a folder tree, file by file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise.cli.common import (
    EXIT_FAILED_FILES,
    EnsembleOption,
    NoiseOption,
    PrecisionOption,
    ThreadsOption,
    app,
    checked,
    fail,
    shard_option,
    size_option,
)
from denoise.errors import DenoiseError
from denoise.noise import SALT_AND_PEPPER, parse_noise_kind
from denoise.resources import start_tensorflow


@app.command()
def run(
    source: Annotated[Path, typer.Argument(help="An image file or a folder tree of images.", exists=True)],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output folder (mirrors the input tree). Default: a sibling '<name>-denoised'."),
    ] = None,
    model: Annotated[
        Optional[Path], typer.Option("--model", "-m", help="A .keras model. Default: the shipped models.")
    ] = None,
    noise_kind: Annotated[Optional[str], typer.Option(
        "--noise", parser=checked(parse_noise_kind), metavar="KIND",
        help="Which shipped model: gaussian, salt-and-pepper, or auto (default): detected per image (isolated "
             "pure black and white pixels mean salt-and-pepper).")] = "auto",
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace the originals (each only once its "
                                                              "new version is fully written).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist (default: skip them).")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Same-size images cleaned together.")] = 8,
    tile: Annotated[Optional[int], typer.Option(min=64, help="Images larger than this many pixels a side are cleaned "
                                                             "in overlapping tiles, which bounds memory. Default: "
                                                             "1024, or 768 in bfloat16 (more memory per pixel).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write every file's outcome as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    threads: ThreadsOption = None,
    precision: PrecisionOption = "auto",
    ensemble: EnsembleOption = 1,
    shard: Annotated[Optional[str], typer.Option(
        callback=lambda text: text and checked(shard_option)(text), metavar="K/N", help="Clean only shard K of N (0 <= K < N), chosen by a stable hash "
        "of each file's relative path: N copies (a Slurm array, a Kubernetes Indexed Job) split one folder with "
        "no overlap and no coordination.")] = None,
    max_memory: Annotated[Optional[int], typer.Option(
        parser=checked(size_option), metavar="SIZE", help="Peak memory target, e.g. 2G (at least 1G): sizes the read-ahead "
        "and write-behind buffers and the pixels per model call. Default: about 2G for the default model. An image "
        "larger than the buffers still runs, alone, in tiles (about 4 bytes per pixel and channel).")] = None,
) -> None:
    """Denoise an image or a whole folder tree; originals are never touched unless --in-place.

    Each output keeps its file's format, size, mode, EXIF and colour profile and is written atomically. A file that
    fails is reported and the others go on; the exit code is 1 if any file failed, 2 if nothing could start.
    """
    from denoise.batch import (
        DEFAULT_BUFFER_BYTES,
        DEFAULT_WRITERS,
        clean_images,
        plan_outputs,
        shard_jobs,
    )
    from denoise.resources import memory_plan

    try:
        jobs = plan_outputs(source, out, in_place=in_place)
        if shard is not None:
            jobs = shard_jobs(jobs, source, *shard)
        plan = memory_plan(max_memory) if max_memory else None
        denoiser, threads = _load_denoiser(model, noise_kind, precision, tile, plan.batch_pixels if plan else None,
                                           threads, ensemble)
    except DenoiseError as exc:
        fail(str(exc))
    buffer = plan.buffer_bytes if plan else DEFAULT_BUFFER_BYTES
    writers = min(DEFAULT_WRITERS, 2 * threads)
    summary = _run_with_progress(jobs, lambda progress: clean_images(
        jobs, denoiser, overwrite=overwrite, batch_size=batch_size, progress=progress, buffer_bytes=buffer,
        writers=writers), quiet, "denoising")
    _say_detected_noise(denoiser, noise_kind)
    _finish_run(summary, report, jobs)


def _load_denoiser(model: Path | None, noise_kind: str | None, precision: str, tile: int | None,
                   batch_pixels: int | None, threads: int | None, ensemble: int = 1):
    """The model to run (loaded once; the shipped defaults each when first needed) and TensorFlow's thread count."""
    from denoise.errors import UsageError
    from denoise.model_files import read_metadata

    if model is not None and noise_kind is not None:
        raise UsageError("--noise chooses among the shipped models; with --model, leave it out.")
    if model is not None:
        read_metadata(model)  # fails fast, before TensorFlow is imported, on a missing or foreign file
    threads = start_tensorflow(threads)
    from denoise.inference import DefaultDenoiser, load_denoiser

    # The batch code owns the pixels it hands over, so a lone large image may be cleaned in place.
    options = {"tile": tile, "reuse_input": True, "precision": precision, "ensemble": ensemble,
               **({"max_batch_pixels": batch_pixels} if batch_pixels else {})}
    if model is None:
        return DefaultDenoiser(noise_kind, **options), threads
    return load_denoiser(model, **options), threads


def _say_detected_noise(denoiser, noise_kind: str | None) -> None:
    """When detection found impulse noise, say how many images each model cleaned, so a wrong guess shows."""
    kinds = getattr(denoiser, "kinds", {})
    if noise_kind is None and kinds.get(SALT_AND_PEPPER):
        counts = ", ".join(f"{count} as {kind}" for kind, count in sorted(kinds.items()))
        typer.echo(f"noise detected per image: {counts} (--noise chooses one for all)", err=True)


def _run_with_progress(jobs, work, quiet: bool, label: str):
    """Run `work(progress_callback)` under a tqdm bar; failures are printed as they happen."""
    from tqdm import tqdm

    with tqdm(total=len(jobs), unit="image", desc=label, disable=quiet, file=sys.stderr) as bar:
        def progress(result):
            bar.update(1)
            if result.status == "failed":
                # Reasons usually name the file already; name it when one does not.
                named = str(result.source) in result.reason
                bar.write(f"failed: {result.reason if named else f'{result.source}: {result.reason}'}",
                          file=sys.stderr)

        return work(progress)


def _finish_run(summary, report: Path | None, jobs) -> None:
    counts = summary.counts
    skipped = counts.get("skipped", 0)
    hint = " (outputs exist; --overwrite redoes them)" if skipped else ""
    where = f"; outputs under {_common_output(jobs)}" if jobs else ""
    typer.echo(f"{counts.get('done', 0)} done, {skipped} skipped{hint}, {counts.get('failed', 0)} failed{where}",
               err=True)
    if report is not None:
        try:
            summary.write_report(report)
        except DenoiseError as exc:
            fail(str(exc))
    if not jobs:
        fail("No images found (PNG, JPEG, TIFF, BMP or WebP).")
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED_FILES)


def _common_output(jobs) -> Path:
    return Path(os.path.commonpath([str(job.output.parent) for job in jobs]))


@app.command()
def noise(
    source: Annotated[Path, typer.Argument(help="A clean image or folder tree.", exists=True)],
    out: Annotated[Path, typer.Argument(help="Where the noisy copies go (mirrors the input tree).")],
    noise: NoiseOption = "gaussian:25",
    seed: Annotated[int, typer.Option(help="The same seed and files give the same noise.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Write noisy copies of clean images (to try denoise out, or to evaluate it on your own files)."""
    import numpy as np

    from denoise.batch import clean_images, plan_outputs
    from denoise.noise import add_noise

    rng = np.random.default_rng(seed)
    try:
        jobs = plan_outputs(source, out)
    except DenoiseError as exc:
        fail(str(exc))
    add = lambda images: [add_noise(image, noise, rng) for image in images]  # noqa: E731
    summary = _run_with_progress(jobs, lambda progress: clean_images(
        jobs, add, overwrite=overwrite, progress=progress), quiet, "adding noise")
    _finish_run(summary, None, jobs)


