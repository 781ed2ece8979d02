"""`denoise train --target self`: learning a denoiser from noisy images alone (recorruption, Neighbor2Neighbor)."""

import re

import numpy as np
import pytest
import tensorflow as tf
from factories import smooth_image
from PIL import Image
from typer.testing import CliRunner

from denoise.cli import app
from denoise.errors import DatasetError, UsageError
from denoise.evaluation import psnr
from denoise.inference.denoiser import load_denoiser
from denoise.nn.layers import PickFromCells
from denoise.nn.losses import ClippedNoiseError
from denoise.nn.saving import load_model
from denoise.noise.level import NoiseLevel
from denoise.noise.specs import parse_noise
from denoise.training.config import TrainConfig, check_config, checkpoint_path
from denoise.training.recorrupt import FIRST_ALPHA, LAST_ALPHA, alpha_at, recorrupt, recorrupted_examples
from denoise.training.self_supervised import (
    check_noisy_images,
    neighbour_choices,
    validation_halves,
)
from denoise.training.trainer import SELF_SUPERVISED_NOISE, train

SIGMA = 25


def clean_and_noisy(count: int, size: int, seed: int = 0):
    """Smooth gray images and their noisy twins (Gaussian, sigma 25, rounded to 8 bits as a photo's file is)."""
    rng = np.random.default_rng(seed)
    clean = [smooth_image(size, size, 1, seed=seed + i).astype(np.float32) / 255 for i in range(count)]
    noisy = [np.clip(np.round((c + rng.normal(0, SIGMA / 255, c.shape)) * 255), 0, 255).astype(np.uint8) for c in clean]
    return clean, noisy


@pytest.fixture
def noisy_folder(tmp_path):
    _, noisy = clean_and_noisy(12, 96)
    folder = tmp_path / "noisy"
    folder.mkdir()
    for index, image in enumerate(noisy):
        Image.fromarray(image[..., 0]).save(folder / f"photo{index}.png")
    return folder


def config_for(folder, out, **changes):
    settings = dict(dataset="folder", data_path=folder, noise=None, target="self", out=out, arch="unet", width=8,
                    depth=2, epochs=4, batch_size=8, patch_size=32, steps_per_epoch=100, learning_rate=3e-3,
                    validation_fraction=0.25, channels=1)
    settings.update(changes)
    return TrainConfig(**settings)


def test_neighbour_choices_are_two_different_side_by_side_pixels_of_each_cell():
    first, second = neighbour_choices(tf.constant([2, 16, 16]), tf.constant([3, 4], tf.int64))
    first, second = np.argmax(first[..., 0], -1), np.argmax(second[..., 0], -1)
    assert np.all(first != second)
    assert np.all(first + second != 3)  # 0-3 and 1-2 are the diagonals of a cell (numbered row by row)
    assert set(np.unique(first)) == {0, 1, 2, 3}  # every pixel of a cell gets chosen somewhere


def test_the_training_graph_and_the_validation_pick_the_same_pixels():
    image = np.random.default_rng(0).random((1, 8, 12, 3)).astype(np.float32)
    (first, second), = validation_halves([image[0]], seed=5, size_multiple=1)
    # the one-hot choices that give first: find, for every cell, which of its pixels first holds
    cells = image[0].reshape(4, 2, 6, 2, 3).transpose(0, 2, 1, 3, 4).reshape(4, 6, 4, 3)
    index = np.argmax(np.all(cells == first[:, :, None, :], axis=-1), axis=-1)
    choice = np.eye(4, dtype=np.float32)[index][None, ..., None]
    np.testing.assert_array_equal(PickFromCells()([image, choice]).numpy()[0], first)
    assert first.shape == second.shape == (4, 6, 3) and not np.array_equal(first, second)


@pytest.mark.parametrize("alpha", [FIRST_ALPHA, LAST_ALPHA])
def test_recorrupted_input_and_target_carry_uncorrelated_noise_of_the_promised_strength(alpha):
    sigma = 0.08
    rng = np.random.default_rng(0)
    noisy = 0.5 + rng.normal(0, sigma, (4, 64, 64, 1)).astype(np.float32)  # the photo's own noise, n
    table = tf.constant(NoiseLevel((0.5,), (sigma,)).noisy_sigma_table())
    normal = tf.constant(rng.normal(size=noisy.shape), tf.float32)
    model_input, target = (t.numpy() - 0.5 for t in recorrupt(tf.constant(noisy), table, None, normal, alpha))
    assert np.var(model_input) / sigma**2 == pytest.approx(1 + alpha**2, rel=0.05)
    assert np.var(target) / sigma**2 == pytest.approx(1 + 1 / alpha**2, rel=0.05)
    # uncorrelated: the target's noise cannot be predicted from the input, so only the clean image can be learnt
    assert abs(np.corrcoef(model_input.ravel(), target.ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("value", [0.02, 0.5, 0.98])
def test_recorruptions_loss_is_least_at_the_true_value_where_plain_mse_is_pulled_off_by_clipping(value):
    """Targets are noisy 8-bit copies of one true value; of the constant outputs, the loss prefers the true one."""
    sigma = SIGMA / 255
    rng = np.random.default_rng(2)
    targets = np.clip(np.round((value + rng.normal(0, sigma, (1, 64, 64, 1))) * 255), 0, 255) / 255
    outputs = np.linspace(0.0, 1.0, 1001)
    loss = ClippedNoiseError(NoiseLevel((0.5,), (sigma,)).clipped_mean_table())
    chosen = outputs[np.argmin([float(loss(targets, np.full_like(targets, c))) for c in outputs])]
    assert chosen == pytest.approx(value, abs=0.005)
    if value != 0.5:  # plain MSE learns the clipped mean: about 4 of 255 too light at 0.02, too dark at 0.98
        assert abs(targets.mean() - value) > 0.01


def test_added_noise_runs_the_way_the_photos_noise_runs_in_every_orientation():
    """Noise spread along rows, in the photos and in the kernel: after the random flips and transposes of training,
    the added noise must still run the way the patches' own noise does."""
    sigma, alpha = 0.05, 0.5
    rng = np.random.default_rng(3)
    white = rng.normal(0, sigma, (4, 32, 33, 1))
    along_rows = (white[:, :, :-1] + white[:, :, 1:]) / np.sqrt(2)  # each pixel shares noise with its right neighbour
    batch = tf.constant(np.round((0.5 + along_rows) * 255).astype(np.uint8))
    kernel = np.zeros((2, 2, 1, 1), np.float32)
    kernel[0, :, 0, 0] = 1 / np.sqrt(2)  # the same spreading, along rows
    table = tf.constant(NoiseLevel((0.5,), (sigma,)).noisy_sigma_table())

    def runs_along_rows(noise):  # NHWC
        return np.mean(noise[:, :, 1:] * noise[:, :, :-1]) > np.mean(noise[:, 1:] * noise[:, :-1])

    transposed = []
    for step in range(8):  # a batch is transposed or not as a whole
        model_input, target = (t.numpy() for t in recorrupted_examples(
            batch, tf.constant([4, step], tf.int64), table, tf.constant(kernel), 1, alpha))
        photo_noise = (model_input + alpha**2 * target) / (1 + alpha**2) - 0.5  # y, oriented as trained on
        added = (model_input - target) / (alpha + 1 / alpha)  # the added noise, likewise
        transposed.append(not runs_along_rows(photo_noise))
        assert runs_along_rows(added) != transposed[-1]
    assert 0 < sum(transposed) < len(transposed)  # both orientations occurred


@pytest.mark.parametrize("value", [0.0, 0.04, 1.0])
def test_near_black_and_white_the_added_noise_matches_the_clipped_noise_so_input_and_target_stay_uncorrelated(value):
    """Clipping squeezes the noise of dark and light pixels (at sigma 25 a black pixel's varies by 15, not 25):
    noise added at the unclipped strength there would make the input's and the target's noise correlate
    negatively, and the network would learn to smooth dark regions away."""
    sigma, alpha = SIGMA / 255, 0.5
    rng = np.random.default_rng(4)
    noisy = np.clip(np.round((value + rng.normal(0, sigma, (8, 64, 64, 1))) * 255), 0, 255).astype(np.float32) / 255
    normal = tf.constant(rng.normal(size=noisy.shape), tf.float32)
    level = NoiseLevel((0.5,), (sigma,))
    model_input, target = (t.numpy() for t in recorrupt(tf.constant(noisy), tf.constant(level.noisy_sigma_table()),
                                                         None, normal, alpha))
    mean = noisy.mean()  # the clipped mean, around which input and target vary
    # measured: -0.06 / 0.00 / -0.05 (each pixel's strength is looked up at its 3x3 mean, itself a little noisy)
    assert abs(np.corrcoef(model_input.ravel() - mean, target.ravel() - mean)[0, 1]) < 0.08
    # the unclipped strength, as recorruption added before, correlates them strongly: -0.41 / -0.26 / -0.41
    unclipped = recorrupt(tf.constant(noisy), tf.constant(level.table()), None, normal, alpha)
    assert np.corrcoef(*(t.numpy().ravel() - mean for t in unclipped))[0, 1] < -0.2


def test_alpha_falls_from_the_first_to_the_last_over_the_run():
    alphas = [float(alpha_at(tf.constant(step, tf.int64), 101)) for step in (0, 50, 100, 500)]
    assert alphas == pytest.approx([FIRST_ALPHA, (FIRST_ALPHA + LAST_ALPHA) / 2, LAST_ALPHA, LAST_ALPHA])


@pytest.mark.slow
@pytest.mark.parametrize("method, patch_size", [("recorrupt", 32), ("neighbours", 64)])
def test_a_model_trained_on_noisy_images_alone_cleans_them(noisy_folder, tmp_path, method, patch_size):
    out = tmp_path / "self.keras"
    reports = []
    result = train(config_for(noisy_folder, out, self_method=method, patch_size=patch_size), on_epoch=reports.append)
    assert [r.measure for r in reports] == ["self-supervised score"] * 4
    assert result.best_psnr > reports[0].noisy_psnr  # the model predicts its targets better than the identity
    _, metadata = load_model(out)
    assert metadata["noise"] == SELF_SUPERVISED_NOISE and metadata["train_config"]["target"] == "self"
    if method == "recorrupt":  # the noise it measured and trained with, near the true sigma 25
        measured = NoiseLevel.from_dict(metadata["dataset_notes"]["measured_noise"])
        assert 22 < 255 * measured.sigma_at(0.5) < 28
    # Scored against clean twins it never saw: noisy copies of new smooth images, cleaned by the saved model
    clean, noisy = clean_and_noisy(4, 96, seed=50)
    denoised = load_denoiser(out)([n.astype(np.float32) / 255 for n in noisy])
    before = np.mean([psnr(c, n.astype(np.float32) / 255) for c, n in zip(clean, noisy)])
    after = np.mean([psnr(c, d) for c, d in zip(clean, denoised)])
    assert after > before + 1.0, (before, after)  # measured: 20.80 -> 22.54 dB (neighbours)


@pytest.mark.slow
def test_a_recorrupted_run_resumes_from_its_checkpoint(noisy_folder, tmp_path):
    out = tmp_path / "self.keras"
    train(config_for(noisy_folder, out, epochs=1, steps_per_epoch=5))
    assert checkpoint_path(out).exists()
    check_config(config_for(noisy_folder, out, epochs=2, steps_per_epoch=5, resume=True))
    result = train(config_for(noisy_folder, out, epochs=2, steps_per_epoch=5, resume=True))
    assert [report.epoch for report in result.history] == [2]  # only the epoch the first run had not done
    assert load_model(out)[1]["epochs"] == 2
    assert isinstance(load_model(checkpoint_path(out), compile=True)[0].loss, ClippedNoiseError)


def test_clean_images_get_a_warning_and_too_few_pixels_an_error_naming_the_minimum():
    clean = np.stack([(smooth_image(128, 128, 1, seed=s)).astype(np.uint8) for s in range(6)])
    assert "no noise" in check_noisy_images(clean)
    _, noisy = clean_and_noisy(6, 128)
    assert check_noisy_images(np.stack(noisy)) is None
    with pytest.raises(DatasetError, match="65,536"):
        check_noisy_images(np.stack(noisy)[:2, :64, :64])


@pytest.mark.parametrize("changes, named", [
    ({"noise": parse_noise("gaussian:25")}, "Leave out --noise"),
    ({"resume": True, "self_method": "neighbours"}, "--init-from"),
    ({"target": "other"}, "--target"),
    ({"self_method": "other"}, "--self-method"),
    ({"loss": "psnr"}, "mse"),
])
def test_options_that_cannot_work_with_target_self_are_refused_before_any_work(tmp_path, changes, named):
    with pytest.raises(UsageError, match=named):
        check_config(config_for(tmp_path, tmp_path / "m.keras", **changes))


def write_twins(folder, count: int = 2):
    clean, noisy = clean_and_noisy(count, 96, seed=80)
    for side, images in (("clean", [np.round(c * 255).astype(np.uint8) for c in clean]), ("noisy", noisy)):
        (folder / side).mkdir(parents=True)
        for index, image in enumerate(images):
            Image.fromarray(image[..., 0]).save(folder / side / f"twin{index}.png")
    return folder


@pytest.mark.slow
def test_the_shipped_model_adapts_to_a_noisy_folder_with_psnr_reported_on_clean_twins(noisy_folder, tmp_path):
    twins = write_twins(tmp_path / "twins")
    out = tmp_path / "adapted.keras"
    result = CliRunner().invoke(app, [
        "train", "--dataset", "folder", "--path", str(noisy_folder), "--channels", "1", "--target", "self",
        "--init-from", "gaussian", "--validation-path", str(twins), "--patch-size", "64", "--batch-size", "4",
        "--epochs", "1", "--steps-per-epoch", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("starting model", "epoch"))]
    assert lines[0].startswith("starting model") and len(lines) == 2  # the shipped model is scored first
    assert all("self-supervised score" in line for line in lines)
    # the twins' PSNR is what the line reports: the shipped gray model cleans sigma-25 noise far above the input
    noisy_db, denoised_db = (float(x) for x in re.findall(r"noisy ([\d.]+) dB -> denoised ([\d.]+) dB", lines[0])[0])
    assert denoised_db > noisy_db + 5
    assert load_model(out)[1]["train_config"]["init_from"].endswith("gaussian.keras")


def test_twins_without_a_noisy_folder_are_refused_naming_what_is_missing(noisy_folder, tmp_path):
    (tmp_path / "twins" / "clean").mkdir(parents=True)
    with pytest.raises(UsageError, match="noisy/"):
        check_config(config_for(noisy_folder, tmp_path / "m.keras", validation_path=tmp_path / "twins"))


@pytest.mark.slow
def test_training_on_clean_images_with_target_self_warns_that_there_is_no_noise_to_learn(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    for index in range(6):
        Image.fromarray(smooth_image(128, 128, 1, seed=index)[..., 0]).save(folder / f"photo{index}.png")
    result = CliRunner().invoke(app, [
        "train", "--dataset", "folder", "--path", str(folder), "--channels", "1", "--target", "self", "--width", "8",
        "--depth", "2", "--patch-size", "64", "--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "1",
        "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 0, result.output
    assert "warning: the training images seem to carry almost no noise" in result.stderr
