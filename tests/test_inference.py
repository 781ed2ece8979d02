from dataclasses import replace

import numpy as np
import pytest
from factories import smooth_image, tiny_unet

from denoise.errors import ModelError
from denoise.inference.denoiser import Denoiser
from denoise.inference.settings import RunSettings
from denoise.inference.tiling import plan_windows
from denoise.nn.architectures import build_model


def as_float(image):
    return image.astype(np.float32) / 255


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 100, 1), (17, 33, 1), (64, 64, 1)])
def test_any_image_size_comes_back_with_its_own_shape(shape):
    image = as_float(smooth_image(shape[0], shape[1], 1))
    (out,) = Denoiser(tiny_unet(1))([image])
    assert out.shape == shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_tiled_output_equals_whole_image_output():
    model = tiny_unet(1, depth=2)
    image = as_float(smooth_image(150, 130, 1, seed=3))
    (whole,) = Denoiser(model, RunSettings(tile=4096))([image])
    (tiled,) = Denoiser(model, RunSettings(tile=32, margin=64))([image])
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_windows_cover_every_pixel_exactly_once_with_context_and_are_all_the_same_size():
    cover = np.zeros((70, 45), int)
    windows = plan_windows(70, 45, tile=16, margin=8)
    for window in windows:
        cover[window.core] += 1
        for outer, core, size in zip(window.outer, window.core, (70, 45)):
            assert 0 <= outer.start and outer.stop <= size
            assert core.start - outer.start >= min(8, core.start) and outer.stop - core.stop >= min(8, size - core.stop)
    assert (cover == 1).all()
    # one input shape for the model, however the image's sides divide into tiles
    assert {(w.outer[0].stop - w.outer[0].start, w.outer[1].stop - w.outer[1].start) for w in windows} == {(32, 32)}


def test_images_of_mixed_sizes_and_channels_are_each_returned_in_order():
    images = [as_float(smooth_image(16, 16, 1, s)) for s in range(3)] + [as_float(smooth_image(20, 12, 3))]
    outputs = Denoiser(tiny_unet(1))(images)
    assert [o.shape for o in outputs] == [i.shape for i in images]


def test_gray_model_cleans_each_colour_channel_like_a_gray_image():
    denoiser = Denoiser(tiny_unet(1))
    colour = as_float(smooth_image(32, 32, 3))
    (out,) = denoiser([colour])
    (red,) = denoiser([colour[..., :1]])
    np.testing.assert_allclose(out[..., :1], red, atol=1e-6)


def test_colour_model_accepts_gray_images():
    (out,) = Denoiser(tiny_unet(3))([as_float(smooth_image(32, 32, 1))])
    assert out.shape == (32, 32, 1)


def test_dense_model_refuses_other_sizes_clearly():
    denoiser = Denoiser(build_model("dense", 1))
    assert denoiser([np.zeros((28, 28, 1), np.float32)])[0].shape == (28, 28, 1)
    with pytest.raises(ModelError, match="only takes 28x28"):
        denoiser([np.zeros((30, 30, 1), np.float32)])


@pytest.mark.parametrize("shape", [(150, 130, 1), (97, 211, 3)])
def test_a_lone_image_cleaned_in_place_band_by_band_equals_whole_image_output(shape):
    model = tiny_unet(shape[-1], depth=2)
    image = as_float(smooth_image(shape[0], shape[1], shape[-1], seed=4))
    (whole,) = Denoiser(model, RunSettings(tile=4096))([image.copy()])
    owned = image.copy()
    (tiled,) = Denoiser(model, RunSettings(tile=48, margin=48, reuse_input=True, max_batch_pixels=5000))([owned])
    assert tiled is owned  # cleaned in place: no second full-size copy
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_several_images_are_never_overwritten_even_when_allowed():
    images = [as_float(smooth_image(100, 100, 1, seed=s)) for s in range(2)]
    copies = [image.copy() for image in images]
    Denoiser(tiny_unet(1), RunSettings(tile=32, margin=32, reuse_input=True))(images)
    for image, copy in zip(images, copies):
        np.testing.assert_array_equal(image, copy)


@pytest.mark.parametrize("size", [(40, 30), (150, 130)])
def test_a_gray_model_on_an_owned_colour_image_gives_the_same_output_in_place(size):
    model = tiny_unet(1, depth=2)
    colour = as_float(smooth_image(size[0], size[1], 3, seed=5))
    (expected,) = Denoiser(model, RunSettings(tile=48, margin=48))([colour.copy()])
    owned = colour.copy()
    (result,) = Denoiser(model, RunSettings(tile=48, margin=48, reuse_input=True))([owned])
    assert result is owned
    np.testing.assert_allclose(result, expected, atol=1e-5)


def _no_noise_unet():
    """A residual U-Net whose last convolution is zero: it predicts no noise, so it returns its input."""
    model = tiny_unet()
    last = model.get_layer("noise_folded")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    return model


def test_bfloat16_keeps_the_image_exact_where_the_model_predicts_no_noise():
    # The output of a model that predicts no noise must be its input, bit for bit on the 8-bit grid. A bfloat16
    # subtraction would round values near 1 by up to half a level.
    model = _no_noise_unet()
    image = smooth_image(40, 56, 1, seed=2).astype(np.float32) / 255
    (output,) = Denoiser(model, RunSettings(precision="bfloat16"))([image])
    assert np.array_equal(output, image)


def test_bfloat16_output_is_close_to_float32():
    model = tiny_unet(width=8)
    image = smooth_image(64, 64, 1, seed=3).astype(np.float32) / 255
    (exact,) = Denoiser(model, RunSettings(precision="float32"))([image])
    (fast,) = Denoiser(model, RunSettings(precision="bfloat16"))([image])
    assert Denoiser(model, RunSettings(precision="bfloat16")).model.get_layer("down0_conv1").compute_dtype == "bfloat16"
    assert 0 < np.abs(exact - fast).max() < 0.02


def test_auto_precision_uses_bfloat16_only_where_the_cpu_computes_it(monkeypatch):
    from denoise import runtime as resources

    monkeypatch.setattr(resources, "_cpu_flags", lambda: {"avx2", "fma"})
    assert resources.resolve_precision("auto") == "float32"
    monkeypatch.setattr(resources, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert resources.resolve_precision("auto") == "bfloat16"
    assert resources.resolve_precision("float32") == "float32"


@pytest.mark.parametrize("owned", [False, True], ids=["copy", "in place"])
def test_a_gray_impulse_model_puts_back_black_and_white_values_of_pixels_that_are_not_wholly_so(owned):
    # A saturated colour (pure red: 255, 0, 0) is black and white in two channels but is no impulse; with
    # impulses that hit whole pixels, those values are clean and must come back as they were.
    image = smooth_image(48, 64, 3, seed=4).astype(np.float32) / 255
    image[10:30, 10:40] = (1.0, 0.0, 0.0)
    rng = np.random.default_rng(0)
    hit, salt = rng.random(image.shape[:2]) < 0.1, rng.random(image.shape[:2]) < 0.5
    noisy = np.where(hit[..., None], salt[..., None].astype(np.float32), image)
    denoiser = Denoiser(build_model("unet", 1, width=4, depth=2, impulse=True), RunSettings(reuse_input=owned))
    (output,) = denoiser([noisy.copy()])
    partial = ~hit & ((image <= 0) | (image >= 1)).any(-1) & ~((image <= 0).all(-1) | (image >= 1).all(-1))
    assert partial.sum() > 400
    assert np.array_equal(output[partial], noisy[partial])
    assert not np.array_equal(output[hit], noisy[hit])  # the impulses themselves are re-estimated


@pytest.mark.parametrize("owned", [False, True])
def test_in_the_opponent_colour_space_a_model_that_changes_nothing_gives_the_image_back(owned):
    colour = as_float(smooth_image(40, 56, 3, seed=6))
    denoiser = Denoiser(_no_noise_unet(), RunSettings(reuse_input=owned), colour_space="opponent")
    (output,) = denoiser([colour.copy()])
    np.testing.assert_allclose(output, colour, atol=1e-5)  # no noise measured, so nothing to unclip either


@pytest.mark.parametrize("size", [(40, 30), (150, 130)])
def test_opponent_colour_space_is_used_and_gives_the_same_output_in_place(size):
    model = tiny_unet(1, depth=2)
    colour = as_float(smooth_image(size[0], size[1], 3, seed=5))
    (by_channel,) = Denoiser(model, RunSettings(tile=48, margin=48))([colour.copy()])
    (expected,) = Denoiser(model, RunSettings(tile=48, margin=48), colour_space="opponent")([colour.copy()])
    assert np.abs(expected - by_channel).max() > 1e-3
    owned = colour.copy()
    (result,) = Denoiser(model, RunSettings(tile=48, margin=48, reuse_input=True), colour_space="opponent")([owned])
    assert result is owned
    np.testing.assert_allclose(result, expected, atol=1e-5)
    # a gray image and an impulse model are not affected
    gray = colour[..., :1].copy()
    np.testing.assert_array_equal(Denoiser(model, colour_space="opponent")([gray])[0], Denoiser(model)([gray])[0])
    impulse = build_model("unet", 1, width=4, depth=2, impulse=True)
    assert not Denoiser(impulse, colour_space="opponent").opponent


def test_the_colour_space_follows_what_the_model_was_trained_on():
    from denoise.inference.channels import colour_space_for

    assert colour_space_for({"channels": 1, "noise": "gaussian:0-50"}) == "opponent"  # blind gray: opponent
    assert colour_space_for({"channels": 1, "noise": "gaussian:25"}) == "rgb"  # one level: its planes would not fit
    assert colour_space_for({"channels": 1, "noise": "gaussian:20-50"}) == "rgb"
    assert colour_space_for({"channels": 3, "noise": "gaussian:0-50"}) == "rgb"
    assert colour_space_for({"channels": 1, "noise": "salt-and-pepper:0-0.6"}) == "rgb"
    assert colour_space_for({}) == "rgb"
    with pytest.raises(ValueError, match="colour_space"):
        Denoiser(tiny_unet(), colour_space="lab")


def _by_hand(model, image, turns):
    """The model itself run on each given orientation of the image (np.rot90 / np.fliplr, not the code under test),
    each output turned back, averaged, then clipped: what a self-ensemble must give. The image's sides must be
    multiples of the model's grid, so no padding is needed."""
    outputs = []
    for quarter, mirror in turns:
        turned = np.rot90(np.fliplr(image) if mirror else image, quarter)
        out = np.asarray(model(np.ascontiguousarray(turned)[None], training=False))[0]
        back = np.rot90(out, -quarter)
        outputs.append(np.fliplr(back) if mirror else back)
    return np.clip(np.mean(outputs, axis=0), 0, 1)


ALL_EIGHT = [(quarter, mirror) for quarter in range(4) for mirror in (False, True)]


def test_an_ensemble_of_eight_is_the_mean_over_every_flip_and_transpose():
    model = tiny_unet(1, depth=2)
    image = as_float(smooth_image(40, 56, 1, seed=6))  # not square: transposes change the shape the model sees
    (ensemble,) = Denoiser(model, RunSettings(ensemble=8))([image.copy()])
    (single,) = Denoiser(model)([image.copy()])
    np.testing.assert_allclose(ensemble, _by_hand(model, image, ALL_EIGHT), atol=1e-5)
    assert np.abs(ensemble - single).max() > 1e-3  # an untrained model is far from symmetric: the mean differs


def test_an_ensemble_of_two_is_the_image_and_its_transpose_also_tiled_in_place():
    model = tiny_unet(1, depth=2)
    image = as_float(smooth_image(152, 96, 1, seed=7))
    transpose = (1, True)  # a mirror image turned a quarter: the transpose
    expected = _by_hand(model, image, [(0, False), transpose])
    owned = image.copy()
    (result,) = Denoiser(model, RunSettings(tile=48, margin=48, reuse_input=True, ensemble=2))([owned])
    assert result is owned  # the mean lands in the input's buffer: no extra full-size output
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_an_ensemble_size_outside_one_to_eight_is_refused():
    with pytest.raises(ValueError, match="from 1 to 8"):
        Denoiser(tiny_unet(1), RunSettings(ensemble=9))


@pytest.mark.parametrize("size", [(48, 32), (152, 128)])
def test_an_ensemble_on_a_colour_photo_in_the_opponent_space_gives_the_same_output_in_place(size):
    model = tiny_unet(1, depth=2)
    colour = as_float(smooth_image(size[0], size[1], 3, seed=8))
    settings = RunSettings(tile=48, margin=48)
    (single,) = Denoiser(model, settings, colour_space="opponent")([colour.copy()])
    (expected,) = Denoiser(model, replace(settings, ensemble=2), colour_space="opponent")([colour.copy()])
    assert np.abs(expected - single).max() > 1e-3
    owned = colour.copy()
    # denoise run's path for a photo
    (result,) = Denoiser(model, replace(settings, reuse_input=True, ensemble=2), colour_space="opponent")([owned])
    assert result is owned
    np.testing.assert_allclose(result, expected, atol=1e-5)


@pytest.mark.parametrize("colour_space", ["opponent", "rgb"])
def test_a_colour_photo_cleaned_in_place_plane_by_plane_equals_the_copying_path(colour_space):
    """A large colour image we may overwrite goes through a gray model one channel at a time, each channel tiled
    and written back where it lies (no plane copy): the result is the copying path's, in the caller's array."""
    model = tiny_unet(1, depth=2)
    rng = np.random.default_rng(4)
    image = np.clip(as_float(smooth_image(150, 130, 3, seed=4)) + rng.normal(0, 0.08, (150, 130, 3)), 0, 1)
    image = image.astype(np.float32)
    settings = RunSettings(tile=32, margin=64, precision="float32")
    (copied,) = Denoiser(model, settings, colour_space=colour_space)([image.copy()])
    mine = image.copy()
    (in_place,) = Denoiser(model, replace(settings, reuse_input=True), colour_space=colour_space)([mine])
    assert in_place is mine
    np.testing.assert_allclose(in_place, copied, atol=1e-5)
    assert np.abs(copied - image).max() > 1e-3
