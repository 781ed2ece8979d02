"""The custom Keras layers of denoise's models, registered so `.keras` files load with safe_mode=True.

They are saved by their registered names ("denoise>SpaceToDepth"...), so renaming one would break saved models.
"""

from __future__ import annotations

import keras
from keras import layers

from denoise.noise.detection import EXTREME_HIGH, EXTREME_LOW


class _BlockLayer(layers.Layer):
    """Base of the fold and unfold layers: their one setting, the side of the pixel blocks, saved in their config.

    Not registered itself: files name the two subclasses, as they always have.
    """

    def __init__(self, block: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="denoise")
class SpaceToDepth(_BlockLayer):
    """Folds each block x block patch of pixels into channels, so convolutions run at lower resolution (cheap)."""

    def call(self, inputs):
        import tensorflow as tf  # the fused op; denoise runs Keras on the TensorFlow backend only

        return tf.nn.space_to_depth(inputs, self.block)


@keras.saving.register_keras_serializable(package="denoise")
class DepthToSpace(_BlockLayer):
    """The inverse of SpaceToDepth: unfolds channels back into block x block pixels."""

    def call(self, inputs):
        import tensorflow as tf

        return tf.nn.depth_to_space(inputs, self.block)


def _extreme(values):
    """Salt-and-pepper noise only ever sets values to 8-bit 0 or 255: any other value is known to be clean."""
    return keras.ops.logical_or(values <= EXTREME_LOW, values >= EXTREME_HIGH)


@keras.saving.register_keras_serializable(package="denoise")
class FillImpulses(layers.Layer):
    """Replaces pure black and white values by the mean of the other values around them (5x5, else 9x9).

    The network of an impulse model then refines a rough, hole-free image instead of inpainting from scratch: at
    50% density that is the difference between a network that beats the adaptive median filter and one that does
    not (docs/model-search.md). Where a 9x9 window holds nothing but black and white (a clipped sky, a black
    background), the majority of the window wins, so salt on black is removed and black stays black.
    """

    def call(self, noisy):
        extreme = _extreme(noisy)
        known = keras.ops.cast(keras.ops.logical_not(extreme), noisy.dtype)
        filled = keras.ops.round(keras.ops.average_pool(noisy, 9, strides=1, padding="same"))
        for size in (9, 5):  # the 5x5 mean where it has known values, else the 9x9 one, else the majority
            total = keras.ops.average_pool(noisy * known, size, strides=1, padding="same")
            count = keras.ops.average_pool(known, size, strides=1, padding="same")
            filled = keras.ops.where(count > 0, total / keras.ops.maximum(count, 1e-6), filled)
        return keras.ops.where(extreme, filled, noisy)


@keras.saving.register_keras_serializable(package="denoise")
class KeepUncorrupted(layers.Layer):
    """Keeps every input value that is not pure black or white; the network's estimate replaces only those.

    This is the "switching" idea of switching median filters: clean pixels come out bit for bit, and training
    spends its effort on the corrupted ones only.
    """

    def call(self, inputs):
        noisy, estimate = inputs
        return keras.ops.where(_extreme(noisy), estimate, noisy)


# Layers of the self-supervised training graph (training/self_supervised.py). They never appear in a saved denoiser.
@keras.saving.register_keras_serializable(package="denoise")
class PickFromCells(layers.Layer):
    """In every 2x2 cell of an image, the one pixel a one-hot choice names: (N,H,W,C), (N,H/2,W/2,4,1) -> (N,H/2,W/2,C).

    The cell's pixels are numbered row by row (0 top left, 3 bottom right), as space_to_depth orders them.
    """

    def call(self, inputs):
        import tensorflow as tf

        image, choice = inputs
        cells = tf.nn.space_to_depth(image, 2)
        shape = tf.shape(cells)
        cells = tf.reshape(cells, tf.stack([shape[0], shape[1], shape[2], 4, image.shape[-1]]))
        return tf.reduce_sum(cells * tf.cast(choice, cells.dtype), axis=3)

    def compute_output_shape(self, input_shape):
        image, _ = input_shape
        half = [None if size is None else size // 2 for size in image[1:3]]
        return (image[0], *half, image[3])


@keras.saving.register_keras_serializable(package="denoise")
class StopGradient(layers.Layer):
    """Its input, as a constant to the optimizer: the network's view of the whole image in Neighbor2Neighbor's
    regulariser must not be trained towards it."""

    def call(self, inputs):
        import tensorflow as tf

        return tf.stop_gradient(inputs)


@keras.saving.register_keras_serializable(package="denoise")
class Scale(layers.Layer):
    """Its input times the square root of a weight that training may change between steps (not by gradient), so a
    mean squared error on its output is weighted by that weight: Neighbor2Neighbor's regulariser, ramped up."""

    def build(self, input_shape):
        self.weight = self.add_weight(name="weight", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs):
        return inputs * keras.ops.sqrt(keras.ops.cast(self.weight, inputs.dtype))
