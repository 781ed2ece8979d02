import dataclasses
import json
import zipfile

import numpy as np
import pytest
from factories import smooth_image, write_image_folder

from denoise.errors import TrainingError, UsageError
from denoise.nn.architectures import is_impulse_model
from denoise.nn.saving import load_model, save_model
from denoise.noise.specs import parse_noise
from denoise.training.batches import make_pipeline
from denoise.training.trainer import TrainConfig, checkpoint_path, train


def first_batch(pipeline):
    noisy, clean = next(iter(pipeline))
    return noisy.numpy(), clean.numpy()


@pytest.fixture
def patches():
    return np.stack([smooth_image(16, 16, 1, seed=s) for s in range(8)])


def test_pipeline_is_reproducible_and_draws_new_noise_every_step(patches):
    noise = parse_noise("gaussian:25")
    a = first_batch(make_pipeline(patches, noise, 4, seed=1))
    b = first_batch(make_pipeline(patches, noise, 4, seed=1))
    later = first_batch(make_pipeline(patches, noise, 4, seed=1, first_step=5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0] - a[1], later[0] - later[1])


def test_pipeline_noise_has_the_requested_level_and_is_8bit(patches):
    noisy, clean = first_batch(make_pipeline(patches, parse_noise("gaussian:25"), 8, seed=0))
    assert noisy.shape == clean.shape == (8, 16, 16, 1)
    assert 20 < np.std(noisy - clean) * 255 < 27  # a little under 25: clipping at 0 and 1
    assert np.array_equal(noisy, np.round(noisy * 255) / 255)


def test_pipeline_leaves_the_clean_fraction_of_patches_without_noise():
    patches = np.stack([smooth_image(16, 16, 1, seed=s) for s in range(64)])
    noise = parse_noise("gaussian:20")
    noisy, clean = first_batch(make_pipeline(patches, noise, 64, seed=0, clean_fraction=0.5))
    untouched = [np.array_equal(n, c) for n, c in zip(noisy, clean)]
    assert 16 <= sum(untouched) <= 48  # about half, drawn at random
    noisy, clean = first_batch(make_pipeline(patches, noise, 64, seed=0))
    assert not any(np.array_equal(n, c) for n, c in zip(noisy, clean))


def test_pipeline_salt_and_pepper_hits_the_requested_fraction(patches):
    noisy, clean = first_batch(make_pipeline(patches, parse_noise("salt-and-pepper:0.25"), 8, seed=0))
    hit = np.isin(noisy, (0.0, 1.0)) & (noisy != clean)
    assert 0.18 < hit.mean() < 0.27


@pytest.fixture
def clean_folder(tmp_path):
    write_image_folder(tmp_path / "clean", 12, size=(64, 64))
    return tmp_path / "clean"


def config_for(folder, out, **changes):
    settings = dict(dataset="folder", data_path=folder, noise=parse_noise("gaussian:25"), out=out, arch="unet",
                    width=8, depth=2, epochs=3, batch_size=8, patch_size=32, steps_per_epoch=15,
                    learning_rate=3e-3, validation_fraction=0.25)
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.mark.slow
def test_training_learns_to_denoise_and_keeps_the_best_model(clean_folder, tmp_path):
    out = tmp_path / "model.keras"
    reports = []
    config = config_for(clean_folder, out, noise=parse_noise("gaussian:50"), steps_per_epoch=40)
    result = train(config, on_epoch=reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert result.best_psnr == max(r.denoised_psnr for r in reports)
    assert result.best_psnr > reports[0].noisy_psnr + 1.5  # clearly better than the noisy input
    _, metadata = load_model(out)
    assert metadata["validation_psnr"] == pytest.approx(result.best_psnr)
    assert metadata["architecture"] == "unet" and metadata["noise"] == "gaussian:50" and metadata["channels"] == 1
    assert checkpoint_path(out).exists()


@pytest.mark.slow
def test_resume_continues_the_epoch_count(clean_folder, tmp_path):
    out = tmp_path / "model.keras"
    train(config_for(clean_folder, out, epochs=1, steps_per_epoch=3))
    reports = []
    result = train(config_for(clean_folder, out, epochs=2, steps_per_epoch=3, resume=True), on_epoch=reports.append)
    assert [r.epoch for r in reports] == [2] and result.epochs_done == 2
    with zipfile.ZipFile(checkpoint_path(out)) as archive:
        assert json.loads(archive.read("denoise.json"))["epochs"] == 2


def _policies(model) -> set[str]:
    return {layer.dtype_policy.name for layer in model.layers if layer.weights}


@pytest.mark.slow
def test_bfloat16_training_learns_saves_a_float32_model_and_resumes_in_bfloat16(clean_folder, tmp_path):
    out = tmp_path / "model.keras"
    config = config_for(clean_folder, out, noise=parse_noise("gaussian:50"), steps_per_epoch=40,
                        precision="bfloat16")
    first = train(config)
    assert first.best_psnr > first.history[0].noisy_psnr + 1.5  # as float32 does in the same 3 epochs
    model, metadata = load_model(out)
    assert _policies(model) == {"float32"} and metadata["train_config"]["precision"] == "bfloat16"
    checkpoint, _ = load_model(checkpoint_path(out))
    assert "mixed_bfloat16" in _policies(checkpoint)
    resumed = train(dataclasses.replace(config, epochs=4, resume=True))
    assert resumed.epochs_done == 4 and resumed.best_psnr >= first.best_psnr


def test_an_unknown_training_precision_is_a_usage_error(clean_folder, tmp_path):
    with pytest.raises(UsageError, match="--precision 'float16'.*float32, bfloat16"):
        train(config_for(clean_folder, tmp_path / "m.keras", precision="float16"))


def test_psnr_loss_is_each_patchs_error_in_db():
    from denoise.nn.losses import psnr_loss

    clean = np.zeros((2, 4, 4, 1), np.float32)
    denoised = clean + np.array([0.1, 0.01], np.float32)[:, None, None, None]  # MSE 1e-2 and 1e-4
    np.testing.assert_allclose(np.asarray(psnr_loss(clean, denoised)), 10 * np.log10([1e-2 + 1e-6, 1e-4 + 1e-6]),
                               rtol=1e-4)


@pytest.mark.slow
def test_training_with_the_psnr_loss_learns_and_resumes(clean_folder, tmp_path):
    out = tmp_path / "model.keras"
    config = config_for(clean_folder, out, noise=parse_noise("gaussian:50"), loss="psnr", steps_per_epoch=40)
    first = train(dataclasses.replace(config, epochs=2))
    reports = []
    resumed = train(dataclasses.replace(config, epochs=3, resume=True), on_epoch=reports.append)
    assert [r.epoch for r in reports] == [3] and reports[0].loss < 0  # the loss is in dB
    assert resumed.best_psnr >= first.best_psnr and resumed.best_psnr > first.history[0].noisy_psnr + 1.5
    assert load_model(out)[1]["train_config"]["loss"] == "psnr"


def test_an_unknown_loss_is_a_usage_error(clean_folder, tmp_path):
    with pytest.raises(UsageError, match="mse, psnr"):
        train(config_for(clean_folder, tmp_path / "m.keras", loss="l1"))


def test_resume_without_a_checkpoint_is_a_usage_error(clean_folder, tmp_path):
    with pytest.raises(UsageError, match="no checkpoint"):
        train(config_for(clean_folder, tmp_path / "m.keras", resume=True))


@pytest.mark.slow
def test_interrupt_leaves_the_best_model_behind(clean_folder, tmp_path):
    out = tmp_path / "model.keras"

    def interrupt_after_first_epoch(report):
        raise KeyboardInterrupt

    result = train(config_for(clean_folder, out, steps_per_epoch=2), on_epoch=interrupt_after_first_epoch)
    assert result.interrupted and result.epochs_done == 1
    model, metadata = load_model(out)
    assert metadata["epochs"] == 1


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_message(clean_folder, tmp_path):
    with pytest.raises(TrainingError, match="NaN"):
        train(config_for(clean_folder, tmp_path / "m.keras", learning_rate=1e30, steps_per_epoch=5))


def test_model_file_name_must_end_in_keras(clean_folder, tmp_path):
    with pytest.raises(UsageError, match=".keras"):
        train(config_for(clean_folder, tmp_path / "model.h5"))


@pytest.mark.slow
def test_distributed_training_runs_on_two_logical_cpu_devices(clean_folder, tmp_path):
    """MirroredStrategy over two logical CPUs, in a subprocess: logical devices must be set before TF starts."""
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from denoise.cli import app
app(["train", "--dataset", "folder", "--path", {str(clean_folder)!r}, "--out", {str(tmp_path / "m.keras")!r},
     "--distribute", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--patch-size", "16",
     "--width", "4", "--depth", "1", "--threads", "2"], prog_name="denoise", standalone_mode=False)
assert len(tf.distribute.MirroredStrategy().extended.worker_devices) == 2
"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done: 1 epochs" in result.stdout
    model, metadata = load_model(tmp_path / "m.keras")
    assert metadata["train_config"]["distribute"] is True and model.count_params() > 0


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_model(clean_folder, tmp_path):
    first = tmp_path / "first.keras"
    train(config_for(clean_folder, first, width=6, epochs=1, steps_per_epoch=2))
    reports = []
    tuned = tmp_path / "tuned.keras"
    train(config_for(clean_folder, tuned, epochs=1, steps_per_epoch=1, learning_rate=1e-9, init_from=first),
          on_epoch=reports.append)
    start, _ = load_model(first)
    model, metadata = load_model(tuned)
    assert metadata["train_config"]["width"] == 6  # the architecture comes from the starting model
    for before, after in zip(start.get_weights(), model.get_weights()):
        np.testing.assert_allclose(before, after, atol=1e-4)  # a near-zero learning rate keeps its weights


def test_fine_tuning_refuses_another_architecture_than_the_starting_models(clean_folder, tmp_path):
    first = tmp_path / "first.keras"
    train(config_for(clean_folder, first, arch="conv", epochs=1, steps_per_epoch=1))
    with pytest.raises(UsageError, match="--arch unet cannot start from"):
        train(config_for(clean_folder, tmp_path / "t.keras", arch="unet", init_from=first))


@pytest.mark.slow
def test_fine_tuning_refuses_a_model_for_other_channels(clean_folder, tmp_path):
    first = tmp_path / "first.keras"
    train(config_for(clean_folder, first, epochs=1, steps_per_epoch=1))
    with pytest.raises(UsageError, match="1-channel"):
        train(config_for(clean_folder, tmp_path / "t.keras", channels=3, init_from=first))


def test_random_crops_come_from_the_patches_at_changing_positions():
    # One 32x32 patch whose pixel values encode their position, so a crop tells where it was taken.
    ramp = (np.arange(32)[:, None] * 4 + np.arange(32)[None, :] // 8).astype(np.uint8)[None, :, :, None]
    pipeline = make_pipeline(ramp, parse_noise("gaussian:0"), 1, seed=0, crop_size=8)
    corners = set()
    for _, (_, clean) in zip(range(20), pipeline):
        crop = np.round(clean.numpy()[0, ..., 0] * 255).astype(int)
        assert crop.shape == (8, 8)
        # a crop is a contiguous window of the ramp, possibly flipped or transposed
        assert any(np.array_equal(crop, np.rot90(window, k)) or np.array_equal(crop, np.rot90(window, k).T)
                   for window in (ramp[0, y : y + 8, x : x + 8, 0] for y in range(25) for x in range(25))
                   for k in range(4))
        corners.add(int(crop.min()))
    assert len(corners) > 5  # many positions, not one fixed grid


def test_crop_size_larger_than_the_patches_is_a_usage_error(clean_folder, tmp_path):
    with pytest.raises(UsageError, match="--crop-size"):
        train(config_for(clean_folder, tmp_path / "m.keras", crop_size=64))


@pytest.mark.slow
def test_salt_and_pepper_training_keeps_uncorrupted_pixels(clean_folder, tmp_path):
    out = tmp_path / "impulse.keras"
    train(config_for(clean_folder, out, noise=parse_noise("salt-and-pepper:0.2"), epochs=1, steps_per_epoch=2))
    model, metadata = load_model(out)
    assert is_impulse_model(model) and metadata["noise"] == "salt-and-pepper:0.2"
    image = smooth_image(32, 32, 1, seed=3).astype(np.float32)[None] / 255
    image[0, ::5, ::3] = 1.0  # salt
    image[0, 2::7, 1::4] = 0.0  # pepper
    output = model(image).numpy()
    uncorrupted = (image > 0) & (image < 1)
    assert np.array_equal(output[uncorrupted], image[uncorrupted])
    assert not np.array_equal(output[~uncorrupted], image[~uncorrupted])


@pytest.mark.slow
def test_an_impulse_model_can_start_from_a_gaussian_one(clean_folder, tmp_path):
    gaussian = tmp_path / "gaussian.keras"
    train(config_for(clean_folder, gaussian, epochs=1, steps_per_epoch=2))
    impulse = tmp_path / "impulse.keras"
    train(config_for(clean_folder, impulse, noise=parse_noise("salt-and-pepper:0.1"), epochs=1, steps_per_epoch=1,
                     learning_rate=1e-9, init_from=gaussian))
    start, tuned = load_model(gaussian)[0], load_model(impulse)[0]
    assert is_impulse_model(tuned) and not is_impulse_model(start)
    for layer in start.layers:
        for before, after in zip(layer.get_weights(), tuned.get_layer(layer.name).get_weights()):
            np.testing.assert_allclose(after, before, atol=1e-6)


@pytest.mark.slow
def test_resume_never_replaces_a_best_model_newer_than_the_checkpoint(clean_folder, tmp_path):
    # As a kill between an epoch's two saves leaves it: the best model is one epoch ahead of the checkpoint.
    out = tmp_path / "model.keras"
    train(config_for(clean_folder, out, epochs=1, steps_per_epoch=3))
    model, metadata = load_model(out)
    save_model(model, out, {**metadata, "epochs": 2, "validation_psnr": 99.0})  # unbeatable
    reports = []
    train(config_for(clean_folder, out, epochs=2, steps_per_epoch=3, resume=True), on_epoch=reports.append)
    assert [r.best for r in reports] == [False]
    assert load_model(out)[1]["validation_psnr"] == 99.0
