"""Every architecture trains on every built-in dataset and noise kind, at the sizes those datasets have, and learns."""

import numpy as np
import pytest
from factories import digit_like_images, write_image_folder
from test_plugin_mnist import write_idx

from denoise.evaluation import noisy_copies, psnr
from denoise.inference.denoiser import Denoiser
from denoise.nn.saving import load_model
from denoise.noise.specs import parse_noise
from denoise.training.trainer import TrainConfig, is_collapsed, train

ARCHS = ["unet", "conv", "dense"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """MNIST-format IDX files of 28x28 digit-like images: what the mnist and fashion-mnist loaders read."""
    folder = tmp_path_factory.mktemp("digits")
    write_idx(folder, digit_like_images(16, seed=1)[..., 0], digit_like_images(4, seed=2)[..., 0])
    return folder


def tiny_run(dataset, path, out, arch, noise, **changes):
    """A few steps of a small model: enough to show that the shapes fit end to end and a model is saved."""
    settings = dict(dataset=dataset, data_path=path, noise=parse_noise(noise), out=out, arch=arch, width=4, depth=2,
                    epochs=1, batch_size=4, steps_per_epoch=2)
    settings.update(changes)
    return train(TrainConfig(**settings))


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["gaussian:25", "salt-and-pepper:0.2"])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_trains_on_28x28_digits_with_every_noise(digits, tmp_path, arch, noise):
    """28x28 is not a multiple of the U-Net's 8 (depth 2) or 16 (depth 3) pixel grid: the patches are padded."""
    result = tiny_run("mnist", digits, tmp_path / "m.keras", arch, noise)
    model, metadata = load_model(tmp_path / "m.keras")
    assert result.epochs_done == 1 and np.isfinite(result.best_psnr)
    assert metadata["architecture"] == arch and metadata["noise"] == noise


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_trains_on_a_folder_with_patches_off_the_model_grid(tmp_path, arch):
    write_image_folder(tmp_path / "clean", 4, size=(45, 45))
    result = tiny_run("folder", tmp_path / "clean", tmp_path / "m.keras", arch, "gaussian:0-50", patch_size=30)
    assert result.epochs_done == 1 and np.isfinite(result.best_psnr)


@pytest.mark.slow
def test_fashion_mnist_trains_the_default_architecture(digits, tmp_path):
    result = tiny_run("fashion-mnist", digits, tmp_path / "m.keras", None, "gaussian:0-50", depth=3)
    assert result.epochs_done == 1
    assert load_model(tmp_path / "m.keras")[1]["architecture"] == "unet"


@pytest.fixture(scope="module")
def digit_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learn")
    write_idx(folder, digit_like_images(400, seed=3)[..., 0], digit_like_images(24, seed=4)[..., 0])
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["unet", "conv"])
def test_the_default_and_conv_learn_digits_instead_of_a_constant_image(digit_set, tmp_path, arch):
    """The seed's sigmoid autoencoder put out a black image on MNIST (9.8 dB against the noisy input's 17-23 dB).

    A few hundred steps on 400 digit-like images: at sigma 50 both beat their noisy input; at sigma 25 neither is
    a constant image (conv needs thousands of steps to pass the input there: docs/training.md).
    """
    clean = digit_like_images(24, seed=4).astype(np.float32) / 255.0
    for sigma, steps in ((50, 300), (25, 100)):
        out = tmp_path / f"{arch}{sigma}.keras"
        tiny_run("mnist", digit_set, out, arch, f"gaussian:{sigma}", width=16, depth=2, batch_size=8,
                 steps_per_epoch=steps, learning_rate=2e-3)
        noisy = noisy_copies(list(clean), parse_noise(f"gaussian:{sigma}"), seed=5)
        denoised = Denoiser(load_model(out)[0])(noisy)
        assert not is_collapsed(list(clean), denoised)
        if sigma == 50:
            noisy_db = np.mean([psnr(c, n) for c, n in zip(clean, noisy)])
            assert np.mean([psnr(c, d) for c, d in zip(clean, denoised)]) > noisy_db + 0.5


def test_a_constant_output_counts_as_collapsed_and_a_faithful_one_does_not():
    clean = list(digit_like_images(4, seed=0).astype(np.float32) / 255.0)
    assert is_collapsed(clean, [np.zeros_like(c) for c in clean])
    assert is_collapsed(clean, [np.full_like(c, c.mean()) for c in clean])
    assert not is_collapsed(clean, [np.clip(c * 0.8 + 0.05, 0, 1) for c in clean])
