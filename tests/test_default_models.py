"""The shipped default models: present in the package, safe to load, documented, and better than the noisy input."""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from denoise.cli import app
from denoise.evaluation import psnr
from denoise.images import read_image
from denoise.model_files import DEFAULT_MODELS, default_model_path
from denoise.models import load_model

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.mark.parametrize("channels", sorted(DEFAULT_MODELS))
def test_default_model_loads_safely_and_has_a_model_card(channels):
    path = default_model_path(channels)
    model, metadata = load_model(path)
    assert model.input_shape[-1] in (1, channels)  # a grayscale model cleans colour images channel by channel
    assert metadata["channels"] == model.input_shape[-1] and metadata["noise"] == "gaussian:0-50"
    card = path.with_suffix(".md").read_text().lower()
    assert "denoise train" in card and ("set12" if channels == 1 else "cset5") in card and "median" in card


def test_weights_stay_small():
    total = sum(path.stat().st_size for path in {default_model_path(c) for c in DEFAULT_MODELS})
    assert total <= 20_000_000


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
