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


def expected_clipped(value, sigma):
    """The mean of clip(value + sigma * Z, 0, 1) over standard normal Z: what the noisy pixels of a true value
    average to when, as in an 8-bit file, the noise is cut off at black and white. Near black it lies above the
    true value (at sigma 25 of 255, a black pixel's noisy copies average 10 of 255), near white below it.

    Its slope in `value` is the chance that a noisy copy is not clipped, so where clipping is rare it is the
    identity. Works on tensors and arrays (keras.ops); sigma is a number or broadcasts against value.
    """
    ops = keras.ops
    value = ops.convert_to_tensor(value, "float32")
    sigma = ops.maximum(ops.convert_to_tensor(sigma, "float32"), 1e-4)
    below, above = -value / sigma, (1.0 - value) / sigma  # black and white, in units of sigma from the value

    def cumulative(z):
        return 0.5 * (1.0 + ops.erf(z / math.sqrt(2.0)))

    def density(z):
        return ops.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    unclipped = cumulative(above) - cumulative(below)
    return value * unclipped + sigma * (density(below) - density(above)) + (1.0 - cumulative(above))


@keras.saving.register_keras_serializable(package="denoise")
class ClippedNoiseError(keras.losses.Loss):
    """Mean squared error between a noisy target and what the output's noisy copies would average to
    (expected_clipped), with the noise's sigma at the output's brightness from a 256-level table.

    For targets that are noisy 8-bit pixels (recorruption's), whose mean is the clipped mean and not the true value:
    with plain MSE the network learns that mean and leaves black a little grey and white a little dim; with this
    loss it learns the value whose clipped mean matches the target, the true value.
    """

    def __init__(self, sigma_table, name: str = "clipped_noise_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sigma_table = [float(sigma) for sigma in sigma_table]

    def call(self, target, output):
        ops = keras.ops
        output = ops.cast(output, "float32")
        level = ops.round(ops.clip(ops.stop_gradient(output), 0.0, 1.0) * 255.0)
        sigma = ops.take(ops.convert_to_tensor(self.sigma_table, "float32"), ops.cast(level, "int32"))
        return ops.mean(ops.square(expected_clipped(output, sigma) - ops.cast(target, "float32")), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "sigma_table": self.sigma_table}
