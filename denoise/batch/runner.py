"""Clean planned files (plan.py): skip or overwrite, denoise in batches, record every file's fate.

Reading, denoising and writing overlap (threads.py), with the memory they hold bounded. The denoiser is any
callable taking a list of float32 HxWxC arrays in [0, 1] and returning arrays of the same shapes (inference/denoiser.py
provides the real one); one marked with takes_names also gets each image's relative path. This module never prints
or exits: it reports each finished file through a progress callback and returns a RunSummary (or raises Interrupted,
carrying one, on Ctrl-C). One bad file never stops the others. Files replaced in place are recorded in a journal
(journal.py), so a rerun after any interruption cleans only the rest.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
from PIL import Image

from denoise.batch.journal import JOURNAL_NAME, InPlaceJournal
from denoise.batch.plan import Job, parse_shard, plan_outputs, shard_jobs
from denoise.batch.settings import (
    ALONE_PIXELS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BUFFER_BYTES,
    DEFAULT_WRITERS,
)
from denoise.batch.threads import READ_DONE, STALLED, Pipeline
from denoise.errors import DenoiseError, UsageError
from denoise.interrupts import stop_on_ctrl_c
from denoise.io.files import remove_stale_temps
from denoise.io.images import LoadedImage, read_image, save_image

__all__ = ["DONE", "SKIPPED", "FAILED", "UNFINISHED", "FileResult", "ImageSize", "Interrupted", "Job", "RunSummary",
           "clean_images", "job_name", "measure", "parse_shard", "plan_outputs", "shard_jobs", "takes_names"]

Denoiser = Callable[[list[np.ndarray]], list[np.ndarray]]
Observe = Callable[[str, np.ndarray], Callable[[np.ndarray], None]]  # (name, input) -> a function of the output
DONE, SKIPPED, FAILED, UNFINISHED = "done", "skipped", "failed", "unfinished"
# Why a file was skipped, for summaries that count each kind (FileResult.skip).
OUTPUT_EXISTS, CLEANED_IN_PLACE, TYPE_NOT_READ = "output exists", "cleaned in place", "type not read"


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: status is 'done', 'skipped' or 'failed', with the reason when not done."""

    source: Path
    output: Path
    status: str
    reason: str = ""
    seconds: float = 0.0
    pixels: int = 0  # width x height of a file cleaned
    skip: str = ""  # why it was skipped: OUTPUT_EXISTS, CLEANED_IN_PLACE or TYPE_NOT_READ
    unchanged: bool = False  # done, but the output holds the input's very pixel values: no noise was found


class ImageSize(NamedTuple):
    """An image's size from its header: pixels (width x height) and colour channels; zeros when unknown."""

    pixels: int
    channels: int


@dataclass
class RunSummary:
    """Every file's result, in plan order, with counts and a machine-readable report."""

    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False

    @classmethod
    def unfinished(cls, jobs: Sequence[Job], results: Sequence[FileResult | None] = ()) -> "RunSummary":
        """An interrupted run's summary: the results it has, and every other job as unfinished."""
        results = list(results) or [None] * len(jobs)
        return cls([result or FileResult(job.source, job.output, UNFINISHED, "the run was interrupted before this "
                                         "file was cleaned; run the same command again to finish it")
                    for job, result in zip(jobs, results)], interrupted=True)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    def skipped(self, why: str) -> list[FileResult]:
        return [result for result in self.results if result.status == SKIPPED and result.skip == why]

    @property
    def counts(self) -> dict[str, int]:
        """Files per status; 'unfinished' appears only when the run was interrupted."""
        statuses = (DONE, SKIPPED, FAILED, UNFINISHED) if self.interrupted else (DONE, SKIPPED, FAILED)
        return {status: self.count(status) for status in statuses}

    @property
    def unchanged(self) -> list[FileResult]:
        """The files written with every pixel as it was: the model found no noise in them."""
        return [result for result in self.results if result.status == DONE and result.unchanged]

    @property
    def pixels_done(self) -> int:
        return sum(result.pixels for result in self.results if result.status == DONE)

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0 and not self.interrupted

    @property
    def failures(self) -> list[FileResult]:
        return [result for result in self.results if result.status == FAILED]

    def to_json(self) -> str:
        files = [{**asdict(r), "source": str(r.source), "output": str(r.output), "seconds": round(r.seconds, 4)}
                 for r in self.results]
        # Files per status, and apart from them how many of the "done" ones came out unchanged.
        return json.dumps({"ok": self.ok, "interrupted": self.interrupted, "counts": self.counts,
                           "unchanged": len(self.unchanged), "files": files},
                          indent=2, ensure_ascii=False)

    def write_report(self, path: str | os.PathLike) -> None:
        """Write to_json() to path, creating its folder."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.to_json() + "\n", encoding="utf-8")
        except OSError as exc:
            raise DenoiseError(f"Could not write the report {path}: {exc}. Choose another report path.") from exc


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during clean_images, raised once the writes already started have finished; .summary says the rest."""

    def __init__(self, summary: RunSummary):
        super().__init__("interrupted")
        self.summary = summary


def takes_names(transform: Callable[[list[np.ndarray], list[str]], list[np.ndarray]]):
    """Mark a transform that wants each image's relative path (Job.name) as a second argument, e.g. to seed noise."""
    transform.takes_names = True
    return transform


@dataclass
class _Loaded:
    index: int
    job: Job
    image: LoadedImage
    seconds: float  # time spent reading


def clean_images(jobs: Sequence[Job], denoise: Denoiser, *, overwrite: bool = False,
                 batch_size: int = DEFAULT_BATCH_SIZE, progress: Callable[[FileResult], None] | None = None,
                 buffer_bytes: int = DEFAULT_BUFFER_BYTES, writers: int = DEFAULT_WRITERS,
                 sizes: Sequence[ImageSize] | None = None, observe: Observe | None = None) -> RunSummary:
    """Denoise every job's source into its output, same-size images batched together; never stops at a bad file.

    Reading the next images and writing finished ones overlap with the denoiser; at most about buffer_bytes of
    pixels are held between them (an image larger than that runs alone). progress is called on this thread.
    sizes (from measure()) saves reading each header a second time. On Ctrl-C the writes already handed over
    finish, then Interrupted is raised with the summary so far (the other files 'unfinished'). observe(name, pixels)
    sees each input before the denoiser does and returns a function that gets its output (the HTML report).
    """
    if batch_size < 1:
        raise UsageError(f"The batch size must be at least 1, not {batch_size}.")
    results: list[FileResult | None] = [None] * len(jobs)
    journal = InPlaceJournal()
    try:
        _remove_stale_temps(jobs)
        with Pipeline(buffer_bytes, writers) as pipe:
            def record(index: int, result: FileResult) -> None:
                results[index] = result
                pipe.release(index)
                if progress is not None:
                    progress(result)

            try:
                with stop_on_ctrl_c() as stop:  # read between batches in _drive
                    _drive(pipe, jobs, denoise, record, _Settings(overwrite, batch_size, journal, sizes, observe), stop)
            except KeyboardInterrupt:
                for event in pipe.finish_writes():
                    record(*event)
                raise
    except KeyboardInterrupt:
        raise Interrupted(RunSummary.unfinished(jobs, results)) from None
    return RunSummary([result for result in results if result is not None])


@dataclass(frozen=True)
class _Settings:
    overwrite: bool
    batch_size: int
    journal: InPlaceJournal
    sizes: Sequence[ImageSize] | None
    observe: Observe | None = None


def _drive(pipe: Pipeline, jobs: Sequence[Job], denoise: Denoiser, record: Callable, settings: _Settings,
           stop: threading.Event) -> None:
    """Read ahead on the reader thread, denoise same-size groups here, write on the writers, record each result."""
    def run(batch: list[_Loaded]) -> None:
        _denoise_and_write(batch, denoise, record, pipe.write, settings.journal, settings.observe)

    def cost(item) -> tuple[int, int]:
        index, job = item
        if _skip(job, settings.overwrite, settings.journal):
            return index, 0
        size = settings.sizes[index] if settings.sizes is not None else _header(job)
        return index, 2 * 4 * size.pixels * size.channels  # its float pixels in and out

    pipe.read(list(enumerate(jobs)), cost=cost, load=lambda item: _read(*item, settings))
    groups: dict[tuple[int, ...], list[_Loaded]] = {}
    for event in pipe.events():
        if stop.is_set():
            raise KeyboardInterrupt
        if isinstance(event, _Loaded):
            _add(groups, event, settings.batch_size, run)
        elif event is READ_DONE or event is STALLED:
            _flush(groups, run)
        else:
            record(*event)


def measure(jobs: Sequence[Job], overwrite: bool = False) -> list[ImageSize]:
    """Each job's size from its image header alone (zeros for files that will be skipped or cannot be opened).

    For a progress bar that counts pixels, and for clean_images(sizes=...), which then reads no header again.
    """
    journal = InPlaceJournal()
    return [ImageSize(0, 0) if _skip(job, overwrite, journal) else _header(job) for job in jobs]


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


def _skip(job: Job, overwrite: bool, journal: InPlaceJournal) -> tuple[str, str] | None:
    """(why, reason) when a job is skipped, else None: a type not read, a done output, a file cleaned in place."""
    if job.problem:
        return None  # it fails, with its problem
    if job.unread:
        return TYPE_NOT_READ, job.unread
    if overwrite:
        return None
    if job.in_place:
        if journal.holds(job.source):
            return CLEANED_IN_PLACE, (f"{job.source} was already cleaned in place by an earlier run (it is recorded in "
                                      f"{JOURNAL_NAME} in its folder); overwrite cleans it again")
        return None
    if job.output.exists():
        return OUTPUT_EXISTS, "the output already exists; overwrite replaces it"
    return None


def _header(job: Job) -> ImageSize:
    """An image's size from its header alone (Pillow decodes no pixels for this)."""
    if job.problem:
        return ImageSize(0, 0)
    try:
        with Image.open(job.source) as image:
            width, height = image.size
            channels = 3 if len(image.getbands()) >= 3 or image.mode in ("P", "PA") else 1
    except Exception:  # noqa: BLE001 - the read itself reports what is wrong with the file
        return ImageSize(0, 0)
    return ImageSize(width * height, channels)


def _read(index: int, job: Job, settings: _Settings) -> _Loaded | tuple[int, FileResult]:
    """Read a job's image, or say why it is skipped or failed."""
    started = time.perf_counter()
    if job.problem:
        return index, FileResult(job.source, job.output, FAILED, job.problem)
    skip = _skip(job, settings.overwrite, settings.journal)
    if skip:
        return index, FileResult(job.source, job.output, SKIPPED, skip[1], skip=skip[0])
    try:
        image = read_image(job.source)
    # read_image names the known kinds of damage; anything else a decoder raises (or running out of memory on a
    # huge file) still fails only this file, on the reader thread, instead of ending the run.
    except Exception as exc:  # noqa: BLE001
        return index, _failure(job, exc, time.perf_counter() - started)
    return _Loaded(index, job, image, time.perf_counter() - started)


def _denoise_and_write(batch: list[_Loaded], denoise: Denoiser, record: Callable, write: Callable,
                       journal: InPlaceJournal, observe: Observe | None = None) -> None:
    started = time.perf_counter()
    try:
        # before the denoiser, which may clean an input in place
        observers = [observe(job_name(item.job), item.image.pixels) for item in batch] if observe else []
        outputs = _call_denoiser(denoise, batch)
    # The denoiser runs TensorFlow, whose errors (out of memory, bad input) share no base class; whatever it raises
    # fails only the files of this batch, each retried alone first so one odd image cannot sink its neighbours.
    except Exception as exc:  # noqa: BLE001
        if len(batch) > 1:
            for item in batch:
                _denoise_and_write([item], denoise, record, write, journal, observe)
            return
        item = batch[0]
        reason = f"{item.job.source}: denoising failed: {type(exc).__name__}: {exc}"
        record(item.index, _failure(item.job, reason, item.seconds + time.perf_counter() - started))
        return
    share = (time.perf_counter() - started) / len(batch)
    for observer, pixels in zip(observers, outputs):
        observer(pixels)
    for item, pixels in zip(batch, outputs):
        write(functools.partial(_write, item, pixels, item.seconds + share, journal))


def _call_denoiser(denoise: Denoiser, batch: list[_Loaded]) -> list[np.ndarray]:
    images = [item.image.pixels for item in batch]
    if getattr(denoise, "takes_names", False):
        outputs = list(denoise(images, [job_name(item.job) for item in batch]))
    else:
        outputs = list(denoise(images))
    if len(outputs) != len(images) or any(np.shape(o) != i.shape for o, i in zip(outputs, images)):
        raise DenoiseError("The denoiser returned images of other shapes than it was given. This is a bug; please "
                           "report it.")
    return outputs


def job_name(job: Job) -> str:
    """A file's name in reports: its path relative to the folder cleaned."""
    return job.name or job.source.name


def _write(item: _Loaded, pixels: np.ndarray, seconds: float, journal: InPlaceJournal) -> tuple[int, FileResult]:
    """Save one output (on a writer thread); any error becomes that file's failure."""
    started = time.perf_counter()
    job = item.job
    # In place, the new file's identity is journaled before the rename, so no rerun can ever clean it again.
    before_replace = functools.partial(journal.record, job.output) if job.in_place else None
    try:
        changed = save_image(item.image, pixels, job.output, before_replace)
    # Encoders raise more than OSError on odd data (ValueError, MemoryError); on a writer thread that must still
    # end as this file's failure, never as a lost result.
    except Exception as exc:  # noqa: BLE001
        return item.index, _failure(item.job, exc, seconds + time.perf_counter() - started)
    pixels_done = item.image.pixels.shape[0] * item.image.pixels.shape[1]
    return item.index, FileResult(job.source, job.output, DONE, "", seconds + time.perf_counter() - started,
                                  pixels_done, unchanged=not changed)


def _failure(job: Job, cause: BaseException | str, seconds: float) -> FileResult:
    # DenoiseError messages already name the file; other errors get the file's name put in front.
    reason = str(cause) if isinstance(cause, (DenoiseError, str)) else f"{job.source}: {cause}"
    return FileResult(job.source, job.output, FAILED, reason, seconds)
