"""LiteRT (TensorFlow Lite with XNNPACK) runs the models on CPUs in float32: the same output as TensorFlow, chosen by
itself, said in the run's device line, and converted once into a cache that survives damage."""

from pathlib import Path

import numpy as np
import pytest
from factories import smooth_image, tiny_unet
from typer.testing import CliRunner

from denoise.cli import app
from denoise.errors import ModelError, UsageError
from denoise.inference import litert
from denoise.inference.denoiser import Denoiser
from denoise.inference.settings import RunSettings
from denoise.runtime import resolve_engine


def noisy(height, width, channels, seed=0):
    image = smooth_image(height, width, channels, seed)
    return np.clip(image + np.random.default_rng(seed).normal(0, 0.1, image.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
def test_litert_gives_tensorflows_output_for_batches_of_any_size_and_tiles(channels):
    model = tiny_unet(channels)
    images = [noisy(40, 56, channels, 1), noisy(40, 56, channels, 2), noisy(72, 30, channels, 3)]
    for settings in (RunSettings(precision="float32"), RunSettings(precision="float32", tile=16, margin=16)):
        lite = Denoiser(model, RunSettings(**{**settings.__dict__, "runtime": "litert"}))
        plain = Denoiser(model, RunSettings(**{**settings.__dict__, "runtime": "tensorflow"}))
        assert (lite.runtime, plain.runtime) == ("litert", "tensorflow")
        for image, ours, theirs in zip(images, lite(images), plain(images)):
            assert ours.shape == theirs.shape == image.shape
            assert np.abs(ours - theirs).max() < 1e-5
            assert np.abs(ours - image).max() > 1e-3  # the untrained model does change its input


def test_auto_takes_litert_for_float32_on_a_cpu_and_tensorflow_for_bfloat16():
    assert resolve_engine("float32", "auto") == ("float32", "litert")
    assert resolve_engine("bfloat16", "auto") == ("bfloat16", "tensorflow")
    assert resolve_engine("auto", "litert") == ("float32", "litert")
    assert resolve_engine("float32", "tensorflow") == ("float32", "tensorflow")
    with pytest.raises(UsageError, match="float32"):
        resolve_engine("bfloat16", "litert")
    with pytest.raises(UsageError, match="Unknown runtime"):
        resolve_engine("auto", "onnx")


def test_the_converted_model_is_cached_and_a_damaged_copy_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("DENOISE_CACHE", str(tmp_path / "cache"))
    model, image = tiny_unet(1), [noisy(32, 32, 1)]
    expected = Denoiser(model, RunSettings(runtime="litert"))(image)[0]
    (cached,) = (tmp_path / "cache" / "litert").glob("*.tflite")

    def no_converter(_model):
        raise AssertionError("converted again although a good copy was cached")

    monkeypatch.setattr(litert, "convert", no_converter)
    assert np.array_equal(Denoiser(model, RunSettings(runtime="litert"))(image)[0], expected)
    cached.write_bytes(cached.read_bytes()[:1000])  # a copy cut short, as by a full disk
    monkeypatch.undo()
    monkeypatch.setenv("DENOISE_CACHE", str(tmp_path / "cache"))
    assert np.array_equal(Denoiser(model, RunSettings(runtime="litert"))(image)[0], expected)
    assert cached.stat().st_size > 1000  # replaced by a whole one
    other = tiny_unet(1, seed=1)  # other weights, another key
    Denoiser(other, RunSettings(runtime="litert"))(image)
    assert len(list((tmp_path / "cache" / "litert").glob("*.tflite"))) == 2


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DENOISE_CACHE", str(blocker / "cache"))
    model, image = tiny_unet(1), [noisy(32, 32, 1)]
    lite = Denoiser(model, RunSettings(runtime="litert"))
    assert lite.runtime == "litert"
    tensorflow = Denoiser(model, RunSettings(runtime="tensorflow"))
    assert np.abs(lite(image)[0] - tensorflow(image)[0]).max() < 1e-5


def test_a_model_the_converter_refuses_runs_on_tensorflow_unless_litert_was_asked_for(monkeypatch, tmp_path):
    monkeypatch.setenv("DENOISE_CACHE", str(tmp_path / "cache"))

    def refuse(_model):
        raise ValueError("op not supported")

    monkeypatch.setattr(litert, "convert", refuse)
    model = tiny_unet(1)
    assert Denoiser(model, RunSettings(precision="float32")).runtime == "tensorflow"
    with pytest.raises(ModelError, match="op not supported.*--runtime auto or tensorflow"):
        Denoiser(model, RunSettings(runtime="litert"))


def test_run_says_which_runtime_cleans(model_file, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    from denoise.io.images import save_array

    save_array(noisy(48, 48, 1), folder / "a.png")
    outputs = {}
    for runtime in ("auto", "tensorflow"):
        out = tmp_path / runtime
        result = CliRunner().invoke(app, ["run", str(folder), "-o", str(out), "--model", str(model_file),
                                          "--precision", "float32", "--runtime", runtime])
        assert result.exit_code == 0, result.output
        assert ("LiteRT (XNNPACK)" in result.output) == (runtime == "auto")
        outputs[runtime] = Path(out / "a.png").read_bytes()
    result = CliRunner().invoke(app, ["run", str(folder), "-o", str(tmp_path / "x"), "--runtime", "onnx"])
    assert result.exit_code == 2 and "Unknown runtime 'onnx'" in result.output
