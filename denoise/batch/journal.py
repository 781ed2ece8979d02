"""The in-place journal: which files an --in-place run already replaced, so a rerun cleans only the rest.

An output written beside its input can be told apart from the input; a file replaced in place cannot. So each
folder gets a hidden file `.denoise-in-place` with one JSON line per replaced file: its name and the identity the
new file will have (inode, size, modification time in ns), taken from the synced temp file and appended, synced,
BEFORE the rename that puts it in place. A rerun skips a file whose identity matches an entry:

- killed before the line is written: the file is still the original and is cleaned;
- killed between the line and the rename: the file is still the original, whose identity differs; it is cleaned;
- killed after the rename: the identity matches; it is skipped, never cleaned twice;
- edited or replaced since (new mtime, size or inode): it no longer matches and is cleaned again.

Lines cut short by a kill mid-append are ignored (their file is then redone, which is the safe side).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from denoise.io.files import sync_folder

JOURNAL_NAME = ".denoise-in-place"  # hidden, so folder walks (and users' file browsers) pass over it


def identity(stat: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from another without reading it; a rename keeps all three."""
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class InPlaceJournal:
    """The journals of every folder a run replaces files in, read once per folder; appends are thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[Path, dict[str, set[tuple[int, int, int]]]] = {}
        self._lock = threading.RLock()  # the reader thread asks, writer threads record

    def holds(self, path: Path) -> bool:
        """Whether path is, byte for byte, a file an earlier run put there (by its identity)."""
        with self._lock:
            known = set(self._folder(path.parent).get(path.name, ()))
        if not known:
            return False
        try:
            return identity(os.stat(path)) in known
        except OSError:
            return False  # the read reports what is wrong with the file

    def record(self, path: Path, stat: os.stat_result) -> None:
        """Append path's coming identity to its folder's journal and sync it (call before the rename)."""
        line = json.dumps({"name": path.name, "ino": stat.st_ino, "size": stat.st_size,
                           "mtime_ns": stat.st_mtime_ns}, ensure_ascii=False) + "\n"
        journal = path.parent / JOURNAL_NAME
        with self._lock:
            created = not journal.exists()
            descriptor = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                # One write of a whole line in append mode, so lines from parallel writers (or shards) never mix.
                os.write(descriptor, line.encode("utf-8", "surrogateescape"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            if created:
                sync_folder(path.parent)  # a new journal's name must survive a power cut too
            self._folder(path.parent).setdefault(path.name, set()).add(identity(stat))

    def _folder(self, folder: Path) -> dict[str, set[tuple[int, int, int]]]:
        if folder not in self._entries:
            self._entries[folder] = read_journal(folder / JOURNAL_NAME)
        return self._entries[folder]


def read_journal(journal: Path) -> dict[str, set[tuple[int, int, int]]]:
    """name -> identities recorded in a journal file; unreadable lines (a kill mid-append) are passed over."""
    entries: dict[str, set[tuple[int, int, int]]] = {}
    try:
        text = journal.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return entries
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            key = (int(entry["ino"]), int(entry["size"]), int(entry["mtime_ns"]))
            entries.setdefault(str(entry["name"]), set()).add(key)
        except (ValueError, KeyError, TypeError):
            continue
    return entries
