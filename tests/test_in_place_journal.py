"""--in-place reruns clean only what is left: the journal (.denoise-in-place) vouches for files already replaced.

A file cleaned twice would be damaged twice (JPEGs re-encoded twice), so every test checks that no file is replaced a
second time (by its inode: each atomic replace makes a new one) and that the rest are cleaned.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from factories import write_image_folder
from PIL import Image
from typer.testing import CliRunner

from denoise.batch.journal import JOURNAL_NAME, read_journal
from denoise.batch.runner import (
    CLEANED_IN_PLACE,
    DONE,
    FAILED,
    SKIPPED,
    clean_images,
    plan_outputs,
)
from denoise.cli import app
from denoise.io import files

IMAGES = 40


def invert(batch):
    return [1 - image for image in batch]


def _inodes(root):
    return {p.name: p.stat().st_ino for p in root.iterdir() if not p.name.startswith(".")}


def _pixels(path):
    with Image.open(path) as image:
        image.load()
        return np.asarray(image)


def test_a_rerun_skips_every_file_already_cleaned_in_place(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, 3)
    write_image_folder(root / "sub", 1, suffix=".jpg")
    assert clean_images(plan_outputs(root, in_place=True), invert).counts[DONE] == 4
    cleaned = {p: (p.read_bytes(), p.stat().st_ino) for p in root.rglob("image*")}

    again = clean_images(plan_outputs(root, in_place=True), invert)
    assert again.counts == {DONE: 0, SKIPPED: 4, FAILED: 0}
    assert len(again.skipped(CLEANED_IN_PLACE)) == 4 and JOURNAL_NAME in again.results[0].reason
    assert {p: (p.read_bytes(), p.stat().st_ino) for p in root.rglob("image*")} == cleaned  # not touched again
    assert sorted(read_journal(root / JOURNAL_NAME)) == ["image000.png", "image001.png", "image002.png"]


def test_a_file_edited_since_is_cleaned_again_and_overwrite_redoes_all(tmp_path):
    root = tmp_path / "photos"
    paths = write_image_folder(root, 3)
    clean_images(plan_outputs(root, in_place=True), invert)
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(paths[1])  # the user saves a new version

    again = clean_images(plan_outputs(root, in_place=True), invert)
    assert [r.status for r in again.results] == [SKIPPED, DONE, SKIPPED]
    assert (_pixels(paths[1]) == 248).all()
    redo = clean_images(plan_outputs(root, in_place=True), invert, overwrite=True)
    assert redo.counts[DONE] == 3


def test_a_kill_between_the_journal_line_and_the_rename_redoes_that_file(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    paths = write_image_folder(root, 2)
    original = _pixels(paths[0])
    real_replace = os.replace

    def killed_before_rename(src, dst):  # the journal line is written and synced; the process dies here
        if str(dst).endswith("image000.png"):
            raise OSError(5, "killed")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", killed_before_rename)
    clean_images(plan_outputs(root, in_place=True), invert)
    assert "image000.png" in read_journal(root / JOURNAL_NAME)  # recorded, yet the original is still there
    np.testing.assert_array_equal(_pixels(paths[0]), original)
    monkeypatch.setattr(files.os, "replace", real_replace)

    rerun = clean_images(plan_outputs(root, in_place=True), invert)
    assert [r.status for r in rerun.results] == [DONE, SKIPPED]
    np.testing.assert_array_equal(_pixels(paths[0]), 255 - original)  # cleaned exactly once


def test_a_torn_journal_line_only_means_that_file_is_redone(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, 2)
    clean_images(plan_outputs(root, in_place=True), invert)
    journal = root / JOURNAL_NAME
    kept, torn = journal.read_text().splitlines()  # in the order the writer threads finished
    journal.write_text(kept + "\n" + torn[: len(torn) // 2])  # a kill mid-append
    rerun = {r.source.name: r.status for r in clean_images(plan_outputs(root, in_place=True), invert).results}
    assert rerun == {json.loads(kept)["name"]: SKIPPED, json.loads(torn)["name"]: DONE}


def test_the_command_says_which_files_were_already_cleaned_in_place(tmp_path, model_file):
    write_image_folder(tmp_path / "photos", 2)
    args = ["run", str(tmp_path / "photos"), "--model", str(model_file), "--in-place", "-q"]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 done, 2 skipped (2 already cleaned in place, --overwrite cleans them again)" in again.output


def _command(source, model_file, *extra):
    return [sys.executable, "-m", "denoise", "run", str(source), "--model", str(model_file), "--in-place",
            "--batch-size", "1", "-q", *map(str, extra)]


@pytest.mark.slow
def test_an_in_place_run_killed_midway_is_finished_by_a_rerun_without_cleaning_any_file_twice(tmp_path,
                                                                                              model_file):
    source, reference = tmp_path / "photos", tmp_path / "reference"
    write_image_folder(source, IMAGES, size=(128, 128), channels=3)
    result = CliRunner().invoke(app, ["run", str(source), "--out", str(reference), "--model", str(model_file),
                                      "-q"])
    assert result.exit_code == 0, result.output  # each file cleaned once, for comparison
    originals = _inodes(source)

    process = subprocess.Popen(_command(source, model_file), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if sum(a != b for a, b in zip(_inodes(source).values(), originals.values())) >= 2:
                break
            time.sleep(0.002)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    after_kill = _inodes(source)
    replaced = {name for name in originals if after_kill[name] != originals[name]}
    assert 0 < len(replaced) < IMAGES, "the run should have been killed partway"

    report = tmp_path / "report.json"
    rerun = subprocess.run(_command(source, model_file, "--report", report), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    counts = json.loads(report.read_text())["counts"]
    assert counts == {"done": IMAGES - len(replaced), "skipped": len(replaced), "failed": 0}
    final = _inodes(source)
    assert {name: final[name] for name in replaced} == {name: after_kill[name] for name in replaced}  # not redone
    assert all(final[name] != originals[name] for name in originals)  # and every other one was cleaned
    for name in originals:  # each exactly once: the same pixels as one uninterrupted run
        np.testing.assert_array_equal(_pixels(source / name), _pixels(reference / name))
    assert sorted(p.name for p in source.iterdir() if p.name.startswith(".")) == [JOURNAL_NAME]  # no temp file
