"""noise/level.py: the noise's strength at each brightness, measured from noisy photos alone."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from denoise.noise.camera import add_camera_noise
from denoise.noise.clipping import clipped_mean, clipped_std
from denoise.noise.level import SELECTED, NoiseLevel, estimate_noise_level, pure_noise_details

CLEAN = Path(__file__).parents[1] / "samples" / "clean"


def photo_patches(size: int = 128, mode: str = "L") -> np.ndarray:
    """Patches of the shipped clean sample photos (gray, or colour with mode "RGB"): real texture and edges, as a
    camera's folder has."""
    patches = []
    for name in ("astronaut.png", "camera.png", "chelsea.png", "coffee.jpg"):
        pixels = np.asarray(Image.open(CLEAN / name).convert(mode))
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        for top in range(0, pixels.shape[0] - size + 1, size):
            for left in range(0, pixels.shape[1] - size + 1, size):
                patches.append(pixels[top : top + size, left : left + size])
    return np.stack(patches)


def noisy(clean: np.ndarray, sigma_of, seed: int = 0) -> np.ndarray:
    """uint8 images with Gaussian noise whose sigma (0-1 scale) is sigma_of(clean value), clipped as a file is."""
    values = clean.astype(np.float64) / 255
    draws = np.random.default_rng(seed).normal(0, 1, clean.shape) * sigma_of(values)
    return np.clip(np.round((values + draws) * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [10, 25])
def test_white_noise_reads_its_sigma_in_the_mid_tones_despite_the_photos_texture(sigma):
    level = estimate_noise_level(noisy(photo_patches(), lambda x: sigma / 255 + 0 * x))
    assert float(level.sigma_at(0.5)) * 255 == pytest.approx(sigma, abs=1.5)


def test_clean_photos_read_almost_no_noise():
    # their finest texture reads as a little noise spread over neighbouring pixels
    mid_grey_sigma = float(estimate_noise_level(photo_patches()).sigma_at(0.5)) * 255
    assert mid_grey_sigma < 5


def test_white_noise_gets_no_shaping_filter_and_camera_noise_one_that_copies_its_spread():
    clean = photo_patches(mode="RGB")
    white = estimate_noise_level(noisy(clean, lambda x: 20 / 255 + 0 * x))
    assert white.kernel is None

    noise, level, true_mid_sigma = measured_camera_noise(clean, 0.5)
    assert level.kernel is not None and level.kernel.shape[2:] == (3, 3)
    # the noise the filter makes from white noise: its neighbours correlate as the camera's do (about 0.6)
    shaped = tf.nn.conv2d(tf.random.stateless_normal((4, 96, 96, 3), (0, 1)), level.kernel, 1, "VALID").numpy()
    assert neighbour_correlation(shaped) == pytest.approx(neighbour_correlation(noise), abs=0.1)
    assert neighbour_correlation(noise) > 0.4
    # and its strength at mid grey is the camera's, though the finest detail sees a seventh of it
    assert float(level.sigma_at(0.5)) == pytest.approx(true_mid_sigma, rel=0.1)


def test_light_camera_noise_on_textured_photos_is_not_read_much_too_strong():
    # the finest detail sees a seventh of spread noise, so the photos' own finest texture weighs heavily where the
    # noise is light: read from the 10% quantile of the HH detail this read 1.22 times the truth, from the 2%
    # quantile 1.08, from the flattest blocks by the other bands 1.01
    _, level, true_mid_sigma = measured_camera_noise(photo_patches(mode="RGB"), 0.3)
    assert float(level.sigma_at(0.5)) == pytest.approx(true_mid_sigma, rel=0.05)


def measured_camera_noise(clean: np.ndarray, strength: float):
    """(the noise, the NoiseLevel measured from the noisy images, the true sigma at mid grey (0-1 scale)) for
    uint8 colour images through camera noise of that level, saved as 8-bit files are."""
    values = tf.constant(clean, tf.float32) / 255
    camera = add_camera_noise(values, strength, strength, tf.constant([1, 2]))
    noise = (camera - values).numpy()
    level = estimate_noise_level(np.round(camera.numpy() * 255).astype(np.uint8))
    mid = np.abs(values.numpy().mean(axis=-1) - 0.5) < 0.1
    return noise, level, float(np.sqrt(np.mean(noise[mid] ** 2)))


def neighbour_correlation(noise: np.ndarray) -> float:
    """The correlation of the noise of horizontal neighbours, over every channel."""
    return float(np.corrcoef(noise[:, :, :-1].ravel(), noise[:, :, 1:].ravel())[0, 1])


def test_shot_noise_reads_stronger_in_light_than_in_dark_grey():
    # Poisson-like: variance grows with the signal (count 30 at white), which recorruption must copy
    level = estimate_noise_level(noisy(photo_patches(), lambda x: np.sqrt(x / 30)))
    dark, mid = (float(level.sigma_at(v)) for v in (0.2, 0.5))
    assert dark == pytest.approx(np.sqrt(0.2 / 30), rel=0.25)
    assert mid == pytest.approx(np.sqrt(0.5 / 30), rel=0.15)
    table = level.table()
    assert table.shape == (256,) and table[128] > 1.3 * table[50]


def test_choosing_flat_blocks_by_one_band_does_not_bias_the_other_on_white_noise():
    # the simulation that calibrates the estimate: white noise's bands are independent, so its flattest blocks by
    # LH and HL detail carry the same HH detail as any (unit variance), though their own LH and HL are weak
    diagonal, flatness = pure_noise_details(None, 1)
    chosen = flatness <= np.quantile(flatness, SELECTED)
    assert diagonal[chosen].mean() == pytest.approx(1.0, abs=0.02)
    assert flatness[chosen].mean() < 0.8 * 2  # two bands of unit variance, well below their mean of 2


@pytest.mark.parametrize("value", [0.0, 0.03, 0.5, 0.97, 1.0])
@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.3])
def test_clipped_mean_and_spread_are_those_of_clipped_noisy_copies(value, sigma):
    copies = np.clip(value + np.random.default_rng(1).normal(0, sigma, 1_000_000), 0, 1)
    assert float(clipped_mean(value, sigma)) == pytest.approx(copies.mean(), abs=5e-4)
    assert float(clipped_std(value, sigma)) == pytest.approx(copies.std(), abs=5e-4)


def test_the_noise_before_clipping_goes_on_beyond_the_groups_clipping_squeezed():
    # Gaussian noise of 25 read lower in the outer groups, where clipping squeezed it: they are not trusted
    gaussian = NoiseLevel((0.1, 0.5, 0.9), (21 / 255, 25 / 255, 21 / 255))
    assert gaussian.clean_sigma_at(np.array([0.0, 0.1, 0.5, 1.0])) * 255 == pytest.approx([25, 25, 25, 25])
    # shot noise, variance proportional to the light: the straight line through the variances reaches 0 at black
    centres = np.linspace(0.3, 0.7, 5)
    shot = NoiseLevel(tuple(centres), tuple(np.sqrt(centres / 30)))
    assert shot.clean_sigma_at(np.array([0.0, 0.1, 1.0])) == pytest.approx(np.sqrt([0.0, 0.1 / 30, 1 / 30]), abs=1e-6)
    # what the noisy pixels of a black region spread by, and average to, at sigma 25
    assert gaussian.noisy_sigma_table()[5] * 255 == pytest.approx(25 * np.sqrt(0.5 - 1 / (2 * np.pi)), rel=0.01)
    assert gaussian.clipped_mean_table()[0] * 255 == pytest.approx(25 / np.sqrt(2 * np.pi), rel=0.01)
