"""Mixes of noise for training ("camera:0-1+gaussian:0-50"): parsed, drawn per batch, validated and recorded."""

import numpy as np
import pytest
from factories import smooth_image, write_image_folder

from denoise.errors import NoiseSpecError
from denoise.evaluation import noisy_copies
from denoise.nn.model_files import read_metadata
from denoise.noise.specs import NoiseMix, NoiseSpec, parse_noise, parse_noise_mix
from denoise.training.batches import make_pipeline


def test_one_spec_stays_a_spec_and_several_make_a_mix_that_prints_as_written():
    assert parse_noise_mix("gaussian:0-50") == parse_noise("gaussian:0-50")
    mix = parse_noise_mix("camera-jpeg:0-1+gaussian:0-50")
    assert isinstance(mix, NoiseMix) and [spec.kind for spec in mix.specs] == ["camera-jpeg", "gaussian"]
    assert str(mix) == "camera-jpeg:0-1+gaussian:0-50" and parse_noise_mix(str(mix)) == mix


@pytest.mark.parametrize("text, message", [
    ("gaussian:25+salt-and-pepper:0.1", "salt-and-pepper alone"),
    ("gaussian:25+", "Cannot read"),
    ("gaussian:25+camera:3", "0..1"),
])
def test_a_bad_mix_is_refused_with_a_reason(text, message):
    with pytest.raises(NoiseSpecError, match=message):
        parse_noise_mix(text)


def test_each_batch_draws_one_spec_of_the_mix_and_both_come_up():
    patches = np.stack([smooth_image(32, 32, 1, seed=s) for s in range(8)])
    mix = NoiseMix((NoiseSpec("gaussian", 0, 0), NoiseSpec("gaussian", 50, 50)))
    batches = list(make_pipeline(patches, mix, 4, seed=3).take(24))
    spreads = [float(np.std(noisy.numpy() - clean.numpy()) * 255) for noisy, clean in batches]
    quiet, loud = [s for s in spreads if s < 1], [s for s in spreads if 40 < s < 60]
    assert len(quiet) + len(loud) == len(spreads) and len(quiet) >= 4 and len(loud) >= 4


def test_validation_images_take_the_mixed_specs_in_turn():
    images = [smooth_image(32, 32, 1, seed=s).astype(np.float32) / 255 for s in range(4)]
    noisy = noisy_copies(images, parse_noise_mix("gaussian:0+gaussian:30"), seed=0)
    spreads = [float(np.std(n - c) * 255) for n, c in zip(noisy, images)]
    assert spreads[0] < 1 and spreads[2] < 1 and 20 < spreads[1] < 40 and 20 < spreads[3] < 40


@pytest.mark.slow
def test_a_model_trained_on_a_mix_records_it(tmp_path):
    from denoise.training.config import TrainConfig
    from denoise.training.trainer import train

    write_image_folder(tmp_path / "photos", 6, size=(40, 40), channels=3)
    config = TrainConfig(dataset="folder", data_path=tmp_path / "photos", out=tmp_path / "m.keras",
                         noise=parse_noise_mix("camera:0-1+gaussian:0-50"), width=4, depth=1, epochs=1,
                         batch_size=2, patch_size=32, steps_per_epoch=3)
    train(config)
    metadata = read_metadata(tmp_path / "m.keras")
    assert metadata["noise"] == "camera:0-1+gaussian:0-50" == metadata["train_config"]["noise"]
