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
