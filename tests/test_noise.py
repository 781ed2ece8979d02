from pathlib import Path

import numpy as np
import pytest

from denoise.errors import NoiseSpecError
from denoise.images import read_image
from denoise.noise import (
    GAUSSIAN,
    SALT_AND_PEPPER,
    NoiseSpec,
    add_noise,
    detect_noise_kind,
    impulses_hit_whole_pixels,
    parse_noise,
    parse_noise_kind,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gaussian:25", NoiseSpec(GAUSSIAN, 25, 25)),
        ("gaussian:0-50", NoiseSpec(GAUSSIAN, 0, 50)),
        ("salt-and-pepper:0.2", NoiseSpec(SALT_AND_PEPPER, 0.2, 0.2)),
        ("SP:0.05-0.3", NoiseSpec(SALT_AND_PEPPER, 0.05, 0.3)),
    ],
)
def test_parse_noise_reads_fixed_levels_and_ranges(text, expected):
    assert parse_noise(text) == expected


@pytest.mark.parametrize("text", ["gaussian", "poisson:3", "gaussian:abc", "gaussian:50-10", "sp:1.5", "gaussian:1-2-3"])
def test_parse_noise_rejects_bad_specs_with_examples(text):
    with pytest.raises(NoiseSpecError, match="gaussian:25"):
        parse_noise(text)


def test_spec_prints_back_as_parsed():
    assert str(parse_noise("gaussian:0-50")) == "gaussian:0-50"
    assert str(parse_noise("salt-and-pepper:0.1")) == "salt-and-pepper:0.1"


def test_gaussian_noise_has_the_requested_sigma_and_is_seeded():
    image = np.full((200, 200, 1), 0.5, np.float32)
    noisy = add_noise(image, parse_noise("gaussian:25"), np.random.default_rng(1))
    assert abs(float(np.std(noisy - image)) * 255 - 25) < 0.5
    again = add_noise(image, parse_noise("gaussian:25"), np.random.default_rng(1))
    other = add_noise(image, parse_noise("gaussian:25"), np.random.default_rng(2))
    assert np.array_equal(noisy, again) and not np.array_equal(noisy, other)


def test_salt_and_pepper_hits_the_requested_fraction_with_black_and_white():
    image = np.full((200, 200, 3), 0.5, np.float32)
    noisy = add_noise(image, parse_noise("salt-and-pepper:0.3"), np.random.default_rng(0))
    changed = np.any(noisy != image, axis=-1)
    assert abs(changed.mean() - 0.3) < 0.02
    assert set(np.unique(noisy[changed])) == {0.0, 1.0}


@pytest.mark.parametrize("spec", ["gaussian:0", "salt-and-pepper:0"])
def test_zero_noise_is_the_identity(spec):
    image = np.random.default_rng(0).random((17, 9, 3)).astype(np.float32)
    assert np.array_equal(add_noise(image, parse_noise(spec), np.random.default_rng(0)), image)


def test_noise_range_draws_a_level_per_image():
    image = np.full((64, 64, 1), 0.5, np.float32)
    rng = np.random.default_rng(0)
    sigmas = [float(np.std(add_noise(image, parse_noise("gaussian:5-45"), rng) - image)) * 255 for _ in range(20)]
    assert min(sigmas) >= 4 and max(sigmas) <= 46 and max(sigmas) - min(sigmas) > 15


SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "clean"


def _sample(name: str) -> np.ndarray:
    return read_image(SAMPLES / name).pixels


def _as_file(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255) / 255  # 8-bit, as a noisy file on disk is


@pytest.mark.parametrize("name", ["camera.png", "astronaut.png", "text.png", "coffee.jpg"])
@pytest.mark.parametrize("spec, expected", [
    ("gaussian:0", GAUSSIAN), ("gaussian:15", GAUSSIAN), ("gaussian:50", GAUSSIAN), ("gaussian:75", GAUSSIAN),
    ("salt-and-pepper:0.03", SALT_AND_PEPPER), ("salt-and-pepper:0.3", SALT_AND_PEPPER),
    ("salt-and-pepper:0.7", SALT_AND_PEPPER),
])
def test_detects_the_kind_of_noise_on_real_photos(name, spec, expected):
    noisy = _as_file(add_noise(_sample(name), parse_noise(spec), np.random.default_rng(0)))
    assert detect_noise_kind(noisy) == expected


def test_detection_of_a_large_image_looks_at_crops_only():
    # 2000 x 1500 pixels of salt-and-pepper noise around an untouched middle: the corner crops still see it.
    image = np.tile(_sample("camera.png"), (4, 4, 1))[:1500, :2000]
    noisy = _as_file(add_noise(image, parse_noise("salt-and-pepper:0.1"), np.random.default_rng(0)))
    assert detect_noise_kind(noisy) == SALT_AND_PEPPER
    noisy = _as_file(add_noise(image, parse_noise("gaussian:50"), np.random.default_rng(0)))
    assert detect_noise_kind(noisy) == GAUSSIAN


def test_pure_black_and_white_drawings_are_not_salt_and_pepper():
    drawing = np.zeros((200, 200, 1), np.float32)
    drawing[50:150, 40:160] = 1.0  # a white box
    drawing[::20, :] = 1.0  # thin lines look like isolated extremes to a 3x3 median...
    # ...but with no gray pixel at all there is no clean remainder to tell salt-and-pepper noise by
    assert detect_noise_kind(drawing) == GAUSSIAN


@pytest.mark.parametrize("text, kind", [("auto", None), ("gaussian", GAUSSIAN), ("sp", SALT_AND_PEPPER),
                                        ("salt-and-pepper:0.1", SALT_AND_PEPPER)])
def test_parse_noise_kind(text, kind):
    assert parse_noise_kind(text) == kind


def test_parse_noise_kind_names_the_choices():
    with pytest.raises(NoiseSpecError, match="auto, gaussian or salt-and-pepper"):
        parse_noise_kind("poisson")


def _per_channel_salt_and_pepper(image, amount, rng):
    """Impulses hitting each channel on its own, as MATLAB's imnoise does on RGB arrays."""
    hit, salt = rng.random(image.shape) < amount, rng.random(image.shape) < 0.5
    return np.where(hit, salt.astype(np.float32), image)


@pytest.mark.parametrize("amount", [0.05, 0.3])
def test_tells_whole_pixel_impulses_from_channel_by_channel_ones(amount):
    clean, rng = _sample("chelsea.png"), np.random.default_rng(0)
    assert impulses_hit_whole_pixels(add_noise(clean, parse_noise(f"salt-and-pepper:{amount}"), rng))
    assert not impulses_hit_whole_pixels(_per_channel_salt_and_pepper(clean, amount, rng))
