"""Ctrl-C during `denoise run`: the summary is printed, --report lists the unfinished files, the exit code is 130.

The main test sends a real SIGINT to a real `python -m denoise run` subprocess partway through a folder.
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

from denoise.cli import app
from denoise.cli import run as run_command

IMAGES = 120


def _whole(path):
    with Image.open(path) as image:
        image.load()  # a half-written file fails here
        return np.asarray(image)


def _wait_for_outputs(process, out, count=2, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and sum(not p.name.startswith(".") for p in out.iterdir()) >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"no output appeared before the run ended (exit code {process.poll()})")


@pytest.mark.slow
def test_ctrl_c_prints_the_summary_writes_the_report_and_exits_130(tmp_path, model_file):
    source, out, report = tmp_path / "photos", tmp_path / "photos-denoised", tmp_path / "report.json"
    write_image_folder(source, IMAGES, size=(128, 128), channels=3)
    # A child started with SIGINT ignored (as a shell's background jobs are) would never see Ctrl-C, so the wrapper
    # turns Python's own handler back on; not preexec_fn, which may deadlock in a parent running TensorFlow.
    launcher = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "sys.argv = ['denoise'] + sys.argv[1:]; runpy.run_module('denoise', run_name='__main__')")
    command = [sys.executable, "-c", launcher, "run", str(source), "--model", str(model_file), "--batch-size", "1",
               "--report", str(report), "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_outputs(process, out)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted:" in stderr and "unfinished" in stderr and "Traceback" not in stderr
    assert "run the same command again" in stderr

    written = {p.name for p in out.iterdir()}
    assert not [name for name in written if name.startswith(".")]  # no temp file, no half file
    data = json.loads(report.read_text())
    assert data["ok"] is False and data["interrupted"] is True
    counts = data["counts"]
    assert counts["done"] + counts["unfinished"] == IMAGES and counts["unfinished"] > 0 and counts["failed"] == 0
    assert f"{counts['done']} done" in stderr and f"{counts['unfinished']} unfinished" in stderr
    for entry in data["files"]:
        name = os.path.basename(entry["output"])
        if entry["status"] == "done":
            assert name in written
            _whole(out / name)
        else:
            assert entry["status"] == "unfinished" and "run the same command again" in entry["reason"]
            assert name not in written


def test_ctrl_c_before_cleaning_starts_lists_every_file_as_unfinished(tmp_path, model_file, monkeypatch):
    write_image_folder(tmp_path / "photos", 3)

    def interrupted_while_loading(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_command, "_load_model", interrupted_while_loading)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["run", str(tmp_path / "photos"), "--model", str(model_file), "--report",
                                      str(report)])
    assert result.exit_code == 130, result.output
    assert "0 done, 0 skipped, 0 failed, 3 unfinished" in result.output
    data = json.loads(report.read_text())
    assert data["counts"] == {"done": 0, "skipped": 0, "failed": 0, "unfinished": 3}
    assert not (tmp_path / "photos-denoised").exists()


@pytest.mark.parametrize("in_place", [False, True])
def test_a_finished_run_reports_no_unfinished_files(tmp_path, model_file, in_place):
    write_image_folder(tmp_path / "photos", 2)
    report = tmp_path / "report.json"
    args = ["run", str(tmp_path / "photos"), "--model", str(model_file), "--report", str(report), "-q"]
    result = CliRunner().invoke(app, args + (["--in-place"] if in_place else []))
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["interrupted"] is False and data["counts"] == {"done": 2, "skipped": 0, "failed": 0}
