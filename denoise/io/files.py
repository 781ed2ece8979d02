"""Writing files atomically: a hidden temp file in the destination folder, synced, then renamed over the target.

A crash, a kill or a full disk therefore never leaves a half-written file under the real name; leftover temp files
of killed writes are recognisable by name and swept by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from denoise.errors import ImageError

TEMP_PREFIX = "."  # temp files are hidden, so folder walks (and users) pass over them
TEMP_SUFFIX = ".denoise-tmp"


def write_atomically(dest: Path, write: Callable[[BinaryIO], None],
                     before_replace: Callable[[os.stat_result], None] | None = None) -> None:
    """Write through a hidden temp file in the same folder, synced, then renamed over dest; never leave a part file.

    before_replace, if given, gets the synced temp file's stat (the identity dest will have) just before the rename;
    if it raises, dest is left as it was.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"Cannot create the folder {dest.parent} for {dest}: {os_error_reason(exc)}.") from exc
    # Same folder as dest, so os.replace is a rename within one file system and therefore atomic.
    temp = dest.parent / f"{TEMP_PREFIX}{dest.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
    created = False
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        created = True
        with _CheckedWriter(io.FileIO(descriptor, "w")) as file:
            write(file)
            file.flush()
            os.fsync(file.raw.fileno())
            written = os.fstat(file.raw.fileno())
        if before_replace is not None:
            before_replace(written)
        os.replace(temp, dest)
    except BaseException as exc:
        if created:
            with contextlib.suppress(OSError):
                temp.unlink()
        if isinstance(exc, (OSError, ValueError, TypeError, KeyError)):
            raise ImageError(
                f"Could not write {dest}: {os_error_reason(exc)}. Check that the folder is writable and the "
                "disk has space; no partial file was left."
            ) from exc
        raise
    sync_folder(dest.parent)


class _CheckedWriter(io.BufferedWriter):
    """A binary file that hides its descriptor, so every byte goes through Python's checked writes."""

    # Given a descriptor, Pillow's encoders write to it directly and ignore short writes: on a disk that fills up
    # (or past RLIMIT_FSIZE) the last block could be cut off silently and a truncated image pass as written.
    # BufferedWriter retries short writes and raises on errors.
    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno is hidden so that writes are checked")


def check_writable_folder(folder: Path) -> str | None:
    """Why files cannot be written in folder (or in the folder it would be created under), or None if they can.

    Tried for real, with an unnamed temp file, because permission bits alone say nothing on read-only mounts, for
    root, or under ACLs; nothing is created, so a folder that does not exist yet is not made here.
    """
    existing = next((path for path in (folder, *folder.parents) if os.path.lexists(path)), None)
    if existing is None or not existing.is_dir():
        return f"{existing} is not a folder" if existing is not None else f"{folder} has no existing parent folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"{existing} is not writable ({os_error_reason(exc)})"
    return None


def remove_stale_temps(folder: Path, names: set[str]) -> list[Path]:
    """Delete the temp files that killed writes of the files `names` in folder left behind; return their paths."""
    # SIGKILL or a power cut gives write_atomically no chance to clean up; the next run that writes the same
    # files does. Only temps of those names are touched, never another program's hidden files.
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if _temp_target(entry.name) in names:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _temp_target(name: str) -> str | None:
    """The file name a temp file of write_atomically was for, or None if name is not such a temp file."""
    if not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
        return None
    target, _, token = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)].rpartition(".")
    return target if len(token) == 16 and all(c in "0123456789abcdef" for c in token) else None


def sync_folder(folder: Path) -> None:
    """Make the names in a folder (a rename, a new file) durable across a power cut; some file systems refuse,
    which costs only durability."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


_ERRNO_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "the file is too large for this file system or limit",
    errno.EDQUOT: "the disk quota is exceeded",
}


def os_error_reason(exc: BaseException) -> str:
    """A short human reason for an error, naming the common disk problems plainly."""
    words = _ERRNO_WORDS.get(getattr(exc, "errno", None))
    if words:
        return words
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"
