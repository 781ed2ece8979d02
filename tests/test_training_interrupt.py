"""Real `denoise train` processes interrupted with SIGINT or killed with SIGKILL, then resumed."""

import json
import signal
import subprocess
import sys
import time
import zipfile

import pytest
from factories import write_image_folder

from denoise.nn.saving import load_model
from denoise.training.trainer import checkpoint_path

# A process started in the background by a non-interactive shell (as CI may start the tests) inherits SIGINT as
# ignored, and Python then never raises KeyboardInterrupt. A user's Ctrl-C reaches a foreground process, so the
# child here restores Python's default handler before running denoise, exactly as `python -m denoise` would.
LAUNCH = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "sys.argv[0] = 'denoise'; runpy.run_module('denoise', run_name='__main__')")


def train_command(folder, out, epochs, *extra):
    return [sys.executable, "-c", LAUNCH, "train", "--dataset", "folder", "--path", str(folder),
            "--noise", "gaussian:25", "--width", "4", "--depth", "2", "--batch-size", "4", "--patch-size", "32",
            "--steps-per-epoch", "3", "--epochs", str(epochs), "--out", str(out), *extra]


def hidden_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def saved_epochs(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("denoise.json"))["epochs"]
    except (OSError, KeyError, zipfile.BadZipFile):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_stopped_training_leaves_a_usable_model_and_resumes(tmp_path, stop):
    write_image_folder(tmp_path / "clean", 8, size=(48, 48))
    out = tmp_path / "m.keras"
    process = subprocess.Popen(train_command(tmp_path / "clean", out, 500), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while saved_epochs(checkpoint_path(out)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(stop)
    output = process.communicate(timeout=240)[0]  # generous: CI machines can be slow to stop TensorFlow
    if stop == signal.SIGINT:
        assert process.returncode == 130, output
        assert "Interrupted after" in output and "--resume" in output
    else:
        assert process.returncode == -signal.SIGKILL
    # Whatever moment the stop came, both files are whole models (written atomically), and nothing half-written.
    # Each epoch saves the best model, then the checkpoint: a kill between the two leaves the best one epoch ahead.
    _, best = load_model(out)
    done = saved_epochs(checkpoint_path(out))
    assert done >= 2 and best["epochs"] <= done + 1
    if stop == signal.SIGINT:  # Ctrl-C lets a save in progress clean up; SIGKILL may leave its temp file behind
        assert hidden_files(tmp_path) == []

    resumed = subprocess.run(train_command(tmp_path / "clean", out, done + 2, "--resume"), capture_output=True,
                             text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1}/{done + 2}" in resumed.stdout and f"epoch {done + 2}/{done + 2}" in resumed.stdout
    assert "epoch 1/" not in resumed.stdout
    _, after = load_model(out)
    assert after["validation_psnr"] >= best["validation_psnr"]  # at least as good as the model kept before
    assert saved_epochs(checkpoint_path(out)) == done + 2
    assert hidden_files(tmp_path) == []  # the resumed run swept any temp file the killed one left
