import numpy as np
import pytest

from denoise.errors import NoiseSpecError
from denoise.noise.specs import (
    GAUSSIAN,
    SALT_AND_PEPPER,
    NoiseSpec,
    add_noise,
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


@pytest.mark.parametrize(
    "text", ["gaussian", "speckle:3", "gaussian:abc", "gaussian:50-10", "sp:1.5", "gaussian:1-2-3"]
)
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


@pytest.mark.parametrize(
    "text, kind", [("auto", None), ("gaussian", GAUSSIAN), ("sp", SALT_AND_PEPPER), ("Impulse", SALT_AND_PEPPER)]
)
def test_parse_noise_kind(text, kind):
    assert parse_noise_kind(text) == kind


@pytest.mark.parametrize("text", ["salt-and-pepper:0.1", "gaussian:25", "gaussian:999", "gaussian:abc"])
def test_parse_noise_kind_refuses_a_level_instead_of_dropping_it(text):
    with pytest.raises(NoiseSpecError, match="measure the level in each image themselves. Leave out ':"):
        parse_noise_kind(text)


def test_parse_noise_kind_names_the_choices():
    with pytest.raises(NoiseSpecError, match="auto, gaussian, salt-and-pepper or camera"):
        parse_noise_kind("poisson")


def test_poisson_noise_keeps_the_mean_and_its_variance_grows_with_brightness_as_value_over_count():
    spec = parse_noise("poisson:30")
    for value in (0.1, 0.5, 0.9):
        flat = np.full((128, 128, 1), value, np.float32)
        noisy = add_noise(flat, spec, np.random.default_rng(0), clip=False)
        assert noisy.mean() == pytest.approx(value, abs=0.01)
        assert noisy.var() == pytest.approx(value / 30, rel=0.1)
    again = add_noise(flat, spec, np.random.default_rng(0), clip=False)
    np.testing.assert_array_equal(noisy, again)


def test_poisson_noise_trains_but_run_has_no_shipped_model_for_it():
    from denoise.noise.specs import parse_noise_kind

    assert str(parse_noise("shot:10-100")) == "poisson:10-100"
    with pytest.raises(NoiseSpecError, match="No shipped model"):
        parse_noise_kind("poisson")
