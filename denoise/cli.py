"""The `denoise` command line: the one place that prints, exits and draws progress bars.

TensorFlow takes seconds to import, so it is imported only inside the commands that run a model; `denoise --help`,
`--version`, `datasets` and `info` never load it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from denoise import __version__
from denoise.errors import DenoiseError
from denoise.noise import EXAMPLES as NOISE_EXAMPLES
from denoise.noise import NoiseSpec, parse_noise

app = typer.Typer(
    help="Clean folders of noisy images in one command; train a denoising autoencoder on your own images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_FAILED_FILES = 1  # the run finished but some files failed
EXIT_ERROR = 2  # nothing was done: bad arguments, missing model, unknown dataset...
EXIT_INTERRUPTED = 130


def _noise(text: str) -> NoiseSpec:
    try:
        return parse_noise(text)
    except DenoiseError as exc:
        raise typer.BadParameter(str(exc)) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"denoise {__version__}")
        raise typer.Exit()


def fail(message: str, code: int = EXIT_ERROR) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _quiet_tensorflow(threads: int | None = None) -> int:
    """Import TensorFlow without its start-up chatter, its thread pools sized first; returns the thread count."""
    from denoise.resources import start_tensorflow

    return start_tensorflow(threads)


def _checked(parse):
    """A Typer parser from a function that raises DenoiseError, so a bad value exits 2 with its message."""
    def parser(text: str):
        try:
            return parse(text)
        except DenoiseError as exc:
            raise typer.BadParameter(str(exc)) from None
    return parser


def _shard(text: str) -> tuple[int, int]:
    from denoise.plan import parse_shard

    return parse_shard(text)


def _size(text: str) -> int:
    from denoise.resources import parse_size

    return parse_size(text)


@app.callback()
def main_options(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Clean folders of noisy images; train, evaluate and inspect denoising models."""


NoiseOption = Annotated[
    NoiseSpec, typer.Option(parser=_noise, metavar="SPEC", help=f"Noise to add, e.g. {NOISE_EXAMPLES}.")
]
DatasetOption = Annotated[str, typer.Option("--dataset", "-d", help="A dataset loader; see `denoise datasets`.")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    min=1, help="Use at most N cores: TensorFlow's intra-op pool gets N threads (inter-op: up to 2); run also "
                "keeps one reader and at most 2N writer threads (they mostly wait for the disk). Default: every core "
                "this process may use (its CPU affinity).")]
PathOption = Annotated[
    Optional[Path],
    typer.Option("--path", "--data-dir", help="Where the dataset's files lie (a folder of images for 'folder')."),
]


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
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace the originals (each only once its "
                                                              "new version is fully written).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist (default: skip them).")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Same-size images cleaned together.")] = 8,
    tile: Annotated[int, typer.Option(min=64, help="Images larger than this many pixels a side are cleaned in "
                                                   "overlapping tiles, which bounds memory.")] = 1024,
    report: Annotated[Optional[Path], typer.Option(help="Write every file's outcome as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    threads: ThreadsOption = None,
    shard: Annotated[Optional[str], typer.Option(
        callback=lambda text: text and _checked(_shard)(text), metavar="K/N", help="Clean only shard K of N (0 <= K < N), chosen by a stable hash "
        "of each file's relative path: N copies (a Slurm array, a Kubernetes Indexed Job) split one folder with "
        "no overlap and no coordination.")] = None,
    max_memory: Annotated[Optional[int], typer.Option(
        parser=_checked(_size), metavar="SIZE", help="Peak memory target, e.g. 2G (at least 1G): sizes the read-ahead "
        "and write-behind buffers and the pixels per model call. Default: about 2G for the default model. An image "
        "larger than the buffers still runs, alone, in tiles (about 4 bytes per pixel and channel).")] = None,
) -> None:
    """Denoise an image or a whole folder tree; originals are never touched unless --in-place.

    Each output keeps its file's format, size, mode, EXIF and colour profile and is written atomically. A file that
    fails is reported and the others go on; the exit code is 1 if any file failed, 2 if nothing could start.
    """
    from denoise.batch import DEFAULT_BUFFER_BYTES, DEFAULT_WRITERS, clean_images, plan_outputs, shard_jobs
    from denoise.resources import memory_plan

    try:
        jobs = plan_outputs(source, out, in_place=in_place)
        if shard is not None:
            jobs = shard_jobs(jobs, source, *shard)
        plan = memory_plan(max_memory) if max_memory else None
        denoiser, threads = _load_denoiser(model, tile, plan.batch_pixels if plan else None, threads)
    except DenoiseError as exc:
        fail(str(exc))
    buffer = plan.buffer_bytes if plan else DEFAULT_BUFFER_BYTES
    writers = min(DEFAULT_WRITERS, 2 * threads)
    summary = _run_with_progress(jobs, lambda progress: clean_images(
        jobs, denoiser, overwrite=overwrite, batch_size=batch_size, progress=progress, buffer_bytes=buffer,
        writers=writers), quiet, "denoising")
    _finish_run(summary, report, jobs)


def _load_denoiser(model: Path | None, tile: int, batch_pixels: int | None, threads: int | None):
    """The model to run (loaded once; the shipped defaults each when first needed) and TensorFlow's thread count."""
    from denoise.model_files import read_metadata

    if model is not None:
        read_metadata(model)  # fails fast, before TensorFlow is imported, on a missing or foreign file
    threads = _quiet_tensorflow(threads)
    from denoise.inference import DefaultDenoiser, Denoiser
    from denoise.models import load_model

    # The batch code owns the pixels it hands over, so a lone large image may be cleaned in place.
    options = {"tile": tile, "reuse_input": True, **({"max_batch_pixels": batch_pixels} if batch_pixels else {})}
    if model is None:
        return DefaultDenoiser(**options), threads
    return Denoiser(load_model(model)[0], **options), threads


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


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the trained model (.keras).")],
    dataset: DatasetOption = "folder",
    path: PathOption = None,
    noise: NoiseOption = "gaussian:0-50",
    arch: Annotated[str, typer.Option(help="unet (default), conv (no skips) or dense (784-32-784, 28x28 only).")] = "unet",
    width: Annotated[int, typer.Option(min=4, help="Filters at the first scale (unet, conv).")] = 32,
    depth: Annotated[int, typer.Option(min=1, max=5, help="Number of downsampling scales (unet).")] = 3,
    channels: Annotated[Optional[int], typer.Option(min=1, max=3, help="1 = grayscale, 3 = colour; default: as stored.")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    patch_size: Annotated[int, typer.Option(min=8, help="Side of the square training patches.")] = 64,
    steps_per_epoch: Annotated[Optional[int], typer.Option(min=1, help="Default: one pass over the patches.")] = None,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    lr_schedule: Annotated[str, typer.Option(help="cosine (decays to 2% by the last epoch) or constant.")] = "cosine",
    validation_fraction: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.1,
    seed: int = 0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Use at most this many source images.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint beside --out.")] = False,
    init_from: Annotated[Optional[Path], typer.Option(help="Fine-tune: start from this model's architecture and "
                                                          "weights with a fresh optimizer (e.g. a shipped model).")] = None,
    threads: ThreadsOption = None,
    distribute: Annotated[bool, typer.Option(help="Train on every GPU of this machine at once (TensorFlow's "
                                                  "MirroredStrategy; --batch-size is split between them).")] = False,
) -> None:
    """Train a denoising model: clean images in, noise added on the fly, the best epoch kept at --out."""
    _quiet_tensorflow(threads)
    from denoise.training import TrainConfig, train as run_training

    config = TrainConfig(
        dataset=dataset, noise=noise, out=out, data_path=path, arch=arch, width=width, depth=depth,
        channels=channels, epochs=epochs, batch_size=batch_size, patch_size=patch_size,
        steps_per_epoch=steps_per_epoch, learning_rate=learning_rate, lr_schedule=lr_schedule,
        validation_fraction=validation_fraction, seed=seed, limit=limit, resume=resume, init_from=init_from,
        distribute=distribute,
    )
    try:
        result = run_training(config, on_epoch=_print_epoch)
    except DenoiseError as exc:
        fail(str(exc))
    for problem in _dataset_problems(result.dataset_notes):
        typer.secho(f"warning: {problem}", err=True, fg=typer.colors.YELLOW)
    if result.interrupted:
        typer.echo(f"Interrupted after {result.epochs_done} epochs; the best model so far is at {out}. "
                   "Continue with the same command plus --resume.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    typer.echo(f"Done: {result.epochs_done} epochs, best validation PSNR {result.best_psnr:.2f} dB, model at {out}")


def _dataset_problems(notes: dict) -> list[str]:
    """What a loader left out (unreadable or too small images), as lines worth a warning."""
    problems = []
    for key, what in (("skipped_unreadable", "unreadable"), ("skipped_too_small", "smaller than --patch-size")):
        skipped = notes.get(key) or []
        if skipped:
            shown = ", ".join(str(item) for item in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            problems.append(f"{len(skipped)} images were left out as {what}: {shown}")
    return problems


def _print_epoch(report) -> None:
    mark = "  (best, saved)" if report.best else ""
    typer.echo(
        f"epoch {report.epoch}/{report.epochs}  loss {report.loss:.5f}  validation PSNR: noisy "
        f"{report.noisy_psnr:.2f} dB -> denoised {report.denoised_psnr:.2f} dB  [{report.seconds:.0f}s]{mark}"
    )


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Argument(help="The .keras model to evaluate.")],
    dataset: DatasetOption = "folder",
    path: PathOption = None,
    noise: NoiseOption = "gaussian:25",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Evaluate at most this many images.")] = None,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print per-image scores as JSON.")] = False,
) -> None:
    """Print PSNR and SSIM of the noisy input and of the model's output on a dataset's images."""
    _quiet_tensorflow()
    from denoise.datasets import LoadRequest, load_dataset
    from denoise.evaluation import evaluate as run_evaluation
    from denoise.inference import Denoiser
    from denoise.models import load_model

    try:
        keras_model, _ = load_model(model)
        request = LoadRequest(path=path, patch_size=None, validation_fraction=1.0, seed=seed, limit=limit)
        images = list(load_dataset(dataset, request).validation)[:limit]
        report = run_evaluation(Denoiser(keras_model), images, noise, seed=seed)
    except DenoiseError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    s = report.summary()
    typer.echo(f"{s['count']} images, noise {s['noise']}")
    typer.echo(f"  noisy input : PSNR {s['noisy_psnr']:6.2f} dB   SSIM {s['noisy_ssim']:.4f}")
    typer.echo(f"  denoised    : PSNR {s['denoised_psnr']:6.2f} dB   SSIM {s['denoised_ssim']:.4f}")


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
def info(model: Annotated[Path, typer.Argument(help="A .keras model file.")]) -> None:
    """Show what a model is and how it was trained (reads its metadata; no TensorFlow needed)."""
    from denoise.model_files import describe_model_file

    try:
        lines = describe_model_file(model)
    except DenoiseError as exc:
        fail(str(exc))
    for line in lines:
        typer.echo(line)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="denoise")


if __name__ == "__main__":
    sys.exit(main())
