"""`--strength`: less smoothing keeps part of what the model removed, more shows it louder noise and cleans again."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from denoise.inference.strength import WithStrength
from denoise.io.images import read_image
from denoise.noise.specs import add_noise, parse_noise

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "clean"


@pytest.fixture(scope="module")
def gray_model():
    from denoise.inference.denoiser import load_denoiser
    from denoise.nn.model_files import resolve_model

    return load_denoiser(resolve_model("gaussian"))


@pytest.fixture(scope="module")
def noisy():
    clean = read_image(SAMPLES / "camera.png").pixels[96:224, 96:224]
    return np.round(add_noise(clean, parse_noise("gaussian:10"), np.random.default_rng(0)) * 255) / 255


def roughness(image: np.ndarray) -> float:
    """Median absolute difference between horizontal neighbours (edges barely move it): lower is smoother."""
    return float(np.median(np.abs(np.diff(image, axis=1))))


def test_strength_0_gives_the_input_back_and_0_5_goes_half_way(gray_model, noisy):
    (same,) = WithStrength(gray_model, 0.0)([noisy.copy()])
    assert np.array_equal(same, noisy)
    (full,) = gray_model([noisy.copy()])
    (half,) = WithStrength(gray_model, 0.5)([noisy.copy()])
    np.testing.assert_allclose(half, (noisy + full) / 2, atol=1e-5)


def test_strength_above_1_smooths_more_and_keeps_the_input_intact(gray_model, noisy):
    kept = noisy.copy()
    (normal,) = gray_model([noisy.copy()])
    (strong,) = WithStrength(gray_model, 2.0)([noisy])
    assert np.array_equal(noisy, kept)
    assert roughness(strong) < 0.8 * roughness(normal) < roughness(noisy)


def test_the_wrapper_forwards_the_wrapped_denoisers_attributes(gray_model):
    assert WithStrength(gray_model, 2.0).precision == gray_model.precision
    with pytest.raises(ValueError, match="0..3"):
        WithStrength(gray_model, 3.5)


def test_run_refuses_a_strength_out_of_range_before_loading_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-m", "denoise", "run", str(SAMPLES), "--out", str(tmp_path / "o"),
                             "--strength", "9"], capture_output=True, text=True)
    assert result.returncode == 2 and "--strength" in result.stderr and not (tmp_path / "o").exists()
