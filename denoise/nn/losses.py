"""Training losses beyond Keras' own, registered so resumable checkpoints that use them load again."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="denoise")
def psnr_loss(clean, denoised):
    """Each patch's mean squared error in dB, i.e. minus its PSNR: every patch counts by its dB gain.

    With plain MSE a sigma-50 patch's error is about ten times a sigma-15 one's, so blind training spends its
    effort on heavy noise and neglects light noise (and clean images); in dB every noise level weighs the same,
    as it does in a PSNR table. The floor of 1e-6 (60 dB) keeps the gradient of a perfect patch finite.
    """
    squared_error = keras.ops.mean(keras.ops.square(clean - denoised), axis=[1, 2, 3])
    return 10.0 * keras.ops.log(squared_error + 1e-6) / math.log(10.0)


def loss_function(name: str):
    return psnr_loss if name == "psnr" else name


def interpolated(table, value):
    """The 256-entry table (of the levels 0, 1/255, ..., 1) at `value`, linearly interpolated, and extrapolated
    along the end segments beyond [0, 1] so that the slope never vanishes. Works on tensors and arrays
    (keras.ops)."""
    ops = keras.ops
    table = ops.convert_to_tensor(table, "float32")
    position = ops.convert_to_tensor(value, "float32") * 255.0
    lower = ops.clip(ops.floor(ops.stop_gradient(position)), 0.0, 254.0)
    index = ops.cast(lower, "int32")
    start, end = ops.take(table, index), ops.take(table, index + 1)
    return start + (position - lower) * (end - start)


@keras.saving.register_keras_serializable(package="denoise")
class ClippedNoiseError(keras.losses.Loss):
    """Mean squared error between noisy targets and what the output's noisy 8-bit copies would average to: the
    output looked up in a table of the clipped mean at each true level (NoiseLevel.clipped_mean_table).

    For targets that are noisy 8-bit pixels (recorruption's), whose mean near black and white is the clipped mean and
    not the true value: with plain MSE the network learns that mean and leaves black a little grey and white a little
    dim; with this loss it learns the value whose clipped mean matches the target, the true value.
    """

    def __init__(self, clipped_means, name: str = "clipped_noise_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.clipped_means = [float(mean) for mean in clipped_means]

    def call(self, target, output):
        expected = interpolated(self.clipped_means, keras.ops.cast(output, "float32"))
        return keras.ops.mean(keras.ops.square(expected - keras.ops.cast(target, "float32")), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "clipped_means": self.clipped_means}
