"""How much noise a set of noisy images carries at each brightness, measured from the images alone.

Camera and photon noise grow with the signal (a pixel of true value x varies with variance a*x + b), and clipping
at black and white squeezes it again. Self-supervised training by recorruption (training/recorrupt.py) adds noise
of the same strength as the images already carry, so that strength is measured once from the training images:

- The finest diagonal detail of each 2x2 block (Haar's HH band) is pooled over blocks of BLOCK x BLOCK such cells,
  beside their mean brightness.
- Texture and edges only ever add to a block's variance, so in each brightness group the low QUANTILE of the block
  variances is taken, and divided by the same quantile for pure noise of unit variance and the measured spread
  (simulated once: pure_noise_variances). That one ratio corrects three things: the low quantile of a noise-only
  block lies below its mean; noise spread over neighbouring pixels (a camera's, correlation.py) has less of its
  variance in the finest detail (15% on camera:0.5 noise, where white noise has all of it); and it makes
  neighbouring cells' details correlate, so a block holds fewer independent values than its 64 cells.
- The quantile is low (2%) because photos' finest texture is about 1 of 255 there, and spread noise shows only part
  of itself: on Train400 with camera:0.5 noise (4.6 of 255 at mid grey), the 10% quantile read 5.8, the 2% one 5.0
  (`benchmarks/noise_level.py`).
- Between group centres the sigma is interpolated, beyond them held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from denoise.noise.correlation import is_white, noise_correlation, shaping_kernel

BLOCK = 8  # HH coefficients a side per block: 16x16 pixels
QUANTILE = 0.02
BLOCKS_BELOW = 5  # a group of few blocks takes a higher quantile, so that this many blocks lie below it
# Narrow groups: where the noise grows with the light, a group's quietest blocks are its darkest, and its low
# quantile reads the noise of darker blocks than the group's median (shot noise read 10% low in the dark tones
# with 8 groups)
GROUPS = 16
MIN_BLOCKS = 50  # blocks below which a brightness group's quantile is too rough to count (its quantile: 10%)
SIMULATED_FIELDS, SIMULATED_SIDE = 16, 512  # pure noise for pure_noise_variances: 16,384 blocks a channel
MAX_SAMPLED_IMAGES = 512
# Blocks with more of their cells clipped at black or white are left out: a clipped pixel has lost its noise, and
# a blown-out sky would read as noiseless. Strong noise clips a few pixels of most dark and light blocks.
MAX_CLIPPED = 0.25


@dataclass(frozen=True)
class NoiseLevel:
    """The noise's standard deviation (0-1 scale) at a few brightness values (0-1), interpolated between, and
    how it is spread over neighbouring pixels and channels."""

    brightness: tuple[float, ...]
    sigma: tuple[float, ...]
    # (side, side, C, C) for tf.nn.conv2d: unit white noise through it has the noise's shape; None: white noise
    kernel: np.ndarray | None = field(default=None, compare=False)

    def sigma_at(self, value) -> np.ndarray:
        """The noise's standard deviation (0-1 scale) at brightness `value` (0-1), a number or an array."""
        return np.interp(value, self.brightness, self.sigma)

    def table(self) -> np.ndarray:
        """The standard deviation at each of the 256 levels of an 8-bit pixel, float32."""
        return self.sigma_at(np.arange(256) / 255.0).astype(np.float32)

    def describe(self) -> str:
        dark, mid, light = (float(self.sigma_at(v)) * 255 for v in (0.1, 0.5, 0.9))
        spread = "white" if self.kernel is None else "spread over neighbouring pixels"
        return f"noise sigma {dark:.1f} / {mid:.1f} / {light:.1f} (of 255) at dark / mid / light grey, {spread}"

    def as_dict(self) -> dict:
        kernel = None if self.kernel is None else np.round(self.kernel, 5).tolist()
        return {"brightness": list(self.brightness), "sigma": list(self.sigma), "kernel": kernel}

    @classmethod
    def from_dict(cls, values: dict) -> NoiseLevel:
        kernel = values.get("kernel")
        return cls(tuple(values["brightness"]), tuple(values["sigma"]),
                   None if kernel is None else np.asarray(kernel, np.float32))


def estimate_noise_level(images: np.ndarray) -> NoiseLevel:
    """The NoiseLevel of uint8 NxHxWxC images (every channel pooled), as the module docstring says."""
    sample = images[:: max(1, len(images) // MAX_SAMPLED_IMAGES)].astype(np.float32) / 255.0
    correlation = noise_correlation(sample)
    kernel = None if is_white(correlation) else shaping_kernel(correlation)
    means, variances = [], []
    for image in sample:
        for channel in range(image.shape[-1]):
            mean, variance, clipped = block_statistics(image[..., channel])
            means.append(mean[~clipped])  # a pixel clipped at black or white has lost its noise
            variances.append(variance[~clipped])
    unit_variances = pure_noise_variances(kernel, sample.shape[-1])
    level = fit_noise_level(np.concatenate(means), np.concatenate(variances), unit_variances)
    return NoiseLevel(level.brightness, level.sigma, kernel)


def pure_noise_variances(kernel: np.ndarray | None, channels: int) -> np.ndarray:
    """The block variances block_statistics gives for noise of unit variance shaped by `kernel` (white where None),
    every channel pooled: simulated with a fixed seed, so the same kernel gives the same values."""
    side = SIMULATED_SIDE + (0 if kernel is None else kernel.shape[0] - 1)
    white = np.random.default_rng(0).standard_normal((channels, SIMULATED_FIELDS, side, side), np.float32)
    if kernel is None:
        noise = white
    else:  # as tf.nn.conv2d applies it: output channel d sums input channel c through kernel[:, :, c, d]
        noise = np.stack([sum(signal.correlate(white[c], kernel[None, :, :, c, d], mode="valid", method="fft")
                              for c in range(channels)) for d in range(channels)])
    variances = [block_statistics(plane)[1] for planes in noise for plane in planes]
    return np.concatenate(variances)


def block_statistics(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean brightness, mean squared HH coefficient, whether over MAX_CLIPPED of its 2x2 cells hold a pure black
    or white pixel) of each block of an HxW plane, flattened."""
    height, width = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    cells = plane[:height, :width].reshape(height // 2, 2, width // 2, 2)
    mean = cells.mean(axis=(1, 3))
    detail = (cells[:, 0, :, 0] - cells[:, 0, :, 1] - cells[:, 1, :, 0] + cells[:, 1, :, 1]) / 2

    def pooled(values):
        rows, cols = values.shape[0] // BLOCK * BLOCK, values.shape[1] // BLOCK * BLOCK
        return values[:rows, :cols].reshape(rows // BLOCK, BLOCK, cols // BLOCK, BLOCK).mean(axis=(1, 3)).ravel()

    clipped = ((cells <= 0) | (cells >= 1)).any(axis=(1, 3)).astype(np.float32)
    return pooled(mean), pooled(detail**2), pooled(clipped) > MAX_CLIPPED


def fit_noise_level(means: np.ndarray, variances: np.ndarray, unit_variances: np.ndarray) -> NoiseLevel:
    """The low quantile of the block variances in each brightness group with enough blocks, over the same quantile
    of unit_variances, those of noise of unit variance (pure_noise_variances)."""
    if means.size == 0:
        return NoiseLevel((0.5,), (0.0,))
    edges = np.linspace(0.0, 1.0, GROUPS + 1)
    which = np.clip(np.digitize(means, edges) - 1, 0, GROUPS - 1)
    centres, sigmas = [], []
    for group in range(GROUPS):
        members = which == group
        if np.count_nonzero(members) >= MIN_BLOCKS:
            centre, sigma = _low_quantile(means[members], variances[members], unit_variances)
            centres.append(centre)
            sigmas.append(sigma)
    if not centres:  # too few blocks for any group: one level for all
        return NoiseLevel((0.5,), (_low_quantile(means, variances, unit_variances)[1],))
    return NoiseLevel(tuple(centres), tuple(sigmas))


def _low_quantile(means: np.ndarray, variances: np.ndarray, unit_variances: np.ndarray) -> tuple[float, float]:
    """(median brightness, sigma) of one group of blocks, the sigma from its low quantile of variances."""
    quantile = min(1.0, max(QUANTILE, BLOCKS_BELOW / variances.size))
    sigma = float(np.sqrt(np.quantile(variances, quantile) / np.quantile(unit_variances, quantile)))
    return float(np.median(means)), sigma
