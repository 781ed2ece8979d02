"""Nothing is lost: failed or killed writes never leave a half-written file, and originals survive --in-place.

The kill and file-size tests run `python -m denoise run` as real subprocesses, because SIGKILL and RLIMIT_FSIZE
act on a whole process.
"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from factories import write_image_folder
from PIL import Image, ImageFile
from typer.testing import CliRunner

from denoise.batch.runner import DONE, FAILED, clean_images, plan_outputs
from denoise.cli import app
from denoise.io import images
from denoise.io.files import TEMP_SUFFIX

IMAGES = 40


def invert(batch):
    return [1 - image for image in batch]


def _hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _hidden(root):
    return sorted(p.name for p in root.rglob("*") if p.name.startswith("."))


def _pixels(path):
    with Image.open(path) as image:
        image.load()  # a half-written file fails here
        return np.asarray(image)


def _fail_fsync(monkeypatch):
    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images.os, "fsync", disk_full)


def _fail_encoder_midway(monkeypatch):
    def broken_encoder(image, fp, tile, bufsize=0):
        fp.write(b"\0" * 100)  # part of the image data is already in the temp file
        raise OSError("encoder error -2 when writing image file")

    monkeypatch.setattr(ImageFile, "_save", broken_encoder)


@pytest.mark.parametrize("fail", [_fail_fsync, _fail_encoder_midway])
def test_in_place_keeps_every_original_when_writing_fails_midway(tmp_path, monkeypatch, fail):
    root = tmp_path / "photos"
    write_image_folder(root, 2, size=(16, 24))
    write_image_folder(root / "sub", 1, size=(9, 9), channels=3, suffix=".tif")
    before = _hashes(root)
    fail(monkeypatch)
    summary = clean_images(plan_outputs(root, in_place=True), invert)
    assert summary.counts[FAILED] == 3 and summary.counts[DONE] == 0
    for result in summary.failures:
        assert result.source.name in result.reason and "no partial file was left" in result.reason
    assert _hashes(root) == before
    assert _hidden(root) == []


def test_in_place_replaces_the_original_once_the_new_version_is_complete(tmp_path):
    root = tmp_path / "photos"
    (path,) = write_image_folder(root, 1, size=(16, 24))
    original = _pixels(path)
    assert clean_images(plan_outputs(root, in_place=True), invert).ok
    np.testing.assert_array_equal(_pixels(path), 255 - original)
    assert _hidden(root) == [".denoise-in-place"]  # the journal of what was replaced; no temp file


def test_a_rerun_sweeps_temp_files_that_a_killed_write_left_behind(tmp_path):
    (source,) = write_image_folder(tmp_path / "photos", 1)
    out = tmp_path / "photos-denoised"
    out.mkdir()
    stale = out / f".{source.name}.0123456789abcdef{TEMP_SUFFIX}"
    stale.write_bytes(b"\x89PNG half an image")
    unrelated = out / f".notes.txt.0123456789abcdef{TEMP_SUFFIX}"  # not ours to judge: no job writes notes.txt
    unrelated.write_bytes(b"keep")
    assert clean_images(plan_outputs(tmp_path / "photos"), invert).ok
    assert not stale.exists() and unrelated.exists()


def _denoise_command(source, model_file, *extra):
    return [sys.executable, "-m", "denoise", "run", str(source), "--model", str(model_file), "--batch-size", "1",
            "-q", *map(str, extra)]


def _wait_for_first_output(process, out, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
            return
        time.sleep(0.005)
    raise AssertionError(f"no output appeared before the run ended (exit code {process.poll()})")


@pytest.mark.slow
def test_a_killed_run_leaves_only_whole_files_and_a_rerun_finishes_the_rest(tmp_path, model_file):
    source, out = tmp_path / "photos", tmp_path / "photos-denoised"
    write_image_folder(source, IMAGES, size=(160, 160), channels=3)
    reference = tmp_path / "reference"
    complete = CliRunner().invoke(app, ["run", str(source), "--out", str(reference), "--model", str(model_file),
                                        "--batch-size", "1", "-q"])
    assert complete.exit_code == 0, complete.output

    process = subprocess.Popen(_denoise_command(source, model_file), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_first_output(process, out)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    done = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")}
    assert 0 < len(done) < IMAGES, "the run should have been killed partway"
    for name in done:  # every visible output is whole and the same as an uninterrupted run's
        np.testing.assert_array_equal(_pixels(out / name), _pixels(reference / name))

    report = tmp_path / "report.json"
    rerun = subprocess.run(_denoise_command(source, model_file, "--report", report), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(report.read_text())["counts"] == {"done": IMAGES - len(done), "skipped": len(done), "failed": 0}
    assert {name: (out / name).stat().st_mtime_ns for name in done} == done  # done files were not redone
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())  # no temp files
    for path in reference.iterdir():
        np.testing.assert_array_equal(_pixels(out / path.name), _pixels(path))


@pytest.mark.slow
def test_writes_past_the_file_size_limit_fail_per_file_and_leave_nothing_half_written(tmp_path, model_file):
    source, out = tmp_path / "photos", tmp_path / "clean"
    write_image_folder(source, 2, size=(320, 320), channels=3, suffix=".bmp")  # 300 kB each: over the limit
    write_image_folder(source / "small", 1, size=(8, 8))  # well under it
    limit = 256 * 1024  # above what loading the model writes (Keras unpacks its ~100 kB of weights to a file)
    # The limit is set by a wrapper rather than preexec_fn, which may deadlock in a parent running TensorFlow's
    # threads. SIGXFSZ is ignored so the kernel refuses the write with EFBIG instead of killing the process.
    launcher = textwrap.dedent(f"""
        import resource, runpy, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        sys.argv = ["denoise"] + sys.argv[1:]
        runpy.run_module("denoise", run_name="__main__")
    """)
    command = [sys.executable, "-c", launcher, "run", source, "--out", out, "--model", model_file,
               "--report", tmp_path / "report.json", "-q"]
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    outcome = {os.path.basename(f["source"]): f for f in report["files"]}
    assert report["counts"] == {"done": 1, "skipped": 0, "failed": 2}
    for name in ("image000.bmp", "image001.bmp"):
        assert outcome[name]["status"] == "failed" and "too large" in outcome[name]["reason"]
        assert name in outcome[name]["reason"] and f"failed: {source / name}" in result.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["small/image000.png"]
    _pixels(out / "small" / "image000.png")


def test_an_output_folder_that_cannot_be_created_stops_before_any_work(tmp_path, model_file):
    write_image_folder(tmp_path / "photos", 2)
    blocker = tmp_path / "a file"
    blocker.write_text("a file where the output folder's parent should be")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "photos"), "--out", str(blocker / "clean"),
                                      "--model", str(model_file), "-q"])
    assert result.exit_code == 2
    assert "cannot be created" in result.output and "a file is a file" in result.output
    assert blocker.read_text().startswith("a file where")
