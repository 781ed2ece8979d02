"""The command line through Typer's runner (exit code first, then the message), plus real subprocesses."""

import hashlib
import json
import subprocess
import sys

import pytest
from factories import write_image_folder
from PIL import Image
from test_plugin_mnist import write_idx
from typer.testing import CliRunner

from denoise.cli import app
from denoise.inference.settings import RunSettings

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def hashes(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def photos(tmp_path):
    """A folder tree with gray and colour images, a nested folder with a tricky name, and one broken file."""
    root = tmp_path / "photos"
    write_image_folder(root, 2, size=(40, 56))
    write_image_folder(root / "sub dir ü", 1, size=(33, 20), channels=3, suffix=".jpg")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_help_and_version_do_not_import_tensorflow_and_help_not_even_numpy():
    """--help must answer at once (under 0.5 s on a busy 2-core machine): only Typer and denoise's small modules."""
    code = (
        "import sys; from denoise.cli import app\n"
        "def call(args):\n"
        "    try: app(args, prog_name='denoise')\n"
        "    except SystemExit as e: assert e.code == 0, e.code\n"
        "call(['--help'])\n"
        "assert not {'numpy', 'PIL'} & set(sys.modules), 'a heavy module was imported'\n"
        "for args in (['--version'], ['run', '--help'], ['train', '--help']):\n"
        "    call(args)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "denoise" in result.stdout


def test_python_dash_m_denoise_works():
    result = subprocess.run([sys.executable, "-m", "denoise", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("denoise ")


def test_run_mirrors_the_tree_reports_the_bad_file_and_exits_1(photos, model_file, tmp_path):
    before = hashes(photos)
    report = tmp_path / "report.json"
    result = invoke("run", photos, "--model", model_file, "--report", report, "-q")
    assert result.exit_code == 1
    assert "broken.png" in result.output and "1 failed" in result.output
    out = tmp_path / "photos-denoised"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "image000.png", "image001.png", "sub dir ü/image000.jpg"]
    with Image.open(out / "sub dir ü" / "image000.jpg") as image:
        assert image.size == (20, 33) and image.mode == "RGB" and image.format == "JPEG"
    assert hashes(photos) == before  # inputs untouched
    outcome = {f["source"].rsplit("/", 1)[-1]: f["status"] for f in json.loads(report.read_text())["files"]}
    assert outcome == {"broken.png": "failed", "image000.png": "done", "image001.png": "done", "image000.jpg": "done"}


def test_run_again_skips_done_files_unless_overwrite(photos, model_file, tmp_path):
    (photos / "broken.png").unlink()
    assert invoke("run", photos, "--model", model_file, "-q").exit_code == 0
    again = invoke("run", photos, "--model", model_file, "-q")
    assert again.exit_code == 0 and "0 done, 3 skipped" in again.output
    redo = invoke("run", photos, "--model", model_file, "-q", "--overwrite")
    assert redo.exit_code == 0 and "3 done" in redo.output


def test_run_with_an_ensemble_writes_the_ensemble_mean(photos, model_file, tmp_path):
    import numpy as np

    from denoise.inference.denoiser import load_denoiser
    from denoise.io.images import read_image

    (photos / "broken.png").unlink()
    assert invoke("run", photos, "--model", model_file, "-q", "--ensemble", 4).exit_code == 0
    source = read_image(photos / "image000.png").pixels  # float32 in [0, 1]
    (expected,) = load_denoiser(model_file, RunSettings(ensemble=4))([source])
    (single,) = load_denoiser(model_file)([source])
    written = np.asarray(Image.open(tmp_path / "photos-denoised" / "image000.png"), np.float32)[..., None]
    assert np.abs(written - np.rint(expected * 255)).max() <= 1  # 8-bit rounding of the same values
    assert np.abs(written - np.rint(single * 255)).max() > 1  # and not what a single run gives
    assert invoke("run", photos, "--model", model_file, "--ensemble", 9).exit_code == 2


def test_run_with_a_missing_or_corrupt_model_exits_2_and_names_it(photos, tmp_path):
    missing = invoke("run", photos, "--model", tmp_path / "nope.keras")
    assert missing.exit_code == 2 and "nope.keras does not exist" in missing.output
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    result = invoke("run", photos, "--model", corrupt)
    assert result.exit_code == 2 and "corrupt.keras" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "photos-denoised").exists()


def test_run_refuses_to_write_into_the_input_folder(photos, model_file):
    result = invoke("run", photos, "--out", photos, "--model", model_file)
    assert result.exit_code == 2 and "is the input folder" in result.output


def test_noise_makes_seeded_noisy_copies(tmp_path):
    write_image_folder(tmp_path / "clean", 2, size=(32, 32))
    assert invoke("noise", tmp_path / "clean", tmp_path / "a", "--noise", "gaussian:25", "-q").exit_code == 0
    assert invoke("noise", tmp_path / "clean", tmp_path / "b", "--noise", "gaussian:25", "-q").exit_code == 0
    first, second = (tmp_path / "a" / "image000.png").read_bytes(), (tmp_path / "b" / "image000.png").read_bytes()
    assert first == second and first != (tmp_path / "clean" / "image000.png").read_bytes()


def test_noise_warns_that_jpeg_copies_do_not_carry_the_exact_noise(tmp_path):
    write_image_folder(tmp_path / "clean", 1, size=(32, 32))
    Image.open(tmp_path / "clean" / "image000.png").convert("RGB").save(tmp_path / "clean" / "photo.jpg")
    result = invoke("noise", tmp_path / "clean", tmp_path / "out", "--noise", "gaussian:25", "-q")
    assert result.exit_code == 0 and (tmp_path / "out" / "photo.jpg").exists()
    assert "1 of the copies (photo.jpg first) are saved as JPEG" in result.output and "PNG" in result.output
    png_only = invoke("noise", tmp_path / "clean" / "image000.png", tmp_path / "one.png", "--noise", "gaussian:25")
    assert png_only.exit_code == 0 and "JPEG" not in png_only.output


def test_noise_rejects_a_bad_spec():
    result = invoke("noise", ".", "out", "--noise", "speckle:3")
    assert result.exit_code == 2 and "gaussian:25" in result.output


@pytest.mark.slow
def test_train_eval_info_on_a_folder(tmp_path):
    write_image_folder(tmp_path / "clean", 8, size=(48, 48))
    (tmp_path / "clean" / "broken.png").write_bytes(b"not a png")
    model = tmp_path / "m.keras"
    trained = invoke("train", "--dataset", "folder", "--path", tmp_path / "clean", "--noise", "gaussian:25",
                     "--width", 4, "--depth", 2, "--epochs", 2, "--steps-per-epoch", 2, "--batch-size", 4,
                     "--patch-size", 32, "--out", model)
    assert trained.exit_code == 0, trained.output
    assert "epoch 2/2" in trained.output and "validation PSNR" in trained.output and model.exists()
    assert "1 images were left out as unreadable" in trained.output and "broken.png" in trained.output
    info = invoke("info", model)
    assert info.exit_code == 0 and "unet" in info.output and "gaussian:25" in info.output
    scored = invoke("eval", model, "--dataset", "folder", "--path", tmp_path / "clean", "--json")
    assert scored.exit_code == 0
    report = json.loads(scored.output)
    assert report["count"] == 8 and len(report["images"]) == 8 and report["noise"] == "gaussian:25"
    table = invoke("eval", model, "--dataset", "folder", "--path", tmp_path / "clean", "--limit", 2)
    assert table.exit_code == 0 and "2 images" in table.output and "SSIM" in table.output


def test_train_the_dense_baseline_on_mnist_files(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    train_digits = rng.integers(0, 256, (64, 28, 28), np.uint8)
    test_digits = rng.integers(0, 256, (16, 28, 28), np.uint8)
    write_idx(tmp_path / "mnist", train_digits, test_digits)
    result = invoke(
        "train",
        "--dataset",
        "mnist",
        "--path",
        tmp_path / "mnist",
        "--arch",
        "dense",
        "--noise",
        "salt-and-pepper:0.2",
        "--epochs",
        1,
        "--batch-size",
        16,
        "--out",
        tmp_path / "d.keras",
    )
    assert result.exit_code == 0, result.output
    assert "dense" in invoke("info", tmp_path / "d.keras").output


def test_unknown_dataset_lists_the_available_ones(tmp_path):
    result = invoke("train", "--dataset", "imagenet", "--out", tmp_path / "m.keras")
    assert result.exit_code == 2
    assert "imagenet" in result.output and "fashion-mnist" in result.output and "folder" in result.output


def test_datasets_lists_the_built_in_loaders():
    result = invoke("datasets")
    assert result.exit_code == 0
    for name in ("mnist", "fashion-mnist", "folder"):
        assert name in result.output


def test_info_on_a_foreign_file_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.keras"
    text.write_text("just text")
    result = invoke("info", text)
    assert result.exit_code == 2 and "not a readable .keras model" in result.output


@pytest.mark.parametrize("spec", ["0/0", "3/2", "x", "2/2"])
def test_run_with_a_bad_shard_exits_2_and_shows_the_form(photos, model_file, spec):
    result = invoke("run", photos, "--model", model_file, "--shard", spec)
    assert result.exit_code == 2 and "K/N" in result.output


def test_run_shards_split_the_folder_with_no_overlap(tmp_path, model_file):
    write_image_folder(tmp_path / "photos", 9, size=(24, 24))
    outputs = []
    for index in range(3):
        out = tmp_path / f"out{index}"
        result = invoke(
            "run",
            tmp_path / "photos",
            "--out",
            out,
            "--model",
            model_file,
            "--shard",
            f"{index}/3",
            "--threads",
            1,
            "--max-memory",
            "2G",
            "-q",
        )
        assert result.exit_code == 0, result.output
        outputs.append({p.name for p in out.glob("*.png")})
    assert sorted(name for part in outputs for name in part) == sorted(p.name for p in (tmp_path / "photos").iterdir())


def test_run_with_a_bad_memory_target_exits_2(photos, model_file):
    assert "not a size" in invoke("run", photos, "--model", model_file, "--max-memory", "lots").output
    result = invoke("run", photos, "--model", model_file, "--max-memory", "100M")
    assert result.exit_code == 2 and "at least 1G" in result.output


def test_run_help_explains_threads_shards_and_memory():
    text = " ".join(invoke("run", "--help").output.split())
    for option in ("--threads", "--shard", "--max-memory", "CPU affinity"):
        assert option in text


def test_compact_stores_weights_in_half_the_space_and_denoises_the_same(tmp_path):
    import numpy as np

    from denoise.inference.denoiser import Denoiser
    from denoise.nn.architectures import build_model
    from denoise.nn.saving import load_model, save_model

    full, small = tmp_path / "full.keras", tmp_path / "small.keras"
    model = build_model("unet", 1, width=16, depth=2)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.get_weights()])
    save_model(model, full, {"architecture": "unet", "channels": 1})
    result = invoke("compact", full, "--out", small)
    assert result.exit_code == 0, result.output
    assert small.stat().st_size < 0.6 * full.stat().st_size
    assert "weights stored as" in invoke("info", small).output and "float16" in invoke("info", small).output
    loaded, metadata = load_model(small)
    assert metadata["architecture"] == "unet" and {w.dtype for w in loaded.get_weights()} == {np.dtype("float32")}
    image = rng.random((40, 48, 1)).astype(np.float32)
    before = Denoiser(model, RunSettings(precision="float32"))([image])[0]
    after = Denoiser(loaded, RunSettings(precision="float32"))([image])[0]
    assert np.abs(after - before).max() < 0.1 / 255


def test_compact_refuses_an_output_that_is_not_a_keras_file(model_file, tmp_path):
    result = invoke("compact", model_file, "--out", tmp_path / "small.h5")
    assert result.exit_code == 2 and "must end in .keras" in result.output
