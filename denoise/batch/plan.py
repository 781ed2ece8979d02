"""Which files a run cleans and where each output goes: walk a folder tree, mirror it, split it into shards.

Pure planning: nothing is read or written here, so a plan can be shown, tested or split across machines first.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from denoise.errors import UsageError
from denoise.io.images import IMAGE_SUFFIXES

OUTPUT_SUFFIX = "-denoised"
CONVERT = "convert it to PNG, JPEG or TIFF first and run denoise on the converted file"
_DEVELOP = ("develop it to a 16-bit TIFF (or a JPEG) first, e.g. with darktable, RawTherapee or dcraw, and run "
            "denoise on that")
# Image types people keep beside their photos that denoise does not read: each is named as skipped, with what to
# do, instead of being passed over like a .txt. Camera raw files are sensor data that must be developed first.
_RAW = (".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".dng", ".orf", ".rw2", ".raf", ".pef",
        ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".kdc", ".mos", ".mrw", ".raw", ".rwl")
UNREAD_TYPES = {
    **{suffix: ("a camera raw file", _DEVELOP) for suffix in _RAW},
    **{suffix: ("a HEIF/HEIC photo", CONVERT) for suffix in (".heic", ".heif", ".hif")},
    ".avif": ("an AVIF image", CONVERT), ".gif": ("a GIF", CONVERT), ".jxl": ("a JPEG XL image", CONVERT),
    **{suffix: ("a JPEG 2000 image", CONVERT) for suffix in (".jp2", ".j2k", ".jpx", ".jpf")},
    ".psd": ("a Photoshop document", "export it as a flattened TIFF or PNG first"),
    ".psb": ("a Photoshop document", "export it as a flattened TIFF or PNG first"),
    ".xcf": ("a GIMP document", "export it as a flattened TIFF or PNG first"),
    ".ico": ("an icon", CONVERT), ".icns": ("an icon", CONVERT), ".jfif": ("a JFIF image", "rename it to .jpg"),
    ".exr": ("an OpenEXR image", CONVERT), ".hdr": ("a Radiance HDR image", CONVERT),
    ".pcx": ("a PCX image", CONVERT), ".tga": ("a TGA image", CONVERT), ".ppm": ("a PPM image", CONVERT),
    ".pgm": ("a PGM image", CONVERT), ".pbm": ("a PBM image", CONVERT), ".svg": ("a vector drawing", CONVERT),
}
_LISTED = IMAGE_SUFFIXES | UNREAD_TYPES.keys()  # what a folder walk plans: images it cleans, and ones it names


@dataclass(frozen=True)
class Job:
    """One planned file: where it is read from and written to; `problem` marks an entry already known to fail.

    `unread` gives the reason a file of an image type denoise does not read is skipped (it is listed, not cleaned);
    `name` is its path relative to the folder the run was given (POSIX form), the same wherever it is mounted.
    """

    source: Path
    output: Path
    problem: str | None = None
    unread: str | None = None
    name: str = field(default="", compare=False)

    @property
    def in_place(self) -> bool:
        return self.output == self.source


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
    unread = unread_reason(source)
    if unread:
        raise UsageError(unread)
    if in_place:
        # The atomic rename replaces a symlink itself with the new file; the file it pointed to stays as it was.
        return [Job(source, source, name=source.name)]
    if out is None:
        return [Job(source, source.with_name(f"{source.stem}{OUTPUT_SUFFIX}{source.suffix}"), name=source.name)]
    out = Path(out)
    if out.is_dir() or out.suffix.lower() not in IMAGE_SUFFIXES:
        out = out / source.name
    extensions = Image.registered_extensions()
    if extensions.get(out.suffix.lower()) != extensions.get(source.suffix.lower()):
        raise UsageError(f"The output {out} has another format than {source}; denoise keeps each file's format. "
                         f"Give an output ending in {source.suffix}.")
    return [Job(source, out, name=source.name)]


def _plan_folder(source: Path, out: str | os.PathLike | None, in_place: bool) -> list[Job]:
    if in_place:
        return [_job(source, path, path, problem) for path, problem in _walk(source, exclude=None)]
    out = Path(out) if out is not None else source.parent / f"{source.name}{OUTPUT_SUFFIX}"
    if _same(out, source):
        raise UsageError(f"The output folder {out} is the input folder. Choose another folder, or ask for in-place "
                         "to replace the originals.")
    _check_output_folder(out)
    # An output folder inside the input folder is left out of the walk, so a rerun never denoises its own outputs.
    return [_job(source, path, out / path.relative_to(source), problem) for path, problem in _walk(source, exclude=out)]


def _job(root: Path, path: Path, output: Path, problem: str | None) -> Job:
    unread = None if problem else unread_reason(path)
    return Job(path, output, problem, unread, path.relative_to(root).as_posix())


def unread_reason(path: Path) -> str | None:
    """Why a file of an image type denoise does not read is skipped, and what to do; None for other files."""
    known = UNREAD_TYPES.get(path.suffix.lower())
    if known is None:
        return None
    what, todo = known
    return f"{path} is {what} ({path.suffix}), which denoise does not read; {todo}."


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
        elif Path(entry.name).suffix.lower() in _LISTED:
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


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' as (K, N) with 0 <= K < N; a UsageError that shows the form otherwise."""
    index, slash, count = text.partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = -1
    if not slash or count < 1 or not 0 <= index < count:
        raise UsageError(f"The shard {text!r} is not of the form K/N with 0 <= K < N, e.g. 0/16 ... 15/16 for 16 "
                         "machines sharing one folder.")
    return index, count


def shard_jobs(jobs: Sequence[Job], root: str | os.PathLike, index: int, count: int) -> list[Job]:
    """The jobs of shard index out of count: chosen by a stable hash of each file's path relative to root.

    Every machine computes the same split without talking to the others, wherever the folder is mounted, and
    adding files to the folder never moves the files already there to another shard.
    """
    root = Path(root)
    base = root if root.is_dir() else root.parent
    return [job for job in jobs if _shard_of(job.source.relative_to(base).as_posix(), count) == index]


def stable_hash(relative: str) -> int:
    """A 64-bit hash of a relative path that every process and machine computes alike."""
    # Not hash(): Python salts it per process, so two machines would disagree about every file.
    digest = hashlib.blake2b(relative.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _shard_of(relative: str, count: int) -> int:
    return stable_hash(relative) % count
