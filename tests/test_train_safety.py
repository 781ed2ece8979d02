"""train and eval check their options before any work, never lose a model, and say what to run next."""

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from factories import write_image_folder
from typer.testing import CliRunner

from denoise.cli import app
from denoise.nn.saving import load_model
from denoise.noise.specs import parse_noise
from denoise.training.trainer import TrainConfig, checkpoint_path, train

runner = CliRunner()
# Runs the CLI in a fresh interpreter, then says whether TensorFlow was imported. SIGINT gets Python's default
# handler back, since a background test runner may start children with it ignored.
LAUNCH = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = ["denoise", *sys.argv[1:]]
from denoise.cli import main
try:
    main()
finally:
    print("tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr)
"""


def launch(*args, **kwargs):
    return subprocess.run([sys.executable, "-c", LAUNCH, *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kwargs)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def clean_folder(tmp_path):
    write_image_folder(tmp_path / "clean", 6, size=(48, 48))
    return tmp_path / "clean"


SMALL = ["--width", "4", "--depth", "2", "--batch-size", "4", "--patch-size", "32", "--noise", "gaussian:25"]


@pytest.mark.parametrize("args, named", [
    (["train", "--arch", "bogus"], "--arch"),
    (["train", "--channels", "2"], "--channels"),
    (["train", "--noise", "gaussian:abc"], "--noise"),
    (["train", "--noise", "gaussian:999"], "--noise"),
    (["train", "--dataset", "nosuch"], "denoise datasets"),
    (["train", "--loss", "l7"], "--loss"),
    (["train", "--precision", "float8"], "--precision"),
    (["train", "--resume"], "--resume"),
    (["train", "--init-from", "missing.keras"], "gaussian"),
    (["train", "--data-dir", "x"], "--data-dir"),
    (["train", "--path", "nowhere"], "--path"),
    (["eval", "missing.keras"], "gaussian"),
    (["noise", "IN", "OUT", "--noise", "gaussian:999"], "--noise"),
])
def test_a_bad_option_exits_2_naming_it_before_tensorflow_is_imported(tmp_path, clean_folder, args, named):
    if args[0] == "train":
        args = args + ["--path", clean_folder, "--out", tmp_path / "m.keras"] * ("--path" not in args)
        args = args + ["--out", tmp_path / "m.keras"] * ("--out" not in args)
    result = launch(*[clean_folder if a == "IN" else tmp_path / "out" if a == "OUT" else a for a in args],
                    cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr
    assert "tensorflow imported: False" in result.stderr


@pytest.mark.parametrize("out_kind", ["existing model", "folder", "inside a file", "wrong suffix"])
def test_an_unusable_or_existing_out_exits_2_before_tensorflow(tmp_path, clean_folder, model_file, out_kind):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "dir.keras").mkdir()
    out = {"existing model": model_file, "folder": tmp_path / "dir.keras",
           "inside a file": tmp_path / "a-file" / "m.keras", "wrong suffix": tmp_path / "m.h5"}[out_kind]
    before = digest(model_file)
    result = launch("train", "--path", clean_folder, "--out", out, *SMALL)
    assert result.returncode == 2, result.stderr
    assert "--out" in result.stderr or ".keras" in result.stderr
    assert "tensorflow imported: False" in result.stderr
    assert digest(model_file) == before
    if out_kind == "existing model":
        assert "--overwrite" in result.stderr


@pytest.mark.slow
def test_overwrite_replaces_an_existing_model_once_an_epoch_finished(tmp_path, clean_folder, model_file):
    before = digest(model_file)
    result = runner.invoke(app, ["train", "--path", str(clean_folder), "--out", str(model_file), "--overwrite",
                                 "--epochs", "1", "--steps-per-epoch", "2", *SMALL])
    assert result.exit_code == 0, result.output
    assert digest(model_file) != before
    assert load_model(model_file)[1]["epochs"] == 1


@pytest.mark.slow
def test_ctrl_c_in_the_first_epoch_keeps_the_old_model_and_suggests_a_command_that_works(
        tmp_path, clean_folder, model_file):
    before = digest(model_file)
    args = ["train", "--path", str(clean_folder), "--out", str(model_file), "--overwrite", "--epochs", "1",
            "--steps-per-epoch", "100000", *SMALL]
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    started = process.stdout.readline()  # "training unet (...)": the data is read and the model built
    assert started.startswith("training unet"), started + process.stderr.read()
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert digest(model_file) == before and not checkpoint_path(model_file).exists()
    assert "before the first epoch finished" in stderr and "--resume" not in stderr
    suggested = shlex.split(stderr.split("Start again with: ")[1].splitlines()[0])
    assert suggested[:2] == ["denoise", "train"] and "--overwrite" in suggested
    suggested[suggested.index("--steps-per-epoch") + 1] = "2"  # the same command, made short for the test
    rerun = runner.invoke(app, suggested[1:])
    assert rerun.exit_code == 0, rerun.output
    assert digest(model_file) != before


@pytest.mark.slow
def test_an_init_from_model_is_validated_first_and_kept_unless_training_beats_it(tmp_path, clean_folder):
    def config(out, **changes):
        settings = dict(dataset="folder", data_path=clean_folder, noise=parse_noise("gaussian:25"), out=out,
                        width=4, depth=2, epochs=2, batch_size=4, patch_size=32, steps_per_epoch=8,
                        validation_fraction=0.34)
        return TrainConfig(**{**settings, **changes})

    start = tmp_path / "start.keras"
    train(config(start, arch="unet", learning_rate=3e-3))
    # A learning rate far too high wrecks the model in its first steps: no epoch may replace the starting model.
    result = train(config(tmp_path / "tuned.keras", init_from=start, learning_rate=0.5, epochs=1))
    assert [report.epoch for report in result.history] == [0, 1]
    assert result.history[0].best and not result.history[1].best
    assert result.best_psnr == result.history[0].denoised_psnr
    kept, _ = load_model(tmp_path / "tuned.keras")
    started, _ = load_model(start)
    assert all(np.array_equal(a, b) for a, b in zip(kept.get_weights(), started.get_weights()))


def test_fine_tuning_defaults_to_a_lower_learning_rate_with_a_warm_up(tmp_path):
    from denoise.training.trainer import learning_rate_schedule

    fresh = TrainConfig(dataset="folder", noise=parse_noise("gaussian:25"), out=tmp_path / "m.keras")
    tuned = TrainConfig(dataset="folder", noise=parse_noise("gaussian:25"), out=tmp_path / "m.keras",
                        init_from=tmp_path / "start.keras")
    assert fresh.rate == 1e-3 and tuned.rate == 1e-4
    schedule = learning_rate_schedule(tuned, steps_per_epoch=100)
    rates = [float(schedule(step)) for step in (0, 100, 200)]
    assert rates[0] == 0 and 0 < rates[1] < rates[2] <= 1e-4


def test_eval_takes_a_shipped_model_by_name_and_names_each_image_in_json(tmp_path, clean_folder):
    result = runner.invoke(app, ["eval", "gaussian", "--path", str(clean_folder), "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["images"]
    assert [row["name"] for row in rows] == ["image000.png", "image001.png"]
    assert all(row["denoised_psnr"] > row["noisy_psnr"] for row in rows)


def test_an_unexpected_error_prints_one_line_and_writes_the_traceback_to_a_file(tmp_path, model_file):
    code = ("import sys, denoise.nn.model_files as files\n"
            "def broken(path): raise RuntimeError('boom')\n"
            "files.describe_model_file = broken\n"
            "sys.argv = ['denoise', 'info', sys.argv[1]]\n"
            "from denoise.cli import main\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code, str(model_file)], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RuntimeError: boom" in lines[0] and "Traceback" not in result.stderr
    (written,) = tmp_path.glob("denoise-error-*.txt")
    assert str(written) in lines[0]
    assert "Traceback" in written.read_text() and "RuntimeError: boom" in written.read_text()
