"""The opponent colour space a gray model cleans colour images in, and undoing the bias of clipped noise."""

import numpy as np
import pytest

from denoise.inference import colour
from denoise.inference.colour import (
    NOISE_GAIN,
    from_opponent,
    noise_sigma,
    to_opponent,
    unclip,
)


def test_opponent_planes_round_trip_in_place_and_band_by_band(monkeypatch):
    image = np.random.default_rng(0).random((37, 21, 3)).astype(np.float32)
    planes = to_opponent(image)
    assert planes.min() >= 0 and planes.max() <= 1  # every plane is an image in [0, 1] for the gray model
    np.testing.assert_allclose(planes[..., 0], image.mean(axis=-1), atol=1e-6)
    np.testing.assert_allclose(from_opponent(planes), image, atol=1e-6)
    monkeypatch.setattr(colour, "_BAND_PIXELS", 50)  # bands of a few rows, converted in place
    same = image.copy()
    assert to_opponent(same, out=same) is same
    np.testing.assert_allclose(same, planes, atol=1e-6)
    from_opponent(same, out=same)
    np.testing.assert_allclose(same, image, atol=1e-6)


def test_noise_in_each_opponent_plane_is_a_channels_sigma_over_its_gain():
    noise = np.random.default_rng(1).normal(0, 0.1, (400, 400, 3)).astype(np.float32)
    planes = to_opponent(noise) - to_opponent(np.zeros_like(noise))
    np.testing.assert_allclose(planes.std(axis=(0, 1)) * NOISE_GAIN, 0.1, rtol=0.02)


@pytest.mark.parametrize("sigma", [2 / 255, 15 / 255, 50 / 255])
def test_the_noise_level_is_read_off_what_the_model_removed(sigma):
    rng = np.random.default_rng(2)
    ramp = np.linspace(0.2, 0.8, 300, dtype=np.float32)
    clean = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (300, 1)), np.tile(ramp[:, None], (1, 300))], -1)
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    assert noise_sigma(to_opponent(noisy), to_opponent(clean)) == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize("level", [0.0, 0.02, 0.06, 0.97])
def test_unclip_turns_the_mean_of_clipped_noisy_values_back_into_the_clean_value(level):
    sigma = 30 / 255
    noisy = np.clip(level + np.random.default_rng(3).normal(0, sigma, 1_000_000), 0, 1)
    mean = np.full((1, 1, 3), noisy.mean(), np.float32)  # what an ideal denoiser of a flat patch returns
    assert abs(mean[0, 0, 0] - level) > 0.01 or level == 0.97  # the bias is real near black
    np.testing.assert_allclose(unclip(mean, sigma), level, atol=0.002)


def test_unclip_leaves_values_away_from_black_and_white_and_light_noise_alone():
    image = np.random.default_rng(4).random((20, 30, 3)).astype(np.float32)
    middle = (image > 0.3) & (image < 0.7)
    before = image.copy()
    unclip(image, 25 / 255)
    assert np.array_equal(image[middle], before[middle]) and not np.array_equal(image, before)
    untouched = before.copy()
    assert np.array_equal(unclip(untouched, 0.1 / 255), before)


def test_the_noise_is_measured_on_all_of_a_small_image_and_a_bounded_sample_of_a_big_one():
    from denoise.inference.colour import RESIDUAL_SAMPLES, residual_stride

    assert residual_stride(512, 512) == 1
    for height, width in ((3000, 4000), (6000, 8400)):
        stride = residual_stride(height, width)
        samples = -(-height // stride) * -(-width // stride)
        assert RESIDUAL_SAMPLES <= samples < 2 * RESIDUAL_SAMPLES
