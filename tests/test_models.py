import zipfile

import keras
import numpy as np
import pytest

from denoise.errors import ModelError
from denoise.nn.architectures import (
    build_model,
    fixed_size,
    size_multiple,
    with_bfloat16_compute,
)
from denoise.nn.layers import FillImpulses
from denoise.nn.model_files import describe_model_file, read_metadata
from denoise.nn.saving import load_model, save_model


@pytest.mark.parametrize("arch, channels, shape", [("unet", 1, (32, 48)), ("unet", 3, (16, 16)),
                                                   ("conv", 3, (24, 20)),
                                                   ("dense", 1, (28, 28))])
def test_every_architecture_saves_and_loads_to_the_same_output(tmp_path, arch, channels, shape):
    model = build_model(arch, channels, width=4, depth=2)
    batch = np.random.default_rng(0).random((2, *shape, channels)).astype(np.float32)
    path = tmp_path / f"{arch}.keras"
    save_model(model, path, {"architecture": arch, "channels": channels})
    loaded, metadata = load_model(path)
    assert metadata == {"architecture": arch, "channels": channels}
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-6)


def test_unet_predicts_noise_so_an_untrained_output_stays_close_to_the_input():
    # Residual output: the image passes through; only the predicted noise is subtracted.
    model = build_model("unet", 1, width=4, depth=2)
    image = np.random.default_rng(1).random((1, 32, 32, 1)).astype(np.float32)
    assert np.abs(model.predict(image, verbose=0) - image).mean() < 0.2


def test_size_rules_of_each_architecture():
    assert size_multiple(build_model("unet", 1, width=4, depth=3)) == 16
    assert size_multiple(build_model("unet", 1, width=4, depth=2)) == 8
    assert size_multiple(build_model("conv", 1, width=4)) == 4
    assert fixed_size(build_model("dense", 1)) == (28, 28)
    assert fixed_size(build_model("unet", 1, width=4)) is None


def test_dense_baseline_is_the_classic_784_32_784():
    dense = build_model("dense", 1)
    assert [layer.units for layer in dense.layers if isinstance(layer, keras.layers.Dense)] == [32, 784]


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(ModelError, match="unet, conv, dense"):
        build_model("transformer", 1)


def test_saving_is_atomic_and_leaves_no_temporary_files(tmp_path):
    folder = tmp_path / "models"
    save_model(build_model("conv", 1, width=4), folder / "m.keras", {})
    assert [p.name for p in folder.iterdir()] == ["m.keras"]


def test_a_model_with_a_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError, match="run code"):
        load_model(path)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a readable"), (b"hello, not a zip", "not a readable"), (None, "not a Keras model")],
)
def test_broken_or_foreign_model_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.keras"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "a zip file from another program")
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_truncated_model_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "m.keras"
    save_model(build_model("conv", 1, width=4), path, {"architecture": "conv"})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated"):
        load_model(path)


def test_missing_model_file_says_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="does not exist.*denoise train"):
        read_metadata(tmp_path / "nope.keras")


def test_describe_shows_metadata_and_training_settings(tmp_path):
    path = tmp_path / "m.keras"
    save_model(build_model("conv", 1, width=4), path,
               {"architecture": "conv", "noise": "gaussian:25", "validation_psnr": 31.234,
                "train_config": {"epochs": 3}})
    text = "\n".join(describe_model_file(path))
    assert "conv" in text and "gaussian:25" in text and "31.23" in text and "train.epochs" in text


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]),
         "not an image-to-image model"),
        (lambda: keras.Sequential([keras.Input((None, None, 4)), keras.layers.Conv2D(4, 3, padding="same")]),
         "4-channel"),
    ],
)
def test_models_denoise_cannot_run_are_refused_at_load(tmp_path, build, message):
    path = tmp_path / "other.keras"
    build().save(path)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_unfinished_saves_of_a_killed_run_are_swept_and_nothing_else(tmp_path):
    from denoise.nn.saving import remove_unfinished_saves

    ours = [tmp_path / ".m.k2j3h4.keras", tmp_path / ".m.resume.x8y7.keras"]
    others = [tmp_path / ".mm.k2j3h4.keras", tmp_path / "m.keras", tmp_path / ".m.notes.txt"]
    for path in ours + others:
        path.write_bytes(b"partial")
    assert remove_unfinished_saves(tmp_path / "m.keras") == sorted(ours)
    assert all(path.exists() for path in others) and not any(path.exists() for path in ours)


def test_fill_impulses_replaces_only_black_and_white_values_by_their_neighbours_mean():
    image = np.full((1, 12, 12, 1), 0.4, np.float32)
    image[0, :, 6:] = 0.6
    image[0, 3, 2] = 1.0  # salt inside the 0.4 region
    image[0, 8, 9] = 0.0  # pepper inside the 0.6 region
    filled = FillImpulses()(image).numpy()
    assert filled[0, 3, 2, 0] == pytest.approx(0.4) and filled[0, 8, 9, 0] == pytest.approx(0.6)
    untouched = np.ones_like(image, bool)
    untouched[0, 3, 2] = untouched[0, 8, 9] = False
    assert np.array_equal(filled[untouched], image[untouched])


def test_fill_impulses_reaches_further_when_the_near_values_are_all_corrupted():
    image = np.full((1, 16, 16, 1), 0.3, np.float32)
    image[0, 4:11, 4:11] = 1.0  # a 7x7 block of salt: its centre has no clean value within 5x5, some within 9x9
    filled = FillImpulses()(image).numpy()
    assert filled[0, 7, 7, 0] == pytest.approx(0.3)


def test_impulse_models_keep_uncorrupted_values_in_bfloat16_too():
    keras.utils.set_random_seed(0)
    model = build_model("unet", 1, width=4, depth=2, impulse=True)
    image = np.random.default_rng(0).integers(1, 255, (1, 32, 32, 1)).astype(np.float32) / 255
    image[0, ::4, ::3] = 1.0
    fast = with_bfloat16_compute(model)
    assert fast.get_layer("fill_impulses").compute_dtype == "float32"
    output = fast(image).numpy()
    kept = (image > 0) & (image < 1)
    assert np.array_equal(output[kept], image[kept])


@pytest.mark.parametrize("background", [0.0, 1.0])
def test_fill_impulses_lets_the_majority_win_where_everything_is_black_or_white(background):
    # A black background with 20% salt (or a clipped white sky with 20% pepper): no value is known to be clean
    image = np.full((1, 24, 24, 1), background, np.float32)
    hits = np.random.default_rng(0).random((24, 24)) < 0.2
    image[0, hits] = 1.0 - background
    filled = FillImpulses()(image).numpy()
    assert np.array_equal(filled, np.full_like(image, background))
