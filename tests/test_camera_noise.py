"""Camera noise (noise/camera.py): brighter is noisier, demosaicing correlates neighbours and channels, seeded."""

import numpy as np
import pytest
import tensorflow as tf
from factories import smooth_image

from denoise.noise.camera import add_camera_noise
from denoise.noise.specs import NoiseSpecError, add_noise, parse_noise, parse_noise_kind
from denoise.training.batches import make_pipeline


def residual(brightness, level=0.5, seed=(1, 2), shape=(8, 64, 64, 3), jpeg=False):
    flat = tf.fill(shape, brightness)
    return (add_camera_noise(flat, level, level, tf.constant(seed), jpeg=jpeg) - flat).numpy()


def test_the_noise_grows_with_brightness_from_the_shadows_to_the_mid_tones():
    """Shot noise: its variance grows with the light recorded (the tone curve flattens it again in the highlights)."""
    stds = [residual(b).std() for b in (0.05, 0.2, 0.5)]
    assert stds[0] < 0.8 * stds[1] and stds[1] < stds[2]


def test_the_noise_grows_with_the_level():
    stds = [residual(0.4, level).std() for level in (0.0, 0.5, 1.0)]
    assert 0 < stds[0] < stds[1] / 2 and stds[1] < stds[2] / 2


def test_demosaicing_correlates_neighbouring_pixels_and_the_channels():
    noise = residual(0.4)
    green = noise[..., 1]
    across = np.corrcoef(green[:, :, :-1].ravel(), green[:, :, 1:].ravel())[0, 1]
    down = np.corrcoef(green[:, :-1].ravel(), green[:, 1:].ravel())[0, 1]
    channels = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
    assert across > 0.2 and down > 0.2  # white noise: about 0
    assert abs(channels) > 0.1  # per-channel white noise: about 0
    white = np.random.default_rng(0).standard_normal(green.shape)
    assert abs(np.corrcoef(white[:, :, :-1].ravel(), white[:, :, 1:].ravel())[0, 1]) < 0.05


def test_the_same_seed_gives_the_same_noise_and_another_seed_other_noise():
    assert np.array_equal(residual(0.4, seed=(3, 4)), residual(0.4, seed=(3, 4)))
    assert not np.array_equal(residual(0.4, seed=(3, 4)), residual(0.4, seed=(3, 5)))
    assert np.array_equal(residual(0.4, seed=(3, 4), jpeg=True), residual(0.4, seed=(3, 4), jpeg=True))


def test_jpeg_changes_the_noise_and_clean_areas_stay_clean_of_signal_change():
    image = smooth_image(64, 64, 3, seed=1).astype(np.float32)[None] / 255
    plain = add_camera_noise(tf.constant(image), 0.0, 0.0, tf.constant([5, 6])).numpy()
    jpeg = add_camera_noise(tf.constant(image), 0.0, 0.0, tf.constant([5, 6]), jpeg=True).numpy()
    assert not np.array_equal(plain, jpeg)
    assert abs((plain - image).mean()) < 2 / 255  # only noise is added: the signal is not shifted or blurred


@pytest.mark.parametrize("size, channels", [((31, 33), 1), ((28, 28), 3)])
def test_any_size_and_gray_images_come_back_in_shape_and_range(size, channels):
    image = smooth_image(*size, channels, seed=2).astype(np.float32) / 255
    noisy = add_noise(image, parse_noise("camera:0-1"), np.random.default_rng(0))
    assert noisy.shape == image.shape and noisy.dtype == np.float32
    assert 0 <= noisy.min() and noisy.max() <= 1 and not np.array_equal(noisy, image)
    again = add_noise(image, parse_noise("camera:0-1"), np.random.default_rng(0))
    assert np.array_equal(noisy, again)


def test_training_batches_draw_camera_noise_in_the_tf_data_pipeline():
    patches = np.stack([smooth_image(32, 32, 3, seed=s) for s in range(4)])
    noisy, clean = next(iter(make_pipeline(patches, parse_noise("camera-jpeg:0.3-1"), 4, seed=0)))
    noisy, clean = noisy.numpy(), clean.numpy()
    assert noisy.shape == clean.shape and np.array_equal(noisy, np.round(noisy * 255) / 255)
    assert 2 / 255 < np.std(noisy - clean) < 40 / 255


def test_camera_specs_parse_with_levels_0_to_1_and_run_chooses_the_camera_model_for_both():
    assert str(parse_noise("camera:0-1")) == "camera:0-1" and parse_noise("camera-jpeg:0.5").kind == "camera-jpeg"
    with pytest.raises(NoiseSpecError, match="0..1"):
        parse_noise("camera:2")
    assert parse_noise_kind("camera") == parse_noise_kind("camera-jpeg") == "camera"
    with pytest.raises(NoiseSpecError, match="--noise camera"):
        parse_noise_kind("camera:0.5")
