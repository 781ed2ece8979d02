"""`denoise run`: clean a file or a folder tree, file by file, with the shipped models or the user's own."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise.batch.settings import DEFAULT_BATCH_SIZE
from denoise.cli.common import (
    EnsembleOption,
    PrecisionOption,
    RuntimeOption,
    ThreadsOption,
    app,
    checked,
    fail,
    resolve_model,
    shard_option,
)
from denoise.cli.progress import (
    by_type,
    common_output,
    convert_hint,
    finish_run,
    run_with_progress,
    unfinished,
    write_report,
)
from denoise.errors import DenoiseError
from denoise.inference.settings import BFLOAT16_TILE, DEFAULT_TILE, LITERT_TILE, RunSettings
from denoise.noise.specs import GAUSSIAN, parse_noise_kind
from denoise.runtime import parse_size


@app.command()
def run(
    source: Annotated[Path, typer.Argument(help="An image file or a folder tree of images.", exists=True)],
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", help="Output folder (mirrors the input tree). Default: a sibling '<name>-denoised'."
        ),
    ] = None,
    model: Annotated[
        Optional[Path],
        typer.Option(
            "--model",
            "-m",
            help="A .keras model, or a shipped model's name to use it for every image. Default: the "
            "shipped models, chosen per image.",
        ),
    ] = None,
    noise_kind: Annotated[
        Optional[str],
        typer.Option(
            "--noise",
            parser=checked(parse_noise_kind),
            metavar="KIND",
            help="Which shipped model: gaussian, salt-and-pepper, camera (a real photo's noise), or auto (default): "
            "detected per image (isolated pure black and white pixels mean salt-and-pepper; colour noise that is "
            "not white means camera).",
        ),
    ] = "auto",
    strength: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=3.0,
            help="Smoothing against the model's own estimate of the noise: 1 (default) as measured, "
            "0.5 removes half of it (keeps more grain), 2 cleans as if the noise were twice as "
            "strong (smoother, for light noise; runs the model twice).",
        ),
    ] = 1.0,
    in_place: Annotated[
        bool,
        typer.Option("--in-place", help="Replace the originals (each only once its new version is fully written)."),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist (default: skip them).")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Same-size images cleaned together.")] = DEFAULT_BATCH_SIZE,
    tile: Annotated[
        Optional[int],
        typer.Option(
            min=64,
            help=(
                "Images larger than this many pixels a side are cleaned in overlapping tiles, which bounds memory. "
                f"Default: {DEFAULT_TILE}, {BFLOAT16_TILE} in bfloat16 (more memory per pixel), {LITERT_TILE} "
                "through LiteRT (its buffers grow with the tile)."
            ),
        ),
    ] = RunSettings.tile,
    report: Annotated[Optional[Path], typer.Option(help="Write every file's outcome as JSON here.")] = None,
    html: Annotated[
        Optional[Path],
        typer.Option(
            metavar="DIR",
            help="Write a before-and-after report here (DIR/index.html, viewable offline): thumbnails, the noise "
            "found, the model, the change, zoomed crops and a map of what was removed per image.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    threads: ThreadsOption = None,
    precision: PrecisionOption = RunSettings.precision,
    runtime: RuntimeOption = RunSettings.runtime,
    ensemble: EnsembleOption = RunSettings.ensemble,
    shard: Annotated[
        Optional[str],
        typer.Option(
            callback=lambda text: text and checked(shard_option)(text),
            metavar="K/N",
            help="Clean only shard K of N (0 <= K < N), chosen by a stable hash "
            "of each file's relative path: N copies (a Slurm array, a Kubernetes Indexed Job) split one folder with "
            "no overlap and no coordination.",
        ),
    ] = None,
    max_memory: Annotated[
        Optional[int],
        typer.Option(
            parser=checked(parse_size),
            metavar="SIZE",
            help="Peak memory target, e.g. 2G (at least 1G): sizes the read-ahead "
            "and write-behind buffers and the pixels per model call. Default: about 2G for the default model. An image "
            "larger than the buffers still runs, alone, in tiles (about 4 bytes per pixel and channel).",
        ),
    ] = None,
) -> None:
    """Denoise an image or a whole folder tree; originals are never touched unless --in-place.

    Each output keeps its file's format, size, mode, EXIF and colour profile and is written atomically. A file that
    fails is reported and the others go on; the exit code is 1 if any file failed, 2 if nothing could start, 130 if
    interrupted (Ctrl-C: the files not yet cleaned are listed as unfinished; running the same command again
    finishes them).
    """
    from denoise.batch.runner import clean_images
    from denoise.batch.settings import DEFAULT_BUFFER_BYTES, DEFAULT_WRITERS
    from denoise.runtime import memory_plan

    started = time.monotonic()
    try:
        jobs, total = _plan_run(source, out, in_place, shard)
        _check_writable(jobs, source, out, in_place, report)
        plan = memory_plan(max_memory) if max_memory else None
        model = model and resolve_model(model)
        _check_model(model, noise_kind)
        pages = _html_report(html, source, model, noise_kind)  # its folder is made once everything else is known good
    except DenoiseError as exc:
        fail(str(exc))
    if shard is not None and not jobs:
        _nothing_in_shard(shard, total, source, report)
        return
    sizes = _in_background(lambda: _measure(jobs, overwrite))  # headers are read while TensorFlow starts
    try:
        # The batch code owns the pixels it hands over, so a lone large image may be cleaned in place.
        settings = RunSettings(
            tile=tile,
            reuse_input=True,
            precision=precision,
            runtime=runtime,
            ensemble=ensemble,
            **({"max_batch_pixels": plan.batch_pixels} if plan else {}),
        )
        cleaner = _load_model(model, noise_kind, settings, threads, strength)
    except DenoiseError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        finish_run(unfinished(jobs), report, jobs, started)
    if not quiet:
        typer.echo(f"cleaning on {_device(cleaner)}", err=True)
    buffer = plan.buffer_bytes if plan else DEFAULT_BUFFER_BYTES
    writers = min(DEFAULT_WRITERS, 2 * cleaner.threads)
    summary = run_with_progress(
        jobs,
        sizes(),
        lambda progress, measured: clean_images(
            jobs,
            cleaner.clean_pixels,
            overwrite=overwrite,
            batch_size=batch_size,
            progress=progress,
            buffer_bytes=buffer,
            writers=writers,
            sizes=measured,
            observe=pages.before if pages else None,
        ),
        quiet,
        "denoising",
    )
    _say_detected_noise(cleaner, noise_kind)
    if pages is not None:
        _write_html(pages, jobs, summary)
    finish_run(summary, report, jobs, started)


def _plan_run(source: Path, out: Path | None, in_place: bool, shard: tuple[int, int] | None):
    """The jobs of this run (of its shard) and how many images the whole source holds; no images at all fails."""
    from denoise.batch.runner import plan_outputs, shard_jobs
    from denoise.errors import UsageError

    jobs = plan_outputs(source, out, in_place=in_place)
    readable = [job for job in jobs if not job.unread]
    if not readable:
        unread = [job for job in jobs if job.unread]
        found = (
            f" It holds {len(unread)} of other types: {by_type(unread)}; {convert_hint(unread)}." if unread else ""
        )
        raise UsageError(f"No images found in {source} (PNG, JPEG, TIFF, BMP or WebP).{found}")
    if shard is not None:
        jobs = shard_jobs(jobs, source, *shard)
    return jobs, len(readable)


def _check_writable(jobs, source: Path, out: Path | None, in_place: bool, report: Path | None) -> None:
    """Refuse, before any work, outputs or a report that could not be written (each write would fail at the end)."""
    from denoise.errors import UsageError
    from denoise.io.files import check_writable_folder

    if in_place:
        for folder in sorted({job.source.parent for job in jobs}):
            problem = check_writable_folder(folder)
            if problem:
                raise UsageError(
                    f"--in-place cannot replace the files in {folder}: {problem}. Make the folder "
                    "writable, or write the cleaned files elsewhere with --out."
                )
    elif jobs:
        folder = common_output(jobs)
        problem = check_writable_folder(folder)
        if problem:
            option = "--out" if out is not None else f"the default output folder beside {source} (--out)"
            raise UsageError(f"Cannot write the cleaned files to {folder}: {problem}. Give {option} a writable folder.")
    if report is not None:
        problem = f"{report} is a folder" if report.is_dir() else check_writable_folder(report.parent)
        if problem:
            raise UsageError(
                f"--report cannot be written to {report}: {problem}. Give --report a file path in a "
                "writable folder, e.g. --report ./report.json."
            )


def _check_model(model: Path | None, noise_kind: str | None) -> None:
    from denoise.errors import UsageError
    from denoise.nn.model_files import read_metadata

    if model is not None and noise_kind is not None:
        raise UsageError("--noise chooses among the shipped models; with --model, leave it out.")
    if model is not None:
        read_metadata(model)  # fails fast, before TensorFlow is imported, on a missing or foreign file


def _html_report(folder: Path | None, source: Path, model: Path | None, noise_kind: str | None):
    """The HTML report's collector, or None without --html."""
    if folder is None:
        return None
    from denoise.report.html import HtmlReport, describe_for_run

    return HtmlReport(folder, f"denoise run {source}", describe_for_run(model and model.stem, noise_kind))


def _write_html(pages, jobs, summary) -> None:
    from denoise.batch.runner import job_name

    names = {job.source: job_name(job) for job in jobs}
    try:
        index = pages.write([(names.get(result.source, result.source.name), result) for result in summary.results])
    except OSError as exc:
        typer.secho(f"warning: the HTML report could not be written: {exc}", err=True, fg=typer.colors.YELLOW)
        return
    typer.echo(f"report: {index}", err=True)


def _nothing_in_shard(shard: tuple[int, int], total: int, source: Path, report: Path | None) -> None:
    """An empty shard is not an error: a job array over a small folder has some. Say so, write the empty report."""
    from denoise.batch.runner import RunSummary

    index, count = shard
    typer.echo(f"shard {index}/{count} holds none of the {total} images in {source}; nothing to do", err=True)
    write_report(RunSummary(), report)


def _in_background(work):
    """Start work() on a daemon thread (it never holds up an exit); the returned function waits for its result."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            box["error"] = exc

    thread = threading.Thread(target=target, name="denoise-measure", daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def _measure(jobs, overwrite: bool):
    from denoise.batch.runner import measure

    return measure(jobs, overwrite)


def _device(cleaner) -> str:
    """Where the model runs and in what arithmetic."""
    from denoise.runtime import describe_device

    return describe_device(cleaner.threads, cleaner.precision, cleaner.runtime)


def _load_model(model: Path | None, noise_kind: str | None, settings: RunSettings, threads: int | None,
                strength: float = 1.0):
    """The library's Model (denoise.api): the file given, loaded once, or the shipped models, each when first needed."""
    from denoise.api import load_model

    return load_model(model, noise=noise_kind or "auto", strength=strength, settings=settings, threads=threads)


def _say_detected_noise(cleaner, noise_kind: str | None) -> None:
    """When detection found more than one kind of noise, or another than Gaussian, say how many images each model
    cleaned, so a wrong guess shows."""
    kinds = cleaner.noise_counts
    if noise_kind is None and set(kinds) - {GAUSSIAN}:
        counts = ", ".join(f"{count} as {kind}" for kind, count in sorted(kinds.items()))
        typer.echo(f"noise detected per image: {counts} (--noise chooses one for all)", err=True)
