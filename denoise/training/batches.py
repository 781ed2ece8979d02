"""The training data stream: endless tf.data batches of (noisy, clean) patches, with noise drawn on the fly.

Seeded by (seed, step), so a run repeats exactly and a resumed run continues the sequence rather than replaying it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from denoise.noise.camera import add_camera_noise
from denoise.noise.specs import CAMERA_JPEG, CAMERA_KINDS, GAUSSIAN, POISSON, NoiseMix, NoiseSpec


def make_pipeline(images: np.ndarray, noise: NoiseSpec | NoiseMix, batch_size: int, seed: int, first_step: int = 0,
                  crop_size: int | None = None, clean_fraction: float = 0.0, size_multiple: int = 1):
    """An endless tf.data stream of (noisy, clean) float batches: shuffled, flipped, with new noise every step.

    The noise of step k depends only on (seed, k), so runs are reproducible and a resumed run continues the
    sequence instead of repeating it. With crop_size, every patch is cropped at a new random position each time it
    is drawn: from a few hundred images the network then sees far more distinct patches than a fixed grid gives.
    clean_fraction of the patches (drawn at random) get no noise at all. Patches are mirrored out to a multiple of
    size_multiple (a U-Net's downsampling grid), as inference pads images, so 28x28 digits train a U-Net too.
    With a NoiseMix, each batch draws one of its specs (add_mixed_noise_tf).
    """
    steps = patch_batches(images, batch_size, seed, first_step, crop_size)
    if size_multiple > 1:
        steps = steps.map(lambda batch, step: (pad_to_multiple(batch, size_multiple), step),
                          num_parallel_calls=tf.data.AUTOTUNE)
    pairs = steps.map(
        lambda batch, step: _noisy_pair(batch, tf.stack([tf.cast(seed, tf.int64), step]), noise, clean_fraction),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return pairs.prefetch(tf.data.AUTOTUNE)


def patch_batches(images: np.ndarray, batch_size: int, seed: int, first_step: int = 0, crop_size: int | None = None):
    """(batch, step) pairs: shuffled uint8 patches, cropped at random positions, numbered by training step."""
    patches = tf.data.Dataset.from_tensor_slices(images)
    patches = patches.shuffle(min(len(images), 20_000), seed=seed, reshuffle_each_iteration=True).repeat()
    if crop_size is not None and crop_size < max(images.shape[1:3]):
        def random_crop(patch, draw):  # draw k's seed (seed, -1 - k) never equals a step's noise seed (seed, k)
            seeds = tf.stack([tf.cast(seed, tf.int64), -1 - draw])
            return tf.image.stateless_random_crop(patch, [crop_size, crop_size, images.shape[-1]], seeds)

        draws = tf.data.Dataset.counter(start=first_step * batch_size)
        patches = tf.data.Dataset.zip((patches, draws)).map(random_crop, num_parallel_calls=tf.data.AUTOTUNE)
    patches = patches.batch(batch_size, drop_remainder=True)
    return tf.data.Dataset.zip((patches, tf.data.Dataset.counter(start=first_step)))


def pad_to_multiple(batch, multiple: int):
    """A batch of NHWC patches mirrored at the bottom and right up to a multiple of `multiple` pixels a side.

    Mirroring (not zeros) keeps the padding looking like image, as inference pads at run time. A pad wider
    than the patch is done in several mirror steps.
    """
    height, width = int(batch.shape[1]), int(batch.shape[2])
    target_h, target_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    while height < target_h or width < target_w:
        grow_h, grow_w = min(target_h - height, height), min(target_w - width, width)
        batch = tf.pad(batch, [[0, 0], [0, grow_h], [0, grow_w], [0, 0]], mode="SYMMETRIC")
        height, width = height + grow_h, width + grow_w
    return batch


def random_orientation(batch, seeds):
    """The batch flipped left-right and up-down at random (seeds[0], seeds[1]) and, square patches, transposed
    (seeds[2]): all 8 orientations of a square."""
    batch = tf.image.stateless_random_flip_left_right(batch, seeds[0])
    batch = tf.image.stateless_random_flip_up_down(batch, seeds[1])
    if batch.shape[1] == batch.shape[2]:
        transpose = tf.random.stateless_uniform([], seeds[2]) < 0.5
        batch = tf.cond(transpose, lambda: tf.transpose(batch, [0, 2, 1, 3]), lambda: batch)
    return batch


def _noisy_pair(batch, seed, noise: NoiseSpec | NoiseMix, clean_fraction: float = 0.0):
    seeds = tf.random.experimental.stateless_split(seed, 5)
    clean = random_orientation(tf.cast(batch, tf.float32) / 255.0, seeds)
    noisy = add_mixed_noise_tf(clean, noise, seeds[3], seeds[4])
    if clean_fraction > 0:  # its own seed, folded from one already drawn, so the other draws stay as they were
        draws = tf.random.stateless_uniform(
            [tf.shape(clean)[0], 1, 1, 1], tf.random.experimental.stateless_fold_in(seeds[2], 1)
        )
        noisy = tf.where(draws < clean_fraction, tf.round(clean * 255.0) / 255.0, noisy)
    return noisy, clean


def add_mixed_noise_tf(clean, noise: NoiseSpec | NoiseMix, level_seed, pixel_seed):
    """The batch with the noise of one of the mix's specs, drawn with equal chance from the seeds (one spec: it).

    One spec per batch rather than per patch: a graph branch computes only the noise it returns, so the costly
    camera pipeline runs only for the batches that get camera noise.
    """
    specs = noise.specs
    if len(specs) == 1:
        return add_noise_tf(clean, specs[0], level_seed, pixel_seed)
    choice = tf.random.stateless_uniform(
        [],
        tf.random.experimental.stateless_fold_in(level_seed, len(specs)),
        minval=0,
        maxval=len(specs),
        dtype=tf.int32,
    )
    branches = [lambda spec=spec: add_noise_tf(clean, spec, level_seed, pixel_seed) for spec in specs]
    return tf.switch_case(choice, branches)


def add_noise_tf(clean, noise: NoiseSpec, level_seed, pixel_seed):
    """The TensorFlow twin of denoise.noise.specs.add_noise, then rounded to 8 bits as a noisy file on disk would be."""
    shape = tf.shape(clean)
    if noise.kind in CAMERA_KINDS:
        noisy = add_camera_noise(clean, noise.low, noise.high, pixel_seed, jpeg=noise.kind == CAMERA_JPEG)
        return tf.round(noisy * 255.0) / 255.0
    level = tf.random.stateless_uniform([shape[0], 1, 1, 1], level_seed, noise.low, noise.high + 1e-9)
    if noise.kind == GAUSSIAN:
        noisy = clean + tf.random.stateless_normal(shape, pixel_seed) * (level / 255.0)
    elif noise.kind == POISSON:
        counts = clean * level
        noisy = tf.random.stateless_poisson(shape, pixel_seed, counts, dtype=tf.float32) / level
    else:
        draws = tf.random.stateless_uniform(tf.concat([shape[:3], [2]], 0), pixel_seed)
        hit, salt = draws[..., :1] < level, tf.cast(draws[..., 1:] < 0.5, tf.float32)
        noisy = tf.where(hit, salt, clean)
    return tf.round(tf.clip_by_value(noisy, 0.0, 1.0) * 255.0) / 255.0
