"""Properties checked over many generated cases with hypothesis: tiling, zero noise, and lossless image round trips.

Tiling: the depth-2 U-Net of tests/factories reaches 44 pixels past a tile edge that lies on its 8-pixel grid (49
at the worst offset, measured by moving one input pixel), and Denoiser rounds margins up to that grid, so 48 is the
smallest margin whose stitched result equals whole-image inference; 40 differs by about 2e-4.
"""

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from denoise.inference.settings import RunSettings
from denoise.io.images import read_image, save_image
from denoise.noise.specs import GAUSSIAN, SALT_AND_PEPPER, NoiseSpec, add_noise

SMALLEST_EXACT_MARGIN = 48


@functools.lru_cache(maxsize=None)
def _model():
    from factories import tiny_unet

    return tiny_unet(1, depth=2)


@functools.lru_cache(maxsize=None)
def _denoiser(tile, margin):
    from denoise.inference.denoiser import Denoiser

    return Denoiser(_model(), RunSettings(tile=tile, margin=margin))


def _whole(image):
    (output,) = _denoiser(4096, SMALLEST_EXACT_MARGIN)([image])
    return output


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(tile=st.integers(16, 64), margin=st.integers(SMALLEST_EXACT_MARGIN, 80), short=st.integers(1, 100),
       extra=st.integers(1, 60), tall=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_tiled_inference_equals_whole_image_inference(tile, margin, short, extra, tall, seed):
    denoiser = _denoiser(tile, margin)
    long = denoiser.tile + 2 * denoiser.margin + extra  # longer than one tile with its margins: tiling happens
    shape = (long, short, 1) if tall else (short, long, 1)
    image = np.random.default_rng(seed).random(shape, dtype=np.float32)
    (tiled,) = denoiser([image])
    np.testing.assert_allclose(tiled, _whole(image), atol=1e-5)


def test_a_margin_under_the_models_reach_shows_seams():
    image = np.random.default_rng(0).random((150, 190, 1), dtype=np.float32)
    (tiled,) = _denoiser(24, SMALLEST_EXACT_MARGIN - 8)([image])
    assert np.abs(tiled - _whole(image)).max() > 1e-5  # so the property above is not true by accident


FLOAT_IMAGES = hnp.arrays(np.float32, hnp.array_shapes(min_dims=3, max_dims=3, max_side=12).map(
    lambda shape: shape[:2] + ((1, 3)[shape[2] % 2],)), elements=st.floats(0, 1, width=32))


@settings(max_examples=25, deadline=None)
@given(image=FLOAT_IMAGES, kind=st.sampled_from([GAUSSIAN, SALT_AND_PEPPER]), seed=st.integers(0, 2**32 - 1))
def test_zero_noise_is_the_identity(image, kind, seed):
    noisy = add_noise(image, NoiseSpec(kind, 0.0, 0.0), np.random.default_rng(seed))
    np.testing.assert_array_equal(noisy, image)


@settings(max_examples=25, deadline=None)
@given(pixels=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=4, max_dims=4, max_side=8)),
       kind=st.sampled_from([GAUSSIAN, SALT_AND_PEPPER]), seeds=st.lists(st.integers(0, 2**31 - 1), min_size=4,
                                                                          max_size=4))
def test_zero_noise_in_the_training_pipeline_is_the_identity_on_8_bit_images(pixels, kind, seeds):
    import tensorflow as tf

    from denoise.training.batches import add_noise_tf

    clean = pixels.astype(np.float32) / np.float32(255)  # as training reads files; add_noise_tf rounds to 8 bits
    noisy = add_noise_tf(tf.constant(clean), NoiseSpec(kind, 0.0, 0.0), tf.constant(seeds[:2]), tf.constant(seeds[2:]))
    np.testing.assert_array_equal(np.asarray(noisy), clean)


# Modes each lossless format stores natively (what Pillow writes and reads back as the same mode). BMP has no
# LA or 16-bit and reads 32-bit files as RGB; Pillow writes WebP only as RGB or RGBA.
LOSSLESS = [(fmt, mode) for fmt in ("PNG", "TIFF") for mode in ("L", "LA", "RGB", "RGBA", "I;16", "P")]
LOSSLESS += [("BMP", "L"), ("BMP", "RGB"), ("BMP", "P"), ("WEBP", "RGB"), ("WEBP", "RGBA")]
SUFFIX = {"PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1, "P": 1}


@st.composite
def pillow_images(draw):
    """A small image in one of the LOSSLESS format/mode pairs, with arbitrary pixels (and palette)."""
    fmt, mode = draw(st.sampled_from(LOSSLESS))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dtype = np.uint16 if mode == "I;16" else np.uint8
    shape = (height, width) if CHANNELS[mode] == 1 else (height, width, CHANNELS[mode])
    if mode != "P":
        return fmt, Image.fromarray(draw(hnp.arrays(dtype, shape)))  # the mode follows from shape and dtype
    # Small palettes with close colours on purpose: Pillow's own colour lookup confuses entries a step apart.
    high = draw(st.sampled_from([7, 255]))
    entries = draw(hnp.arrays(np.uint8, (draw(st.integers(1, 256)), 3), elements=st.integers(0, high)))
    indices = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, len(entries) - 1)))
    image = Image.frombytes("P", (width, height), indices.tobytes())
    image.putpalette(entries.tobytes())
    return fmt, image


def _displayed(path):
    with Image.open(path) as image:
        return image.mode, image.format, np.asarray(image.convert("RGBA") if image.mode == "P" else image)


@settings(max_examples=25, deadline=None)
@given(case=pillow_images())
def test_lossless_round_trip_keeps_every_pixel(case):
    fmt, image = case
    with tempfile.TemporaryDirectory() as folder:
        source, dest = Path(folder) / f"in{SUFFIX[fmt]}", Path(folder) / f"out{SUFFIX[fmt]}"
        image.save(source, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        loaded = read_image(source)
        save_image(loaded, loaded.pixels, dest)
        before, after = _displayed(source), _displayed(dest)
        assert after[:2] == before[:2]  # as stored: Pillow writes a black-and-white palette BMP as mode 1
        np.testing.assert_array_equal(after[2], before[2])
