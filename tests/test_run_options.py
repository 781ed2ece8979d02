"""`denoise run` and `denoise noise`: options checked before any work, empty shards, image types not read, what is
printed (device, progress in megapixels, elapsed time and rate), TensorFlow kept quiet, per-file seeded noise."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from factories import write_image_folder
from PIL import Image
from typer.testing import CliRunner

from denoise.batch.plan import shard_jobs
from denoise.batch.runner import clean_images, plan_outputs
from denoise.cli import app
from denoise.cli.noise import seeded_noise
from denoise.evaluation import psnr
from denoise.noise.specs import add_noise, parse_noise


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _run_without_tensorflow(*args):
    """Run the command in a fresh interpreter; return its exit code and output, and fail if TensorFlow was imported."""
    code = textwrap.dedent(f"""
        import sys
        from denoise.cli import app
        try:
            app({[str(a) for a in args]!r}, prog_name="denoise")
        except SystemExit as exit:
            code = exit.code
        assert "tensorflow" not in sys.modules, "TensorFlow was imported before the check"
        sys.exit(code)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "TensorFlow was imported" not in result.stderr, result.stderr
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.fixture
def photos(tmp_path):
    write_image_folder(tmp_path / "photos", 5, size=(32, 40))
    return tmp_path / "photos"


# --- 5: outputs and report that cannot be written are refused before any work, before TensorFlow ---------------

def _read_only_folder(tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits; sysfs is read-only even for root
        return "/sys"
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def test_an_unwritable_output_folder_exits_2_before_tensorflow_is_imported(photos, model_file, tmp_path):
    locked = _read_only_folder(tmp_path)
    code, output = _run_without_tensorflow("run", photos, "--out", f"{locked}/clean", "--model", model_file)
    assert code == 2, output
    assert "--out" in output and "not writable" in output and "writable folder" in output
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    code, output = _run_without_tensorflow("run", photos, "--out", blocker / "clean", "--model", model_file)
    assert code == 2 and "is a file" in output, output


def test_an_unwritable_report_exits_2_before_any_image_is_cleaned(photos, model_file, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    for report in (blocker / "report.json", tmp_path):  # under a file; a folder
        code, output = _run_without_tensorflow("run", photos, "--model", model_file, "--report", report)
        assert code == 2, output
        assert "--report" in output and "file path in a writable folder" in output
    assert not (tmp_path / "photos-denoised").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder whatever its permission bits")
def test_in_place_in_a_read_only_folder_exits_2_before_any_work(photos, model_file):
    photos.chmod(0o500)
    try:
        code, output = _run_without_tensorflow("run", photos, "--in-place", "--model", model_file)
    finally:
        photos.chmod(0o700)
    assert code == 2 and "--in-place" in output and "--out" in output, output


# --- 3: an empty shard is not an error; an empty folder still is -------------------------------------------------

def test_an_empty_shard_exits_0_and_says_so(photos, model_file, tmp_path):
    jobs = plan_outputs(photos)
    empty = next(index for index in range(16) if not shard_jobs(jobs, photos, index, 16))
    report = tmp_path / "report.json"
    code, output = _run_without_tensorflow("run", photos, "--model", model_file, "--shard", f"{empty}/16",
                                           "--report", report)
    assert code == 0, output
    assert f"shard {empty}/16 holds none of the 5 images in {photos}; nothing to do" in output
    assert json.loads(report.read_text())["counts"] == {"done": 0, "skipped": 0, "failed": 0}


def test_a_folder_without_images_still_exits_2(tmp_path, model_file):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    code, output = _run_without_tensorflow("run", tmp_path / "empty", "--model", model_file, "--shard", "0/4")
    assert code == 2 and "No images found" in output, output


# --- 4: image types denoise does not read are listed as skipped, with what to do ---------------------------------

def test_unread_image_types_are_counted_and_listed_as_skipped(photos, model_file, tmp_path):
    for name in ("IMG_1.HEIC", "raw/DSC_2.NEF", "anim.gif", "notes.txt", "sidecar.xmp", "meta.json"):
        (photos / name).parent.mkdir(exist_ok=True)
        (photos / name).write_bytes(b"not read")
    report = tmp_path / "report.json"
    result = invoke("run", photos, "--model", model_file, "--report", report, "-q")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "5 done, 3 skipped (3 of types denoise does not read: " in text
    assert "develop or convert them to PNG, JPEG or TIFF first" in text
    for name in ("IMG_1.HEIC", "DSC_2.NEF", "anim.gif"):
        assert f"skipped: {photos}" in text and name in text
    assert "notes.txt" not in text and "xmp" not in text
    skipped = {os.path.basename(f["source"]): f for f in json.loads(report.read_text())["files"]
               if f["status"] == "skipped"}
    assert sorted(skipped) == ["DSC_2.NEF", "IMG_1.HEIC", "anim.gif"]
    assert "develop it to a 16-bit TIFF" in skipped["DSC_2.NEF"]["reason"]
    assert "convert it to PNG, JPEG or TIFF first" in skipped["IMG_1.HEIC"]["reason"]


def test_a_folder_of_only_unread_types_exits_2_and_names_them(tmp_path, model_file):
    (tmp_path / "phone").mkdir()
    (tmp_path / "phone" / "a.heic").write_bytes(b"x")
    code, output = _run_without_tensorflow("run", tmp_path / "phone", "--model", model_file)
    assert code == 2 and "No images found" in output and "1 .heic" in output and "convert them" in output


# --- 6: run --noise chooses a shipped model; a level is refused, never dropped --------------------------------

@pytest.mark.parametrize("spec", ["gaussian:25", "gaussian:999", "gaussian:abc", "salt-and-pepper:0.1"])
def test_run_refuses_a_noise_level(photos, spec):
    result = invoke("run", photos, "--noise", spec)
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # Typer draws option errors in a box
    assert "measure the level in each image themselves" in text and "Leave out" in text
    assert not (photos.parent / "photos-denoised").exists()


# --- 8: device, progress in megapixels, elapsed time and rate ------------------------------------------------

def test_run_says_where_it_runs_and_gives_time_and_rate(photos, model_file):
    result = invoke("run", photos, "--model", model_file, "--threads", 1, "--precision", "float32")
    assert result.exit_code == 0, result.output
    assert "cleaning on CPU, 1 thread, float32" in result.output
    assert "/0.006 MP" in result.output  # the bar counts pixels: 5 images of 32x40 = 0.0064 MP
    assert " MP/s); outputs under " in result.output and "5 done, 0 skipped, 0 failed in " in result.output
    quiet = invoke("run", photos, "--model", model_file, "--overwrite", "-q")
    assert quiet.exit_code == 0 and "cleaning on" not in quiet.output and "MP [" not in quiet.output


# --- 7: TensorFlow's own warnings stay out of the terminal unless asked for ---------------------------------

RETRACING = textwrap.dedent("""
    from denoise.runtime import start_tensorflow
    start_tensorflow(1)
    import tensorflow as tf
    step = tf.function(lambda x: x * 2)
    for size in range(1, 9):  # new shapes each call: TensorFlow warns about retracing
        step(tf.zeros((size, size + 1)))
""")


@pytest.mark.slow
def test_tensorflow_warnings_are_silenced_unless_denoise_debug_asks_for_them():
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", RETRACING], capture_output=True, text=True, timeout=120,
                           env=environment)
    assert quiet.returncode == 0, quiet.stderr
    assert "retracing" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", RETRACING], capture_output=True, text=True, timeout=120,
                          env={**environment, "DENOISE_DEBUG": "1"})
    assert loud.returncode == 0 and "retracing" in loud.stderr  # the warning is real, and can be seen


# --- 9: denoise noise: the same seed and relative path give the same noise, whatever else runs ---------------

def test_noise_depends_only_on_the_seed_and_the_relative_path(tmp_path):
    clean = tmp_path / "clean"
    write_image_folder(clean, 6, size=(24, 24))
    assert invoke("noise", clean / "image003.png", tmp_path / "alone", "--seed", 7, "-q").exit_code == 0
    assert invoke("noise", clean, tmp_path / "folder", "--seed", 7, "-q").exit_code == 0
    alone = np.asarray(Image.open(tmp_path / "alone" / "image003.png"))
    np.testing.assert_array_equal(alone, np.asarray(Image.open(tmp_path / "folder" / "image003.png")))

    transform = seeded_noise(parse_noise("gaussian:25"), 7)
    jobs = plan_outputs(clean, tmp_path / "shuffled")
    order = [jobs[i] for i in (5, 3, 0, 4, 1, 2)]
    assert clean_images(order, transform, batch_size=4, writers=3).ok  # another order, batches, threads
    for job in jobs:
        np.testing.assert_array_equal(np.asarray(Image.open(job.output)),
                                      np.asarray(Image.open(tmp_path / "folder" / job.source.name)))
    other = seeded_noise(parse_noise("gaussian:25"), 8)
    clean_images(plan_outputs(clean, tmp_path / "seed8"), other)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "seed8" / "image003.png")), alone)
    first, second = (np.asarray(Image.open(tmp_path / "folder" / f"image00{i}.png"), np.int16) -
                     np.asarray(Image.open(clean / f"image00{i}.png"), np.int16) for i in (0, 1))
    assert not np.array_equal(first, second)  # each file gets its own noise


# --- camera noise: detected per image, counted; files left as they were are named ------------------------------

def test_files_left_unchanged_are_counted_named_and_reported(photos, model_file, tmp_path):
    result = invoke("run", photos, "--model", model_file, "--strength", 0, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "5 done (5 of them unchanged: no noise found), 0 skipped, 0 failed" in result.output
    assert result.output.count("\nunchanged: ") == 5 and "00.png: no noise found" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["unchanged"] == 5 and all(entry["unchanged"] for entry in report["files"])


def test_camera_noise_goes_to_the_camera_model_and_the_summary_counts_the_kinds(tmp_path):
    from denoise.io.images import read_image, save_array

    samples = Path(__file__).resolve().parents[1] / "samples" / "clean"
    clean = read_image(samples / "chelsea.png").pixels
    rng = np.random.default_rng(0)
    (tmp_path / "mixed").mkdir()
    # The Gaussian colour model gives camera noise back unchanged; the camera model removes much of it.
    for name, spec in (("camera.png", "camera:0.6"), ("white.png", "gaussian:15")):
        save_array(np.clip(add_noise(clean, parse_noise(spec), rng), 0, 1), tmp_path / "mixed" / name)
    result = invoke("run", tmp_path / "mixed", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "noise detected per image: 1 as camera, 1 as gaussian" in result.output
    for name in ("camera.png", "white.png"):
        noisy, cleaned = (read_image(folder / name).pixels for folder in (tmp_path / "mixed", tmp_path / "out"))
        assert psnr(clean, cleaned) > psnr(clean, noisy) + 3.0, name
