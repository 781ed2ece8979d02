"""Training on noisy images alone: Neighbor2Neighbor (Huang et al., CVPR 2021), for `denoise train --target self`.

Every 2x2 cell of a noisy patch gives two neighbouring pixels, chosen at random: two half-size images of nearly the
same scene whose noise is independent wherever the noise is independent from pixel to pixel. The network learns to
turn one into the other, which in expectation is learning the clean image, since the other image's noise cannot be
predicted. The two images do not show quite the same scene (their pixels sit one apart), so a regulariser asks the
network's error to match the difference the same sub-sampling makes to its own output on the whole image, held
constant (layers.StopGradient). Its weight ramps from 0 to GAMMA over the run, as the authors' code does: at full
weight from the first step it held a small U-Net near the identity for hundreds of steps.

There is no clean image to score the model against, so validation uses the same idea: the mean squared difference
between the network's output on one half-size image and the other, as -10 log10 (a "self-supervised score" in dB,
higher is better); the identity's score is the noisy reference. With pixel-independent noise of variance s2 this is
the error against the clean neighbour plus s2. It does not rank models as PSNR would, though: the clean neighbours
differ a little, and a smoother model scores better: on Set12 at sigma 25 (32-pixel halves) the best score came at
epoch 8 of 20, whose model trailed supervised training by 1.36 dB, where the newest trailed it by 1.00
(`benchmarks/self_supervised.py`).
So without clean twins (--validation-path) the newest model is kept, trained to the end of the regulariser's ramp.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from denoise.errors import DatasetError
from denoise.training.batches import patch_batches, random_orientation

GAMMA = 2.0  # the weight of the regulariser at the end of a run (the paper's, for Gaussian noise)
# The pixels beside each pixel of a 2x2 cell, numbered row by row (0 1 / 2 3): never the diagonal one, whose
# clean value is further away.
NEIGHBOURS = np.array([[1, 2], [0, 3], [0, 3], [1, 2]], np.int32)
MIN_PIXELS = 256 * 256  # below one small photo of noisy pixels, a blind denoiser has too little to learn from
QUIET_SIGMA = 1.0  # noise (0-255) below which the training images count as clean: the model could only learn identity


def neighbour_choices(cells_shape, seed):
    """Two one-hot choices of neighbouring pixels per 2x2 cell, (N, H/2, W/2, 4, 1) each, drawn from `seed`."""
    first = tf.random.stateless_uniform(cells_shape, seed, 0, 4, dtype=tf.int32)
    side = tf.random.stateless_uniform(cells_shape, tf.random.experimental.stateless_fold_in(seed, 1), 0, 2,
                                       dtype=tf.int32)
    second = tf.gather_nd(tf.constant(NEIGHBOURS), tf.stack([first, side], axis=-1))
    return tf.one_hot(first, 4)[..., None], tf.one_hot(second, 4)[..., None]


def self_supervised_examples(batch, seed, size_multiple: int):
    """((noisy, choice1, choice2), targets) for one batch of noisy uint8 patches: cropped to a size whose halves fit
    the network's grid, flipped and transposed at random; the targets are zeros (the losses are differences)."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    noisy = tf.cast(batch, tf.float32) / 255.0
    cell = 2 * size_multiple
    height, width = (int(batch.shape[1]) // cell) * cell, (int(batch.shape[2]) // cell) * cell
    # cropped, not mirrored: a mirrored pixel would repeat its noise
    noisy = random_orientation(noisy[:, :height, :width], seeds)
    shape = tf.shape(noisy)
    first, second = neighbour_choices(tf.stack([shape[0], shape[1] // 2, shape[2] // 2]), seeds[3])
    zeros = tf.zeros(tf.stack([shape[0], shape[1] // 2, shape[2] // 2, shape[3]]))
    return (noisy, first, second), (zeros, zeros)


def make_self_supervised_pipeline(images: np.ndarray, batch_size: int, seed: int, first_step: int = 0,
                                  crop_size: int | None = None, size_multiple: int = 1):
    """An endless tf.data stream of self_supervised_examples: the noisy patches as they are, with new choices every
    step, seeded by (seed, step) as make_pipeline's noise is."""
    examples = patch_batches(images, batch_size, seed, first_step, crop_size).map(
        lambda batch, step: self_supervised_examples(batch, tf.stack([tf.cast(seed, tf.int64), step]), size_multiple),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return examples.prefetch(tf.data.AUTOTUNE)


def neighbour_training_model(network):
    """The Keras model `fit` trains: noisy patches and two choices in, the plain and the regularised errors out.

    It shares its weights with `network`, which is what is saved and run; compile it with mean squared error on
    both outputs. The regularised error is scaled by the layer "ramp", whose weight RampUp sets every step.
    """
    from denoise.nn.layers import PickFromCells, Scale, StopGradient

    noisy = keras.Input(network.input_shape[1:], name="noisy")
    first, second = keras.Input((None, None, 4, 1), name="first"), keras.Input((None, None, 4, 1), name="second")
    half1, half2 = PickFromCells(name="half1")([noisy, first]), PickFromCells(name="half2")([noisy, second])
    error = keras.layers.Subtract(name="error")([network(half1), half2])
    whole = StopGradient(name="whole")(network(noisy))
    shift = keras.layers.Subtract(name="shift")([PickFromCells()([whole, first]), PickFromCells()([whole, second])])
    regularised = Scale(name="ramp")(keras.layers.Subtract(name="regularised")([error, shift]))
    return keras.Model([noisy, first, second], [error, regularised], name="neighbor2neighbor")


class RampUp(keras.callbacks.Callback):
    """Raises the regulariser's weight (the "ramp" layer of a neighbour_training_model) from 0 to GAMMA over the
    run's steps."""

    def __init__(self, model, total_steps: int):
        super().__init__()
        self.ramp, self.total, self.step = model.get_layer("ramp"), max(1, total_steps), 0

    def on_train_batch_begin(self, batch, logs=None):
        self.ramp.weight.assign(GAMMA * min(1.0, self.step / self.total))
        self.step += 1


def validation_halves(images: list[np.ndarray], seed: int, size_multiple: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed neighbour sub-images (half1, half2) of each noisy float HxWxC validation image, the same every epoch."""
    rng = np.random.default_rng(seed)
    halves = []
    cell = 2 * size_multiple
    for image in images:
        height, width = (image.shape[0] // cell) * cell, (image.shape[1] // cell) * cell
        if not (height and width):
            continue
        cells = image[:height, :width].reshape(height // 2, 2, width // 2, 2, -1).transpose(0, 2, 1, 3, 4)
        cells = cells.reshape(height // 2, width // 2, 4, -1)
        first = rng.integers(0, 4, cells.shape[:2])
        second = NEIGHBOURS[first, rng.integers(0, 2, cells.shape[:2])]
        rows, cols = np.indices(cells.shape[:2])
        halves.append((cells[rows, cols, first], cells[rows, cols, second]))
    return halves


def self_supervised_scores(denoise, halves, expected=None) -> tuple[float, float]:
    """The identity's and the model's self-supervised scores (dB) on fixed validation halves (or recorrupted
    pairs). `expected`, if given, maps the outputs to what their noisy copies average to, the targets' mean (as
    recorruption's loss does: recorrupt.expected_noisy)."""
    outputs = denoise([first for first, _ in halves])
    outputs = outputs if expected is None else expected(outputs)
    identity = np.mean([np.mean((first - second) ** 2) for first, second in halves])
    model = np.mean([np.mean((output - second) ** 2) for output, (_, second) in zip(outputs, halves)])
    return _decibels(identity), _decibels(model)


def _decibels(mse: float) -> float:
    return float(-10 * np.log10(max(mse, 1e-12)))


def read_twins(folder, channels: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(clean, noisy) float HxWxC images from folder/clean and folder/noisy, paired by relative path."""
    from pathlib import Path

    from denoise.io.images import IMAGE_SUFFIXES, read_image

    folder = Path(folder)
    names = sorted(path.relative_to(folder / "clean") for path in (folder / "clean").rglob("*")
                   if path.suffix.lower() in IMAGE_SUFFIXES)
    unmatched = [str(name) for name in names if not (folder / "noisy" / name).is_file()]
    if not names or unmatched:
        raise DatasetError(f"--validation-path {folder}: " + (f"no noisy twin for {', '.join(unmatched[:5])} in "
                           f"{folder / 'noisy'}" if unmatched else f"no images in {folder / 'clean'}")
                           + ". Put each clean image and its noisy twin under the same name in clean/ and noisy/.")
    pairs = [[_as_channels(read_image(folder / side / name).pixels, channels) for side in ("clean", "noisy")]
             for name in names]
    for (clean, noisy), name in zip(pairs, names):
        if clean.shape != noisy.shape:
            raise DatasetError(f"--validation-path {folder}: {name} is {clean.shape[1]}x{clean.shape[0]} in clean/ "
                               f"but {noisy.shape[1]}x{noisy.shape[0]} in noisy/. Twins must be the same size.")
    return [clean for clean, _ in pairs], [noisy for _, noisy in pairs]


def _as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    if pixels.shape[-1] == channels:
        return pixels
    return pixels.mean(axis=-1, keepdims=True) if channels == 1 else np.repeat(pixels, 3, axis=-1)


def check_noisy_images(images: np.ndarray) -> str | None:
    """DatasetError when there are too few pixels to learn from; a warning when the images seem to carry no noise."""
    from denoise.noise.detection import plane_sigma

    if images.size // images.shape[-1] < MIN_PIXELS:
        raise DatasetError(
            f"--target self needs at least {MIN_PIXELS:,} noisy pixels (one 256x256 photo) to learn from; the training "
            f"images hold {images.size // images.shape[-1]:,}. Add more noisy images, or lower --validation-fraction."
        )
    sample = images[:: max(1, len(images) // 64)].astype(np.float32) / 255.0
    sigma = float(np.median([plane_sigma(patch[..., 0]) for patch in sample]))
    if sigma < QUIET_SIGMA:
        return (f"the training images seem to carry almost no noise (sigma about {sigma:.2f} of 255): trained on them "
                "with --target self, a model learns to leave images as they are. Give it the noisy photos.")
    return None

