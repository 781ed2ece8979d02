"""Clean planned files (plan.py): skip or overwrite, denoise in batches, record every file's fate.

Reading, denoising and writing overlap (pipeline.py), with the memory they hold bounded. The denoiser is any callable taking a list of float32 HxWxC arrays in [0, 1] and returning arrays of the same
shapes (inference.py provides the real one). This module never prints or exits: it reports each finished file
through a progress callback and returns a RunSummary. One bad file never stops the others.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from denoise.errors import DenoiseError, UsageError
from denoise.files import remove_stale_temps
from denoise.images import LoadedImage, read_image, save_image
from denoise.pipeline import READ_DONE, STALLED, Pipeline
from denoise.plan import Job, parse_shard, plan_outputs, shard_jobs

__all__ = ["DONE", "SKIPPED", "FAILED", "FileResult", "Job", "RunSummary", "clean_images", "parse_shard",
           "plan_outputs", "shard_jobs"]

Denoiser = Callable[[list[np.ndarray]], list[np.ndarray]]
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
DEFAULT_BATCH_SIZE = 8
# Float pixels read ahead or waiting to be written, whatever the batch size and image sizes (see pipeline.py).
DEFAULT_BUFFER_BYTES = 512 * 2**20
# Writers mostly wait for fsync (two per file: the file, then its folder), so more of them than cores pay off.
DEFAULT_WRITERS = 4
# Images this large are cleaned alone: the model already gets a full batch from one, and alone it may be cleaned
# in place (inference.Denoiser's reuse_input), which a failed batch could not then retry file by file.
ALONE_PIXELS = 1_000_000


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: status is 'done', 'skipped' or 'failed', with the reason when not done."""

    source: Path
    output: Path
    status: str
    reason: str = ""
    seconds: float = 0.0


@dataclass
class RunSummary:
    """Every file's result, in plan order, with counts and a machine-readable report."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def counts(self) -> dict[str, int]:
        return {status: self.count(status) for status in (DONE, SKIPPED, FAILED)}

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0

    @property
    def failures(self) -> list[FileResult]:
        return [result for result in self.results if result.status == FAILED]

    def to_json(self) -> str:
        files = [{**asdict(r), "source": str(r.source), "output": str(r.output), "seconds": round(r.seconds, 4)}
                 for r in self.results]
        return json.dumps({"ok": self.ok, "counts": self.counts, "files": files}, indent=2, ensure_ascii=False)

    def write_report(self, path: str | os.PathLike) -> None:
        """Write to_json() to path, creating its folder."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.to_json() + "\n", encoding="utf-8")
        except OSError as exc:
            raise DenoiseError(f"Could not write the report {path}: {exc}. Choose another report path.") from exc


@dataclass
class _Loaded:
    index: int
    job: Job
    image: LoadedImage
    seconds: float  # time spent reading


def clean_images(jobs: Sequence[Job], denoise: Denoiser, *, overwrite: bool = False,
                 batch_size: int = DEFAULT_BATCH_SIZE, progress: Callable[[FileResult], None] | None = None,
                 buffer_bytes: int = DEFAULT_BUFFER_BYTES, writers: int = DEFAULT_WRITERS) -> RunSummary:
    """Denoise every job's source into its output, same-size images batched together; never stops at a bad file.

    Reading the next images and writing finished ones overlap with the denoiser; at most about buffer_bytes of
    pixels are held between them (an image larger than that runs alone). progress is called on this thread.
    """
    if batch_size < 1:
        raise UsageError(f"The batch size must be at least 1, not {batch_size}.")
    results: list[FileResult | None] = [None] * len(jobs)
    _remove_stale_temps(jobs)
    with Pipeline(buffer_bytes, writers) as pipe:
        def record(index: int, result: FileResult) -> None:
            results[index] = result
            pipe.release(index)
            if progress is not None:
                progress(result)

        def run(batch: list[_Loaded]) -> None:
            _denoise_and_write(batch, denoise, record, pipe.write)

        pipe.read(list(enumerate(jobs)), cost=lambda item: (item[0], _cost(item[1], overwrite)),
                  load=lambda item: _read(item[0], item[1], overwrite))
        groups: dict[tuple[int, ...], list[_Loaded]] = {}
        for event in pipe.events():
            if isinstance(event, _Loaded):
                _add(groups, event, batch_size, run)
            elif event is READ_DONE or event is STALLED:
                _flush(groups, run)
            else:
                record(*event)
    return RunSummary([result for result in results if result is not None])


def _add(groups: dict, loaded: _Loaded, batch_size: int, run: Callable) -> None:
    """Queue an image with others of its shape; run a group once it is full, or everything once too much waits."""
    shape = loaded.image.pixels.shape
    if loaded.image.pixels[..., 0].size >= ALONE_PIXELS:
        run([loaded])
        return
    group = groups.setdefault(shape, [])
    group.append(loaded)
    if len(group) >= batch_size:
        run(groups.pop(shape))
    elif sum(len(group) for group in groups.values()) > 4 * batch_size:
        _flush(groups, run)


def _flush(groups: dict, run: Callable) -> None:
    for shape in sorted(groups):
        run(groups[shape])
    groups.clear()


def _remove_stale_temps(jobs: Sequence[Job]) -> None:
    # A run killed mid-write leaves a hidden temp file beside the output; the rerun that finishes the rest sweeps it.
    names: dict[Path, set[str]] = {}
    for job in jobs:
        names.setdefault(job.output.parent, set()).add(job.output.name)
    for folder, in_folder in names.items():
        remove_stale_temps(folder, in_folder)


def _skips(job: Job, overwrite: bool) -> bool:
    return not overwrite and not job.in_place and job.output.exists()


def _cost(job: Job, overwrite: bool) -> int:
    """Bytes a job will hold while in flight, from the image header alone: its float pixels in and out."""
    if job.problem or _skips(job, overwrite):
        return 0
    try:
        with Image.open(job.source) as image:
            width, height = image.size
            channels = 3 if len(image.getbands()) >= 3 or image.mode in ("P", "PA") else 1
    except Exception:  # noqa: BLE001 - the read itself reports what is wrong with the file
        return 0
    return 2 * 4 * width * height * channels


def _read(index: int, job: Job, overwrite: bool) -> _Loaded | tuple[int, FileResult]:
    """Read a job's image, or say why it is skipped or failed."""
    started = time.perf_counter()
    if job.problem:
        return index, FileResult(job.source, job.output, FAILED, job.problem)
    if _skips(job, overwrite):
        return index, FileResult(job.source, job.output, SKIPPED, "the output already exists; overwrite replaces it")
    try:
        image = read_image(job.source)
    # read_image names the known kinds of damage; anything else a decoder raises (or running out of memory on a
    # huge file) still fails only this file, on the reader thread, instead of ending the run.
    except Exception as exc:  # noqa: BLE001
        return index, _failure(job, exc, time.perf_counter() - started)
    return _Loaded(index, job, image, time.perf_counter() - started)


def _denoise_and_write(batch: list[_Loaded], denoise: Denoiser, record: Callable, write: Callable) -> None:
    started = time.perf_counter()
    try:
        outputs = _call_denoiser(denoise, [item.image.pixels for item in batch])
    # The denoiser runs TensorFlow, whose errors (out of memory, bad input) share no base class; whatever it raises
    # fails only the files of this batch, each retried alone first so one odd image cannot sink its neighbours.
    except Exception as exc:  # noqa: BLE001
        if len(batch) > 1:
            for item in batch:
                _denoise_and_write([item], denoise, record, write)
            return
        item = batch[0]
        reason = f"{item.job.source}: denoising failed: {type(exc).__name__}: {exc}"
        record(item.index, _failure(item.job, reason, item.seconds + time.perf_counter() - started))
        return
    share = (time.perf_counter() - started) / len(batch)
    for item, pixels in zip(batch, outputs):
        write(functools.partial(_write, item, pixels, item.seconds + share))


def _call_denoiser(denoise: Denoiser, images: list[np.ndarray]) -> list[np.ndarray]:
    outputs = list(denoise(images))
    if len(outputs) != len(images) or any(np.shape(o) != i.shape for o, i in zip(outputs, images)):
        raise DenoiseError("The denoiser returned images of other shapes than it was given. This is a bug; please "
                           "report it.")
    return outputs


def _write(item: _Loaded, pixels: np.ndarray, seconds: float) -> tuple[int, FileResult]:
    """Save one output (on a writer thread); any error becomes that file's failure."""
    started = time.perf_counter()
    try:
        save_image(item.image, pixels, item.job.output)
    # Encoders raise more than OSError on odd data (ValueError, MemoryError); on a writer thread that must still
    # end as this file's failure, never as a lost result.
    except Exception as exc:  # noqa: BLE001
        return item.index, _failure(item.job, exc, seconds + time.perf_counter() - started)
    return item.index, FileResult(item.job.source, item.job.output, DONE, "", seconds + time.perf_counter() - started)


def _failure(job: Job, cause: BaseException | str, seconds: float) -> FileResult:
    # DenoiseError messages already name the file; other errors get the file's name put in front.
    reason = str(cause) if isinstance(cause, (DenoiseError, str)) else f"{job.source}: {cause}"
    return FileResult(job.source, job.output, FAILED, reason, seconds)
