"""The shipped default models: present in the package, safe to load, documented, and better than the noisy input."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from denoise.cli import app
from denoise.evaluation import psnr
from denoise.inference.shipped import DEFAULT_MODELS, default_model_path
from denoise.io.images import read_image, save_array
from denoise.nn.architectures import is_impulse_model
from denoise.nn.saving import load_model
from denoise.noise.specs import SALT_AND_PEPPER, add_noise, parse_noise

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.mark.parametrize("kind, channels", sorted(DEFAULT_MODELS))
def test_default_model_loads_safely_and_has_a_model_card(kind, channels):
    path = default_model_path(channels, kind)
    model, metadata = load_model(path)
    # A grayscale model cleans colour images plane by plane; a colour model cleans gray ones as three equal channels.
    assert model.input_shape[-1] in (1, 3)
    assert metadata["channels"] == model.input_shape[-1] and metadata["noise"].startswith(f"{kind}:0-")
    assert is_impulse_model(model) == (kind == SALT_AND_PEPPER)
    card = path.with_suffix(".md").read_text().lower()
    assert "denoise train" in card and ("set12" if channels == 1 else "cset5") in card and "median" in card


def test_weights_stay_small():
    total = sum(path.stat().st_size for path in {default_model_path(c, k) for k, c in DEFAULT_MODELS})
    assert total <= 20_000_000


@pytest.mark.slow
def test_run_with_the_default_models_cleans_the_samples(tmp_path):
    noisy = tmp_path / "noisy"
    shutil.copytree(SAMPLES / "noisy", noisy)
    result = CliRunner().invoke(app, ["run", str(noisy), "-q"])
    assert result.exit_code == 0, result.output
    for clean_path in sorted((SAMPLES / "clean").iterdir()):
        if clean_path.suffix not in (".png",):  # the JPEG sample's noise went through JPEG compression
            continue
        clean = read_image(clean_path).pixels
        before = psnr(clean, read_image(noisy / clean_path.name).pixels)
        after = psnr(clean, read_image(tmp_path / "noisy-denoised" / clean_path.name).pixels)
        assert after > before + 4, f"{clean_path.name}: {before:.2f} dB -> {after:.2f} dB"


@pytest.fixture(scope="module")
def impulse_folder(tmp_path_factory):
    """The gray and colour PNG samples with 20% salt-and-pepper noise, as 8-bit files."""
    folder = tmp_path_factory.mktemp("impulse") / "noisy"
    rng = np.random.default_rng(0)
    for name in ("camera.png", "astronaut.png"):
        clean = read_image(SAMPLES / "clean" / name).pixels
        save_array(add_noise(clean, parse_noise("salt-and-pepper:0.2"), rng), folder / name)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("noise_option", [[], ["--noise", "salt-and-pepper"]])
def test_run_cleans_salt_and_pepper_with_the_impulse_model(impulse_folder, tmp_path, noise_option):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(impulse_folder), "-o", str(out), "-q", *noise_option])
    assert result.exit_code == 0, result.output
    if not noise_option:
        assert "2 as salt-and-pepper" in result.output  # detected, and said so
    for name in ("camera.png", "astronaut.png"):
        clean = read_image(SAMPLES / "clean" / name).pixels
        noisy, cleaned = read_image(impulse_folder / name).pixels, read_image(out / name).pixels
        kept = (noisy > 0) & (noisy < 1)  # the impulse model leaves every pixel that is not pure black or white
        assert np.array_equal(cleaned[kept], noisy[kept])
        assert psnr(clean, cleaned) > psnr(clean, noisy) + 15


def test_run_with_noise_gaussian_uses_the_gaussian_model_even_on_impulse_noise(impulse_folder, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(impulse_folder), "-o", str(out), "-q", "--noise", "gaussian"])
    assert result.exit_code == 0, result.output
    noisy, cleaned = read_image(impulse_folder / "camera.png").pixels, read_image(out / "camera.png").pixels
    kept = (noisy > 0) & (noisy < 1)
    assert not np.array_equal(cleaned[kept], noisy[kept])


def test_run_refuses_noise_together_with_model(impulse_folder, tmp_path):
    model = default_model_path(1)
    result = CliRunner().invoke(app, ["run", str(impulse_folder), "-o", str(tmp_path / "o"), "--model", str(model),
                                      "--noise", "gaussian"])
    assert result.exit_code == 2 and "--noise" in result.output


@pytest.mark.slow
def test_the_gray_default_model_cleans_colour_photos_better_in_the_opponent_colour_space():
    from denoise.inference.denoiser import Denoiser, load_denoiser

    path = default_model_path(3, "gaussian")
    chosen = load_denoiser(path)
    assert chosen.opponent
    by_channel = Denoiser(chosen.model)
    # measured at sigma 25: chelsea 30.75 -> 32.06 dB, astronaut 30.10 -> 30.25 dB
    for name, margin in (("chelsea.png", 0.8), ("astronaut.png", 0.05)):
        clean = read_image(SAMPLES / "clean" / name).pixels
        noisy = np.round(add_noise(clean, parse_noise("gaussian:25"), np.random.default_rng(0)) * 255) / 255
        plain, opponent = (psnr(clean, d([noisy.astype(np.float32)])[0]) for d in (by_channel, chosen))
        assert opponent > plain + margin, f"{name}: {plain:.2f} dB by channel, {opponent:.2f} dB opponent"


def test_a_clean_gray_photo_is_passed_through_and_a_noisy_one_is_cleaned(tmp_path):
    """Images whose detected Gaussian noise reads below PASS_THROUGH_SIGMA come out with every pixel as it was, and
    the summary counts them; light noise above it is still removed."""
    from denoise.inference.shipped import PASS_THROUGH_SIGMA
    from denoise.noise.detection import image_sigma

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    clean = read_image(SAMPLES / "clean" / "camera.png").pixels
    light = np.round(add_noise(clean, parse_noise("gaussian:8"), np.random.default_rng(0)) * 255) / 255
    assert image_sigma(clean) < PASS_THROUGH_SIGMA < image_sigma(light)  # the premise: 1.7 and about 8
    shutil.copy(SAMPLES / "clean" / "camera.png", folder / "clean.png")
    save_array(light, folder / "light.png")
    result = CliRunner().invoke(app, ["run", str(folder), "-o", str(out), "--precision", "float32"])
    assert result.exit_code == 0, result.output
    assert "1 of them unchanged: no noise found" in result.output
    assert np.array_equal(read_image(out / "clean.png").pixels, clean)
    assert psnr(clean, read_image(out / "light.png").pixels) > psnr(clean, light) + 3


def test_noise_gaussian_told_cleans_even_an_image_that_reads_clean():
    import denoise

    clean = np.asarray(read_image(SAMPLES / "clean" / "camera.png").pixels[..., 0] * 255, np.uint8)
    assert np.array_equal(denoise.clean(clean, precision="float32"), clean)
    assert not np.array_equal(denoise.clean(clean, noise="gaussian", precision="float32"), clean)
