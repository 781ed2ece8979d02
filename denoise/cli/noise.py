"""`denoise noise`: noisy copies of clean images, seeded per file, through the same batch code as `run`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from denoise.cli.common import NoiseOption, app, fail
from denoise.cli.progress import finish_run, run_with_progress
from denoise.errors import DenoiseError
from denoise.noise.specs import CAMERA_JPEG, CAMERA_KINDS
from denoise.runtime import start_tensorflow


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
    _warn_of_jpeg_copies(jobs, noise)
    if noise.kind in CAMERA_KINDS:
        start_tensorflow()  # camera noise runs the camera's pipeline in TensorFlow: load it quietly, once
    summary = run_with_progress(
        jobs,
        measure(jobs, overwrite),
        lambda progress, sizes: clean_images(
            jobs, seeded_noise(noise, seed), overwrite=overwrite, progress=progress, sizes=sizes
        ),
        quiet,
        "adding noise",
    )
    finish_run(summary, None, jobs, started, cleaning=False)


JPEG_SUFFIXES = (".jpg", ".jpeg")


def _warn_of_jpeg_copies(jobs, spec) -> None:
    """A copy keeps its original's format, and JPEG compresses the noise just added: it comes out weaker and spread
    over neighbouring pixels, no longer the noise asked for. Say so, with the way round it."""
    lossy = [job for job in jobs if not job.unread and job.output.suffix.lower() in JPEG_SUFFIXES]
    if lossy and spec.kind != CAMERA_JPEG:  # that noise ends in JPEG anyway
        typer.secho(f"warning: {len(lossy)} of the copies ({lossy[0].name} first) are saved as JPEG, as their "
                    f"originals are, and JPEG weakens the added noise and spreads it over neighbouring pixels: they "
                    f"will not carry exactly {spec}. Convert the originals to PNG first for exact noise.",
                    err=True, fg=typer.colors.YELLOW)


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
