"""The Python API (denoise.clean, load_model, add_noise, evaluate): real images, real models, the same results as
`denoise run`, and one Model used from several threads."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from factories import smooth_image, tiny_unet
from PIL import Image
from typer.testing import CliRunner

import denoise
from denoise.cli import app
from denoise.errors import ImageError, ModelError, NoiseSpecError, UsageError
from denoise.evaluation import psnr
from denoise.inference.tiling import run_tiled

SAMPLES = Path(__file__).parents[1] / "samples"


def crop(name: str, size: int = 96) -> Image.Image:
    """A corner of a shipped sample image (real photo content), small enough to clean in a moment."""
    return Image.open(SAMPLES / name).crop((0, 0, size, size))


def noisy_photo(channels: int = 3, sigma: int = 25, seed: int = 0, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(crop("clean/astronaut.png" if channels == 3 else "clean/camera.png", size))
    return clean, denoise.add_noise(clean, f"gaussian:{sigma}", seed=seed)


def test_importing_denoise_loads_neither_numpy_nor_tensorflow_and_its_api_not_tensorflow():
    code = ("import sys, denoise; print('numpy' in sys.modules, 'tensorflow' in sys.modules); "
            "denoise.clean, denoise.load_model; print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "False"]


def test_every_public_name_has_a_docstring_and_type_hints():
    for name in denoise.__all__:
        if name == "__version__":
            continue
        thing = getattr(denoise, name)
        assert thing.__doc__ and len(thing.__doc__.strip()) > 20, name
        functions = [thing] if callable(thing) and not isinstance(thing, type) else [
            member for member_name, member in vars(thing).items()
            if callable(member) and not member_name.startswith("_")]
        for function in functions:
            assert "return" in function.__annotations__, f"{name}.{function.__name__} has no return type"


def test_clean_gives_back_an_array_of_the_same_shape_and_dtype_with_less_noise():
    clean, noisy = noisy_photo(channels=3)
    assert noisy.shape == clean.shape == (96, 96, 3)
    cleaned = denoise.clean(noisy)
    assert cleaned.dtype == np.uint8 and cleaned.shape == noisy.shape
    assert psnr(clean / 255, cleaned / 255) > psnr(clean / 255, noisy / 255) + 4


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])
def test_clean_keeps_the_dtype_of_gray_arrays(dtype):
    clean, noisy = noisy_photo(channels=1)  # H x W, as a gray image's array is
    given = noisy.astype(np.uint16) * 257 if dtype == np.uint16 else (noisy / 255).astype(dtype)
    cleaned = denoise.clean(given)
    assert cleaned.dtype == dtype and cleaned.shape == given.shape == clean.shape
    assert psnr(clean / 255, cleaned / (65535 if dtype == np.uint16 else 1)) > psnr(clean / 255, noisy / 255) + 4


def test_clean_keeps_an_arrays_alpha_channel_as_it_was():
    _, noisy = noisy_photo(channels=3)
    alpha = np.random.default_rng(1).integers(0, 256, noisy.shape[:2], dtype=np.uint8)
    rgba = np.concatenate([noisy, alpha[..., None]], axis=-1)
    cleaned = denoise.clean(rgba)
    assert cleaned.shape == rgba.shape and np.array_equal(cleaned[..., 3], alpha)
    assert not np.array_equal(cleaned[..., :3], noisy)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16"])
def test_clean_gives_back_a_pillow_image_of_the_same_mode_and_size(mode):
    _, noisy = noisy_photo(channels=3)
    image = Image.fromarray(noisy)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(np.full(noisy.shape[:2], 200, np.uint8)))
    elif mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L")).astype(np.uint16) * 257))
    elif mode != "RGB":
        image = image.convert(mode)
    image.info["icc_profile"] = b"a profile"
    cleaned = denoise.clean(image)
    assert isinstance(cleaned, Image.Image)
    assert (cleaned.mode, cleaned.size) == (image.mode, image.size)
    assert cleaned.info.get("icc_profile") == b"a profile"
    if mode == "RGBA":
        assert np.array_equal(np.asarray(cleaned)[..., 3], np.asarray(image)[..., 3])


def test_a_transparent_palette_image_comes_back_as_rgba_with_its_transparency_in_alpha():
    image = Image.fromarray(smooth_image(32, 32, 3)).convert("P")
    image.info["transparency"] = 0
    cleaned = denoise.clean(image)
    assert cleaned.mode == "RGBA" and "transparency" not in cleaned.info
    assert np.array_equal(np.asarray(cleaned)[..., 3], np.asarray(image.convert("RGBA"))[..., 3])


def test_clean_leaves_the_callers_image_untouched():
    _, noisy = noisy_photo(channels=3)
    given = noisy.astype(np.float32) / 255
    before = given.copy()
    denoise.clean(given)
    assert np.array_equal(given, before)


def test_the_api_and_denoise_run_give_the_same_pixels(tmp_path):
    _, noisy = noisy_photo(channels=3, sigma=15)
    Image.fromarray(noisy).save(tmp_path / "photo.png")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"), "-q",
                                      "--precision", "float32"])
    assert result.exit_code == 0, result.output
    from_cli = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert np.array_equal(from_cli, denoise.clean(noisy, precision="float32"))


def test_a_model_file_a_shipped_name_and_a_keras_model_all_load(model_file):
    image = smooth_image(40, 40, 1)
    from_file = denoise.load_model(model_file).clean(image)
    from_object = denoise.load_model(tiny_unet(1)).clean(image)  # the same seed builds the same weights
    assert np.array_equal(from_file, from_object)
    assert denoise.load_model("gaussian").name == "gaussian"
    # the names the Gaussian model shipped under before 2026-12-01 still find it
    assert denoise.load_model("gaussian-gray").name == denoise.load_model("gaussian-colour.keras").name == "gaussian"


def test_a_large_image_goes_through_in_tiles_without_seams(monkeypatch):
    from denoise.inference import denoiser
    from denoise.inference.settings import RunSettings

    _, noisy = noisy_photo(channels=1, sigma=20, size=256)  # larger than a 32-pixel tile and its margins
    whole = denoise.load_model("gaussian", precision="float32").clean(noisy)
    tiled_calls = []
    monkeypatch.setattr(denoiser, "run_tiled", lambda *args, **kw: tiled_calls.append(1) or run_tiled(*args, **kw))
    # the default margins are wider than the model's reach (at 64 pixels, 5.5% of the pixels differed by 1-2 levels)
    tiles = denoise.load_model("gaussian", settings=RunSettings(tile=32, precision="float32"))
    assert np.array_equal(tiles.clean(noisy), whole)
    assert tiled_calls


def test_one_model_from_several_threads_gives_the_sequential_results():
    model = denoise.load_model()  # the shipped models, chosen per image: loading happens under a lock
    images = [noisy_photo(channels=1 + 2 * (index % 2), sigma=10 + 5 * index, seed=index)[1] for index in range(6)]
    images.append(np.asarray(Image.open(SAMPLES / "noisy-salt-and-pepper" / "camera.png").crop((0, 0, 64, 64))))
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(images))

    def work(index: int) -> None:
        start.wait()
        results[index] = model.clean(images[index])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, image in enumerate(images):
        assert np.array_equal(results[index], model.clean(image)), index
    assert model.noise_counts["salt-and-pepper"] == 2 and sum(model.noise_counts.values()) == 2 * len(images)


def test_add_noise_is_seeded_and_keeps_type_and_alpha():
    image = Image.fromarray(smooth_image(32, 32, 3)).convert("RGBA")
    first, again = denoise.add_noise(image, "gaussian:25", seed=3), denoise.add_noise(image, "gaussian:25", seed=3)
    assert first.mode == "RGBA" and np.array_equal(np.asarray(first), np.asarray(again))
    assert np.array_equal(np.asarray(first)[..., 3], np.asarray(image)[..., 3])
    assert not np.array_equal(np.asarray(first), np.asarray(denoise.add_noise(image, "gaussian:25", seed=4)))


def test_evaluate_scores_a_model_on_clean_images():
    clean = [np.asarray(crop("clean/camera.png", 64)), np.asarray(crop("clean/text.png", 64))]
    report = denoise.evaluate("gaussian", clean, "gaussian:25", seed=1, names=["camera", "text"])
    assert [score.name for score in report.images] == ["camera", "text"]
    assert report.mean("denoised_psnr") > report.mean("noisy_psnr") + 3


@pytest.mark.parametrize("image, message", [
    (np.full((8, 8), 2.0, np.float32), "outside [0, 1]"),
    (np.zeros((8, 8), np.int64), "int64 array"),
    (np.zeros((8, 8, 5), np.uint8), "shape (8, 8, 5)"),
    ("photo.png", "is a str"),
])
def test_bad_images_raise_image_errors_that_say_what_to_give(image, message):
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        denoise.clean(image)


def test_bad_models_and_options_raise_denoise_errors(tmp_path, model_file):
    with pytest.raises(ModelError, match="does not exist"):
        denoise.load_model(tmp_path / "missing.keras")
    with pytest.raises(UsageError, match="leave it out"):
        denoise.load_model(model_file, noise="camera")
    with pytest.raises(NoiseSpecError, match="Unknown kind of noise"):
        denoise.load_model(noise="speckle")
    with pytest.raises(UsageError, match="strength must lie in 0..3"):
        denoise.load_model(strength=5)
    with pytest.raises(UsageError, match="ensemble must be from 1 to 8"):
        denoise.load_model(ensemble=9)
    with pytest.raises(UsageError, match="give them to load_model"):
        denoise.clean(smooth_image(16, 16), model=denoise.load_model(model_file), strength=2.0)
    with pytest.raises(UsageError, match="no option colour"):
        denoise.train(tmp_path / "m.keras", colour=True)


@pytest.mark.slow
def test_the_api_prints_nothing_in_a_fresh_process(tmp_path):
    """TensorFlow's start-up chatter included: the library leaves stdout and stderr to its caller."""
    code = ("import numpy as np, denoise; out = denoise.clean(np.full((40, 40, 3), 128, np.uint8)); "
            "assert out.shape == (40, 40, 3)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={key: value for key, value in os.environ.items()
                               if key != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


@pytest.mark.parametrize("options, patch", [
    ({}, 64), ({"target": "self"}, 64), ({"target": "self", "self_method": "neighbours"}, 128),
    ({"target": "self", "self_method": "neighbours", "patch_size": 96}, 96)])
def test_neighbour_patches_default_to_twice_the_size_since_they_are_halved(tmp_path, monkeypatch, options, patch):
    from denoise.training import trainer

    seen = []
    monkeypatch.setattr(trainer, "train", lambda config, **callbacks: seen.append(config))
    (tmp_path / "photos").mkdir()
    denoise.train(tmp_path / "m.keras", path=tmp_path / "photos", **options)
    assert seen[0].patch_size == patch
    assert (seen[0].noise is None) == (options.get("target") == "self")


def test_a_keras_model_object_is_run_live_so_later_training_shows():
    """A model object may still be training: the Model runs its current weights (TensorFlow, not a frozen LiteRT
    copy), while a model file gets LiteRT on a CPU in float32."""
    model = tiny_unet(1)
    image = smooth_image(32, 32, 1)
    loaded = denoise.load_model(model, precision="float32")
    assert loaded.runtime == "tensorflow"
    before = loaded.clean(image)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    assert not np.array_equal(loaded.clean(image), before)


def test_a_model_file_runs_on_litert_in_float32_on_a_cpu(model_file):
    loaded, image = denoise.load_model(model_file, precision="float32"), smooth_image(20, 20, 1)
    assert loaded.runtime == "litert"
    assert loaded.clean(image).shape == image.shape
