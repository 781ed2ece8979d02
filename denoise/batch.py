"""Clean a file or a folder tree: plan output paths, skip or overwrite, denoise in batches, record every file's fate.

The denoiser is any callable taking a list of float32 HxWxC arrays in [0, 1] and returning arrays of the same
shapes (inference.py provides the real one). This module never prints or exits: it reports each finished file
through a progress callback and returns a RunSummary. One bad file never stops the others.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from denoise.errors import DenoiseError, UsageError
from denoise.images import IMAGE_SUFFIXES, LoadedImage, read_image, remove_stale_temps, save_image

Denoiser = Callable[[list[np.ndarray]], list[np.ndarray]]
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
OUTPUT_SUFFIX = "-denoised"
DEFAULT_BATCH_SIZE = 8
# Bounds the float pixels held at once (about 0.8 GB for RGB), whatever the batch size and image sizes.
MAX_BUFFERED_PIXELS = 64_000_000


@dataclass(frozen=True)
class Job:
    """One planned file: where it is read from and written to; `problem` marks an entry already known to fail."""

    source: Path
    output: Path
    problem: str | None = None

    @property
    def in_place(self) -> bool:
        return self.output == self.source


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


def plan_outputs(source: str | os.PathLike, out: str | os.PathLike | None = None, in_place: bool = False) -> list[Job]:
    """Plan one Job per image under source (a file or folder), mirroring the tree into the output folder.

    Defaults: a folder `photos` goes to the sibling folder `photos-denoised`; a file `a.png` to `a-denoised.png`
    beside it. Hidden files and folders are skipped (they include our own temp files and macOS `._` companions).
    """
    source = Path(source)
    if not source.exists():
        raise UsageError(f"{source} does not exist. Give an image file or a folder of images.")
    if in_place and out is not None and not _same(Path(out), source):
        raise UsageError("Give either an output path or in-place, not both.")
    jobs = _plan_file(source, out, in_place) if source.is_file() else _plan_folder(source, out, in_place)
    if not in_place:
        _refuse_collisions(jobs)
    return jobs


def _plan_file(source: Path, out: str | os.PathLike | None, in_place: bool) -> list[Job]:
    if in_place:
        # The atomic rename replaces a symlink itself with the new file; the file it pointed to stays as it was.
        return [Job(source, source)]
    if out is None:
        return [Job(source, source.with_name(f"{source.stem}{OUTPUT_SUFFIX}{source.suffix}"))]
    out = Path(out)
    if out.is_dir() or out.suffix.lower() not in IMAGE_SUFFIXES:
        out = out / source.name
    extensions = Image.registered_extensions()
    if extensions.get(out.suffix.lower()) != extensions.get(source.suffix.lower()):
        raise UsageError(f"The output {out} has another format than {source}; denoise keeps each file's format. "
                         f"Give an output ending in {source.suffix}.")
    return [Job(source, out)]


def _plan_folder(source: Path, out: str | os.PathLike | None, in_place: bool) -> list[Job]:
    if in_place:
        return [Job(path, path, problem) for path, problem in _walk(source, exclude=None)]
    out = Path(out) if out is not None else source.parent / f"{source.name}{OUTPUT_SUFFIX}"
    if _same(out, source):
        raise UsageError(f"The output folder {out} is the input folder. Choose another folder, or ask for in-place "
                         "to replace the originals.")
    _check_output_folder(out)
    # An output folder inside the input folder is left out of the walk, so a rerun never denoises its own outputs.
    return [Job(path, out / path.relative_to(source), problem) for path, problem in _walk(source, exclude=out)]


def _check_output_folder(out: Path) -> None:
    # Said once, before any work, rather than as the same failure for every file.
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir():
        raise UsageError(f"The output folder {out} cannot be created: {existing} is a file. Choose another output "
                         "folder.")


def _walk(root: Path, exclude: Path | None) -> Iterator[tuple[Path, str | None]]:
    """Image files under root in sorted order, with a problem for each symlinked folder that loops."""
    excluded = os.path.realpath(exclude) if exclude is not None else None
    yield from _walk_folder(root, excluded, ancestors=frozenset({_identity(root)}))


def _walk_folder(folder: Path, excluded: str | None, ancestors: frozenset) -> Iterator[tuple[Path, str | None]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        yield folder, f"The folder {folder} cannot be listed ({exc.strerror or exc}). Check its permissions."
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue
        if _is_folder(entry):
            if os.path.realpath(path) == excluded:
                continue
            identity = _identity(path)
            if identity in ancestors:
                yield path, f"{path} is a symbolic link back into its own parent folders (a loop); it was skipped."
                continue
            yield from _walk_folder(path, excluded, ancestors | {identity})
        elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            yield path, None


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _same(first: Path, second: Path) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def _refuse_collisions(jobs: Sequence[Job]) -> None:
    # A badly chosen output folder (say, a parent of the input) could map one input onto another input's path.
    sources = {os.path.realpath(job.source) for job in jobs}
    for job in jobs:
        if os.path.realpath(job.output) in sources:
            raise UsageError(f"Writing {job.output} would overwrite the input {job.output}. Choose an output folder "
                             "outside the input folder.")


@dataclass
class _Loaded:
    index: int
    job: Job
    image: LoadedImage
    seconds: float  # time spent reading


def clean_images(jobs: Sequence[Job], denoise: Denoiser, *, overwrite: bool = False,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[FileResult], None] | None = None) -> RunSummary:
    """Denoise every job's source into its output, same-size images batched together; never stops at a bad file."""
    if batch_size < 1:
        raise UsageError(f"The batch size must be at least 1, not {batch_size}.")
    results: list[FileResult | None] = [None] * len(jobs)
    _remove_stale_temps(jobs)

    def record(index: int, result: FileResult) -> None:
        results[index] = result
        if progress is not None:
            progress(result)

    groups: dict[tuple[int, ...], list[_Loaded]] = {}
    for index, job in enumerate(jobs):
        loaded = _read(index, job, overwrite, record)
        if loaded is None:
            continue
        group = groups.setdefault(loaded.image.pixels.shape, [])
        group.append(loaded)
        if len(group) >= batch_size:
            _denoise_and_write(groups.pop(loaded.image.pixels.shape), denoise, record)
        elif _buffered(groups) > 4 * batch_size or _buffered_pixels(groups) > MAX_BUFFERED_PIXELS:
            _flush(groups, denoise, record)
    _flush(groups, denoise, record)
    return RunSummary([result for result in results if result is not None])


def _remove_stale_temps(jobs: Sequence[Job]) -> None:
    # A run killed mid-write leaves a hidden temp file beside the output; the rerun that finishes the rest sweeps it.
    names: dict[Path, set[str]] = {}
    for job in jobs:
        names.setdefault(job.output.parent, set()).add(job.output.name)
    for folder, in_folder in names.items():
        remove_stale_temps(folder, in_folder)


def _read(index: int, job: Job, overwrite: bool, record: Callable) -> _Loaded | None:
    """Read a job's image, or record why it is skipped or failed and return None."""
    started = time.perf_counter()
    if job.problem:
        record(index, FileResult(job.source, job.output, FAILED, job.problem))
        return None
    if not overwrite and not job.in_place and job.output.exists():
        record(index, FileResult(job.source, job.output, SKIPPED, "the output already exists; overwrite replaces it"))
        return None
    try:
        image = read_image(job.source)
    except (DenoiseError, OSError) as exc:
        record(index, _failure(job, exc, time.perf_counter() - started))
        return None
    return _Loaded(index, job, image, time.perf_counter() - started)


def _buffered(groups: dict) -> int:
    return sum(len(group) for group in groups.values())


def _buffered_pixels(groups: dict) -> int:
    return sum(item.image.pixels.size for group in groups.values() for item in group)


def _flush(groups: dict, denoise: Denoiser, record: Callable) -> None:
    for shape in sorted(groups):
        _denoise_and_write(groups[shape], denoise, record)
    groups.clear()


def _denoise_and_write(batch: list[_Loaded], denoise: Denoiser, record: Callable) -> None:
    started = time.perf_counter()
    try:
        outputs = _call_denoiser(denoise, [item.image.pixels for item in batch])
    # The denoiser runs TensorFlow, whose errors (out of memory, bad input) share no base class; whatever it raises
    # fails only the files of this batch, each retried alone first so one odd image cannot sink its neighbours.
    except Exception as exc:  # noqa: BLE001
        if len(batch) > 1:
            for item in batch:
                _denoise_and_write([item], denoise, record)
            return
        item = batch[0]
        reason = f"{item.job.source}: denoising failed: {type(exc).__name__}: {exc}"
        record(item.index, _failure(item.job, reason, item.seconds + time.perf_counter() - started))
        return
    share = (time.perf_counter() - started) / len(batch)
    for item, pixels in zip(batch, outputs):
        _write(item, pixels, item.seconds + share, record)


def _call_denoiser(denoise: Denoiser, images: list[np.ndarray]) -> list[np.ndarray]:
    outputs = list(denoise(images))
    if len(outputs) != len(images) or any(np.shape(o) != i.shape for o, i in zip(outputs, images)):
        raise DenoiseError("The denoiser returned images of other shapes than it was given. This is a bug; please "
                           "report it.")
    return outputs


def _write(item: _Loaded, pixels: np.ndarray, seconds: float, record: Callable) -> None:
    started = time.perf_counter()
    try:
        save_image(item.image, pixels, item.job.output)
    except (DenoiseError, OSError) as exc:
        record(item.index, _failure(item.job, exc, seconds + time.perf_counter() - started))
        return
    record(item.index, FileResult(item.job.source, item.job.output, DONE, "", seconds + time.perf_counter() - started))


def _failure(job: Job, cause: BaseException | str, seconds: float) -> FileResult:
    # DenoiseError messages already name the file; other errors get the file's name put in front.
    reason = str(cause) if isinstance(cause, (DenoiseError, str)) else f"{job.source}: {cause}"
    return FileResult(job.source, job.output, FAILED, reason, seconds)
