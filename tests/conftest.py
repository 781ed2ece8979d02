"""Shared fixtures: every test runs with caches and config pointed at its own tmp_path, and no network."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ start-up chatter out of test output

import pytest

# Models converted for LiteRT (denoise/inference/litert.py) are shared by the tests of one worker process, so each
# shipped model is converted once, not once per test; a test of the cache itself points DENOISE_CACHE elsewhere.
SHARED_CACHE = tempfile.mkdtemp(prefix="denoise-test-cache-")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Point Keras' cache and denoise's settings at tmp_path so no test reads or writes the user's home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    monkeypatch.delenv("DENOISE_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("DENOISE_CACHE", SHARED_CACHE)
    yield


@pytest.fixture
def model_file(tmp_path):
    """A real, untrained 1-channel tiny U-Net saved as a .keras file with metadata."""
    from factories import tiny_unet

    from denoise.nn.saving import save_model

    path = tmp_path / "models" / "tiny.keras"
    save_model(tiny_unet(1), path, {"architecture": "unet", "channels": 1, "noise": "gaussian:25"})
    return path
