"""`denoise run` and `denoise noise`: clean (or add noise to) a file or a folder tree, file by file."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise.batch.settings import DEFAULT_BATCH_SIZE
from denoise.cli.common import (
    EXIT_FAILED_FILES,
    EXIT_INTERRUPTED,
    EnsembleOption,
    NoiseOption,
    PrecisionOption,
    ThreadsOption,
    app,
    checked,
    fail,
    resolve_model,
    shard_option,
    size_option,
)
from denoise.errors import DenoiseError
from denoise.inference.settings import BFLOAT16_TILE, DEFAULT_TILE, RunSettings
from denoise.noise.specs import CAMERA_KINDS, GAUSSIAN, parse_noise_kind
from denoise.runtime import start_tensorflow


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
                f"Default: {DEFAULT_TILE}, or {BFLOAT16_TILE} in bfloat16 (more memory per pixel)."
            ),
        ),
    ] = RunSettings.tile,
    report: Annotated[Optional[Path], typer.Option(help="Write every file's outcome as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    threads: ThreadsOption = None,
    precision: PrecisionOption = RunSettings.precision,
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
            parser=checked(size_option),
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
            ensemble=ensemble,
            **({"max_batch_pixels": plan.batch_pixels} if plan else {}),
        )
        denoiser, threads = _load_denoiser(model, noise_kind, settings, threads, strength)
    except DenoiseError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        _finish_run(_unfinished(jobs), report, jobs, started)
    if not quiet:
        typer.echo(f"cleaning on {_device(denoiser, precision, threads)}", err=True)
    buffer = plan.buffer_bytes if plan else DEFAULT_BUFFER_BYTES
    writers = min(DEFAULT_WRITERS, 2 * threads)
    summary = _run_with_progress(
        jobs,
        sizes(),
        lambda progress, measured: clean_images(
            jobs,
            denoiser,
            overwrite=overwrite,
            batch_size=batch_size,
            progress=progress,
            buffer_bytes=buffer,
            writers=writers,
            sizes=measured,
        ),
        quiet,
        "denoising",
    )
    _say_detected_noise(denoiser, noise_kind)
    _finish_run(summary, report, jobs, started)


def _plan_run(source: Path, out: Path | None, in_place: bool, shard: tuple[int, int] | None):
    """The jobs of this run (of its shard) and how many images the whole source holds; no images at all fails."""
    from denoise.batch.runner import plan_outputs, shard_jobs
    from denoise.errors import UsageError

    jobs = plan_outputs(source, out, in_place=in_place)
    readable = [job for job in jobs if not job.unread]
    if not readable:
        unread = [job for job in jobs if job.unread]
        found = (
            f" It holds {len(unread)} of other types: {_by_type(unread)}; {_convert_hint(unread)}." if unread else ""
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
        folder = _common_output(jobs)
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


def _nothing_in_shard(shard: tuple[int, int], total: int, source: Path, report: Path | None) -> None:
    """An empty shard is not an error: a job array over a small folder has some. Say so, write the empty report."""
    from denoise.batch.runner import RunSummary

    index, count = shard
    typer.echo(f"shard {index}/{count} holds none of the {total} images in {source}; nothing to do", err=True)
    _write_report(RunSummary(), report)


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


def _unfinished(jobs):
    from denoise.batch.runner import RunSummary

    return RunSummary.unfinished(jobs)


def _device(denoiser, precision: str, threads: int) -> str:
    """Where the model runs and in what arithmetic (the shipped models load lazily, so theirs is resolved here)."""
    from denoise.runtime import describe_device, resolve_precision

    resolved = getattr(denoiser, "precision", None) or resolve_precision(precision)
    return describe_device(threads, resolved)


def _load_denoiser(
    model: Path | None, noise_kind: str | None, settings: RunSettings, threads: int | None, strength: float = 1.0
):
    """The model to run (loaded once; the shipped defaults each when first needed) and TensorFlow's thread count."""
    threads = start_tensorflow(threads)
    from denoise.inference.denoiser import load_denoiser
    from denoise.inference.shipped import DefaultDenoiser
    from denoise.inference.strength import WithStrength

    denoiser = DefaultDenoiser(noise_kind, settings) if model is None else load_denoiser(model, settings)
    return (denoiser if strength == 1.0 else WithStrength(denoiser, strength)), threads


def _say_detected_noise(denoiser, noise_kind: str | None) -> None:
    """When detection found more than one kind of noise, or another than Gaussian, say how many images each model
    cleaned, so a wrong guess shows."""
    kinds = {kind: count for kind, count in getattr(denoiser, "kinds", {}).items() if count}
    if noise_kind is None and set(kinds) - {GAUSSIAN}:
        counts = ", ".join(f"{count} as {kind}" for kind, count in sorted(kinds.items()))
        typer.echo(f"noise detected per image: {counts} (--noise chooses one for all)", err=True)


def _run_with_progress(jobs, sizes, work, quiet: bool, label: str):
    """Run `work(progress_callback, sizes)` under a bar counting megapixels; failures are printed as they happen.

    Counting pixels rather than files keeps the ETA right from the first image on folders of mixed sizes. Ctrl-C
    ends the work early; the summary then lists the files not cleaned as unfinished.
    """
    from tqdm import tqdm

    from denoise.batch.runner import Interrupted

    megapixels = {job.source: size.pixels / 1e6 for job, size in zip(jobs, sizes)}
    total = sum(megapixels.values())
    digits = 1 if total >= 10 else 3  # a folder of thumbnails would otherwise show 0.0/0.0 MP
    bar_format = (
        f"{{desc}}: {{percentage:3.0f}}%|{{bar}}| {{n:.{digits}f}}/{{total:.{digits}f}} MP "
        "[{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
    )
    with tqdm(total=total, unit="MP", desc=label, disable=quiet, file=sys.stderr, bar_format=bar_format) as bar:
        finished = 0

        def progress(result):
            nonlocal finished
            finished += 1
            bar.set_postfix_str(f"{finished}/{len(jobs)} files", refresh=False)
            bar.update(megapixels.get(result.source, 0.0))
            if result.status == "failed":
                # Reasons usually name the file already; name it when one does not.
                named = str(result.source) in result.reason
                bar.write(f"failed: {result.reason if named else f'{result.source}: {result.reason}'}", file=sys.stderr)

        try:
            return work(progress, sizes)
        except Interrupted as stop:
            return stop.summary
        except KeyboardInterrupt:
            return _unfinished(jobs)


def _finish_run(summary, report: Path | None, jobs, started: float, cleaning: bool = True) -> None:
    """Print the summary line (and the files skipped for their type, and when cleaning those left unchanged), write
    the report, exit with the right code."""
    from denoise.batch.runner import TYPE_NOT_READ

    _list_unread(summary.skipped(TYPE_NOT_READ))
    if cleaning:
        _list_unchanged(summary.unchanged)
    typer.echo(_summary_line(summary, jobs, time.monotonic() - started, cleaning), err=True)
    if summary.interrupted:
        typer.echo(
            "interrupted: files already written are whole; run the same command again to finish the rest", err=True
        )
    _write_report(summary, report)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED_FILES)


def _summary_line(summary, jobs, seconds: float, cleaning: bool = True) -> str:
    """E.g. '5 done, 2 skipped (2 outputs exist, --overwrite redoes them), 0 failed in 12.3 s (1.42 MP/s); outputs
    under DIR'."""
    from denoise.batch.runner import CLEANED_IN_PLACE, OUTPUT_EXISTS, TYPE_NOT_READ

    counts = summary.counts
    why = []
    if summary.skipped(OUTPUT_EXISTS):
        why.append(f"{len(summary.skipped(OUTPUT_EXISTS))} outputs exist, --overwrite redoes them")
    if summary.skipped(CLEANED_IN_PLACE):
        why.append(f"{len(summary.skipped(CLEANED_IN_PLACE))} already cleaned in place, --overwrite cleans them again")
    unread = summary.skipped(TYPE_NOT_READ)
    if unread:
        why.append(f"{len(unread)} of types denoise does not read: {_by_type(unread)}; {_convert_hint(unread)}")
    because = f" ({'; '.join(why)})" if why else ""
    unchanged = len(summary.unchanged) if cleaning else 0
    done = f"{counts['done']} done" + (f" ({unchanged} of them unchanged: no noise found)" if unchanged else "")
    line = f"{done}, {counts['skipped']} skipped{because}, {counts['failed']} failed"
    if summary.interrupted:
        line = f"interrupted: {line}, {counts['unfinished']} unfinished"
    rate = summary.pixels_done / 1e6 / seconds if seconds > 0 else 0.0
    line += f" in {seconds:.1f} s ({rate:.3g} MP/s)"
    return line + (f"; outputs under {_common_output(jobs)}" if jobs else "")


def _by_type(items) -> str:
    """'2 .heic, 1 .nef' from jobs or results whose source files denoise does not read."""
    counts = Counter(item.source.suffix.lower() for item in items)
    return ", ".join(f"{count} {suffix}" for suffix, count in counts.most_common())


def _convert_hint(items) -> str:
    from denoise.batch.plan import UNREAD_TYPES

    raw = any(UNREAD_TYPES.get(item.source.suffix.lower(), ("",))[0] == "a camera raw file" for item in items)
    return f"{'develop or ' if raw else ''}convert them to PNG, JPEG or TIFF first"


def _list_unread(results, shown: int = 5) -> None:
    # Named one by one, up to a few: a folder of RAW+JPEG pairs would otherwise print a line per photo.
    for result in results[:shown]:
        typer.echo(f"skipped: {result.reason}", err=True)
    if len(results) > shown:
        typer.echo(
            f"skipped: {len(results) - shown} more of types denoise does not read (--report lists them all)", err=True
        )


def _list_unchanged(results, shown: int = 5) -> None:
    """Name the files written with every pixel as it was, so a photo the model saw no noise in is not taken as
    cleaned."""
    for result in results[:shown]:
        typer.echo(
            f"unchanged: {result.source}: no noise found, its pixels are as they were (if it is noisy, "
            "choose the model with --noise)",
            err=True,
        )
    if len(results) > shown:
        typer.echo(f"unchanged: {len(results) - shown} more (--report lists them all)", err=True)


def _write_report(summary, report: Path | None) -> None:
    if report is not None:
        try:
            summary.write_report(report)
        except DenoiseError as exc:
            fail(str(exc))


def _common_output(jobs) -> Path:
    return Path(os.path.commonpath([str(job.output.parent) for job in jobs]))


@app.command()
def noise(
    source: Annotated[Path, typer.Argument(help="A clean image or folder tree.", exists=True)],
    out: Annotated[Path, typer.Argument(help="Where the noisy copies go (mirrors the input tree).")],
    noise: NoiseOption = "gaussian:25",
    seed: Annotated[
        int,
        typer.Option(
            help="The same seed and file (by its path relative to SOURCE) give the same "
            "noise, whatever else is in the folder."
        ),
    ] = 0,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Write noisy copies of clean images (to try denoise out, or to evaluate it on your own files)."""
    from denoise.batch.runner import clean_images, measure, plan_outputs

    started = time.monotonic()
    try:
        jobs = plan_outputs(source, out)
    except DenoiseError as exc:
        fail(str(exc))
    if not any(not job.unread for job in jobs):
        fail(f"No images found in {source} (PNG, JPEG, TIFF, BMP or WebP).")
    if noise.kind in CAMERA_KINDS:
        start_tensorflow()  # camera noise runs the camera's pipeline in TensorFlow: load it quietly, once
    summary = _run_with_progress(
        jobs,
        measure(jobs, overwrite),
        lambda progress, sizes: clean_images(
            jobs, seeded_noise(noise, seed), overwrite=overwrite, progress=progress, sizes=sizes
        ),
        quiet,
        "adding noise",
    )
    _finish_run(summary, None, jobs, started, cleaning=False)


def seeded_noise(spec, seed: int):
    """A transform adding noise to each image from its own generator, seeded by (seed, its relative path).

    One generator shared across files would hand each file whatever draws came next: the noise would depend on the
    order, the batch size and thread timing. Per file it depends on nothing else.
    """
    import numpy as np

    from denoise.batch.plan import stable_hash
    from denoise.batch.runner import takes_names
    from denoise.noise.specs import add_noise

    @takes_names
    def add(images, names):
        return [
            add_noise(image, spec, np.random.default_rng([seed % 2**64, stable_hash(name)]))
            for image, name in zip(images, names)
        ]

    return add
