"""noise/level.py: the noise's strength at each brightness, measured from noisy photos alone."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise.noise.level import estimate_noise_level

CLEAN = Path(__file__).parents[1] / "samples" / "clean"


def photo_patches(size: int = 128) -> np.ndarray:
    """Gray patches of the shipped clean sample photos: real texture and edges, as a camera's folder has."""
    patches = []
    for name in ("astronaut.png", "camera.png", "chelsea.png", "coffee.jpg"):
        gray = np.asarray(Image.open(CLEAN / name).convert("L"))
        for top in range(0, gray.shape[0] - size + 1, size):
            for left in range(0, gray.shape[1] - size + 1, size):
                patches.append(gray[top : top + size, left : left + size, None])
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
    mid_grey_sigma = float(estimate_noise_level(photo_patches()).sigma_at(0.5)) * 255
    assert mid_grey_sigma < 2.5


def test_shot_noise_reads_stronger_in_light_than_in_dark_grey():
    # Poisson-like: variance grows with the signal (count 30 at white), which recorruption must copy
    level = estimate_noise_level(noisy(photo_patches(), lambda x: np.sqrt(x / 30)))
    dark, mid = (float(level.sigma_at(v)) for v in (0.2, 0.5))
    assert dark == pytest.approx(np.sqrt(0.2 / 30), rel=0.25)
    assert mid == pytest.approx(np.sqrt(0.5 / 30), rel=0.15)
    table = level.table()
    assert table.shape == (256,) and table[128] > 1.3 * table[50]
