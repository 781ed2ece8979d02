"""Training on noisy images alone by recorruption: Recorrupted-to-Recorrupted (Pang et al., CVPR 2021), for
`denoise train --target self` (the default --self-method).

A noisy image y = x + n with noise of known strength s (measured from the training images: noise/level.py) gives a
pair: the input y + alpha * s * z and the target y - s * z / alpha, with fresh standard normal z every step. Their
noises (n + alpha s z and n - s z / alpha) are uncorrelated, and for Gaussian noise independent, so the network
cannot predict the target's noise from its input: what it learns in expectation is the clean image, from inputs
with (1 + alpha^2) times the photos' noise variance. Unlike Neighbor2Neighbor it trains on the whole patch at full
resolution, as supervised training does, and the network is fitted directly (the training graph is the network), so
checkpoints and --resume work as they do with clean targets.

alpha trades two costs. A large one makes the inputs noisier than the photos the model will clean (it then smooths
too much); a small one makes the targets very noisy (variance 1 + 1/alpha^2 times the photos'), so learning is
slow. So alpha falls over the run, from FIRST_ALPHA (targets twice as noisy as the photos, fast learning) to
LAST_ALPHA (inputs 1.09 times as noisy, nearly the photos' own noise), while the learning rate decays. Fine-tuning
the shipped Gaussian model on Train400 recovered this way 56% of what clean targets gain on camera noise and 66% on
Poisson noise, against 45% and 57% at a fixed 0.5, the paper's choice; with the noise level measured more exactly
since (noise/level.py), 75% on camera noise and 57% on Poisson (`benchmarks/self_supervised.py`,
docs/training.md).

The noisy photos are 8-bit files, their noise cut off at black and white (noise/clipping.py). Near black a pixel's
noisy copies vary less than elsewhere (15 of 255 at sigma 25, not 25), so the noise added is as strong as the noisy
pixels' own spread at their 3x3 mean (NoiseLevel.noisy_sigma_table): at the unclipped strength the input's and the
target's noise correlated negatively there (-0.4 on black), and the network learnt to smooth dark regions away.
And near black the noisy copies average to more than the true value (10 of 255 at sigma 25), near white to less:
the targets' mean there is that clipped mean. Trained on them with plain MSE the network learns it and leaves black
a little grey; so the loss (losses.ClippedNoiseError) compares the targets with what the output's noisy copies
would average to, and the network learns the true value.

Validation uses the same idea on fixed recorruptions of the held-out noisy images: the mean squared difference
between the model's output (as the loss sees it) and the target is its error against the clean image plus a
constant (the target's noise), so this "self-supervised score" ranks models as PSNR against clean images would, and
the best is kept.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from denoise.noise.level import NoiseLevel
from denoise.training.batches import patch_batches, random_orientation

FIRST_ALPHA = 1.0
LAST_ALPHA = 0.3


def recorrupted_examples(batch, seed, sigma_table, kernel, size_multiple: int, alpha):
    """(input, target) float batches for one batch of noisy uint8 patches: cropped to the network's grid (not
    mirrored: a mirrored pixel would repeat its noise), recorrupted with `alpha`, then oriented at random, input and
    target alike. Oriented after recorrupting, because the kernel shapes the added noise as the photos' noise runs:
    added to a transposed patch, noise spread along rows would cross noise spread along columns."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    height = (int(batch.shape[1]) // size_multiple) * size_multiple
    width = (int(batch.shape[2]) // size_multiple) * size_multiple
    noisy = tf.cast(batch[:, :height, :width], tf.float32) / 255.0
    normal = tf.random.stateless_normal(normal_shape(tf.shape(noisy), kernel), seeds[3])
    model_input, target = recorrupt(noisy, sigma_table, kernel, normal, alpha)
    both = random_orientation(tf.concat([model_input, target], axis=-1), seeds)
    channels = int(batch.shape[-1])
    return both[..., :channels], both[..., channels:]


def alpha_at(step, total_steps: int):
    """alpha at a training step: from FIRST_ALPHA at the first step straight down to LAST_ALPHA at the last."""
    progress = tf.minimum(tf.cast(step, tf.float32) / float(max(1, total_steps - 1)), 1.0)
    return FIRST_ALPHA + (LAST_ALPHA - FIRST_ALPHA) * progress


def normal_shape(shape, kernel):
    """The shape of the standard normal draws recorrupt takes for images of `shape`: larger by the kernel's reach,
    so the shaped noise is as strong at the border as inside."""
    margin = 0 if kernel is None else int(kernel.shape[0]) - 1
    return shape + tf.constant([0, margin, margin, 0], shape.dtype)


def recorrupt(noisy, sigma_table, kernel, normal, alpha=LAST_ALPHA):
    """(input, target) from noisy NHWC floats and standard normal draws (normal_shape): the draws are shaped as the
    noise is (the kernel; None for white noise), and scaled by the noise's sigma at each pixel's brightness,
    looked up at its 3x3 neighbourhood's mean, a steadier guess of its true value than the pixel itself."""
    extra = normal if kernel is None else tf.nn.conv2d(normal, kernel, 1, "VALID")
    around = tf.nn.avg_pool2d(noisy, 3, 1, "SAME")
    sigma = tf.gather(sigma_table, tf.cast(tf.round(tf.clip_by_value(around, 0.0, 1.0) * 255.0), tf.int32))
    extra = extra * sigma
    return noisy + alpha * extra, noisy - extra / alpha


def make_recorrupted_pipeline(images: np.ndarray, level: NoiseLevel, batch_size: int, seed: int, total_steps: int,
                              first_step: int = 0, crop_size: int | None = None, size_multiple: int = 1):
    """An endless tf.data stream of recorrupted_examples, seeded by (seed, step) as make_pipeline's noise is, alpha
    falling over total_steps (alpha_at)."""
    table, kernel = _as_tensors(level)
    examples = patch_batches(images, batch_size, seed, first_step, crop_size).map(
        lambda batch, step: recorrupted_examples(batch, tf.stack([tf.cast(seed, tf.int64), step]), table, kernel,
                                                 size_multiple, alpha_at(step, total_steps)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return examples.prefetch(tf.data.AUTOTUNE)


def validation_pairs(images: list[np.ndarray], level: NoiseLevel, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (input, target) recorruptions of each noisy float HxWxC validation image, the same every epoch, at
    LAST_ALPHA: the inputs nearest the photos the model will clean."""
    rng = np.random.default_rng(seed)
    table, kernel = _as_tensors(level)
    pairs = []
    for image in images:
        shape = normal_shape(tf.constant((1, *image.shape)), kernel)
        normal = tf.constant(rng.standard_normal(shape.numpy()).astype(np.float32))
        model_input, target = recorrupt(tf.constant(image[None], tf.float32), table, kernel, normal)
        pairs.append((model_input.numpy()[0], target.numpy()[0]))
    return pairs


def recorruption_loss(level: NoiseLevel):
    """The loss recorruption trains with: its targets are noisy 8-bit pixels, whose mean near black and white is
    the clipped mean, so the output is compared by what its noisy copies would average to (losses.py)."""
    from denoise.nn.losses import ClippedNoiseError

    return ClippedNoiseError(level.clipped_mean_table())


def expected_noisy(outputs: list[np.ndarray], level: NoiseLevel) -> list[np.ndarray]:
    """What the noisy copies of each float output image would average to (ClippedNoiseError's comparison), so the
    validation score measures what the loss does."""
    from denoise.nn.losses import interpolated

    table = level.clipped_mean_table()
    return [np.asarray(interpolated(table, output)) for output in outputs]


def _as_tensors(level: NoiseLevel):
    return tf.constant(level.noisy_sigma_table()), None if level.kernel is None else tf.constant(level.kernel)
