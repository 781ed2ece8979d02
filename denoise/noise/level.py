"""How much noise a set of noisy images carries at each brightness, measured from the images alone.

Camera and photon noise grow with the signal (a pixel of true value x varies with variance a*x + b), and clipping
at black and white squeezes it again. Self-supervised training by recorruption (training/recorrupt.py) adds noise
of the same strength as the images already carry, so that strength is measured once from the training images:

- Each 2x2 cell is split into its finest details (Haar's bands): the diagonal one (HH) measures the noise, the
  horizontal and vertical ones (LH, HL) find where the photo is flat. Both are pooled over blocks of BLOCK x BLOCK
  cells, beside the blocks' mean brightness.
- Texture and edges only ever add to a block's detail, so in each brightness group the SELECTED fraction of blocks
  with the least LH and HL detail is taken: flat blocks, whose HH detail is nearly all noise. Their mean HH detail,
  divided by the same mean for pure noise of unit variance and the measured spread (simulated once:
  pure_noise_details), is the noise variance. That ratio also corrects for noise spread over neighbouring pixels
  (a camera's, correlation.py), which has less of its variance in the finest detail (15% on camera:0.5 noise, where
  white noise has all of it).
- Choosing the blocks by one band and measuring them by another keeps the choice from favouring blocks whose own
  noise happened to come out weak: for white noise the bands of a cell are independent. An earlier version took a
  low quantile of the HH detail itself and divided by pure noise's quantile; the photos' texture in the blocks it
  chose made it read 2-3% high on white noise and 3-12% on camera noise in the mid tones, where this reads 0-4%
  (`benchmarks/noise_level.py`, docs/training.md).
- A group's brightness is the median of its chosen blocks', not of all its blocks: where the noise grows with the
  light, the flattest blocks of a group are not spread evenly over it.
- Between group centres the sigma is interpolated, beyond them held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from denoise.noise.clipping import clipped_mean, clipped_std
from denoise.noise.correlation import is_white, noise_correlation, shaping_kernel

BLOCK = 8  # detail coefficients a side per block: 16x16 pixels
SELECTED = 0.05  # the flattest fraction of each brightness group's blocks (2-20% tried: docs/training.md)
MIN_SELECTED = 10  # a group of few blocks takes a larger fraction, so that at least this many are chosen
# Narrow groups: where the noise grows with the light, it varies across a wide group
GROUPS = 16
MIN_BLOCKS = 50  # blocks below which a brightness group is too rough to count
SIMULATED_FIELDS, SIMULATED_SIDE = 16, 512  # pure noise for pure_noise_details: 16,384 blocks a channel
MAX_SAMPLED_IMAGES = 512
CLIP_FREE = 2.33  # sigmas from black and white beyond which under 1% of a group's pixels are clipped
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

    def clean_sigma_at(self, value) -> np.ndarray:
        """The noise's standard deviation before clipping at a true value (0-1). Between the groups far enough from
        black and white that clipping cannot have squeezed their noise (CLIP_FREE sigmas) it is the measured one;
        beyond them the variance goes on along the straight line through theirs (photon noise plus read noise
        grows so, a*x + b), from the outermost group's."""
        centres, sigmas = np.asarray(self.brightness, np.float64), np.asarray(self.sigma, np.float64)
        free = (centres >= CLIP_FREE * sigmas) & (1.0 - centres >= CLIP_FREE * sigmas)
        if not free.any():  # noise so strong that every group is clipped: the one nearest mid grey
            free = np.abs(centres - 0.5) == np.abs(centres - 0.5).min()
        centres, sigmas = centres[free], sigmas[free]
        slope = np.polyfit(centres, sigmas**2, 1)[0] if len(centres) > 1 else 0.0
        value = np.asarray(value, np.float64)
        below = sigmas[0] ** 2 + slope * (value - centres[0])
        above = sigmas[-1] ** 2 + slope * (value - centres[-1])
        outside = np.sqrt(np.maximum(np.where(value < centres[0], below, above), 0.0))
        return np.where((value >= centres[0]) & (value <= centres[-1]), np.interp(value, centres, sigmas), outside)

    def clipped_mean_table(self) -> np.ndarray:
        """What the noisy 8-bit copies of each of the 256 true levels average to (clipping.clipped_mean), float32."""
        levels = np.arange(256) / 255.0
        return clipped_mean(levels, self.clean_sigma_at(levels)).astype(np.float32)

    def noisy_sigma_table(self) -> np.ndarray:
        """How far noisy 8-bit pixels stray from their mean, at each of the 256 levels of that mean, float32: the
        clean_sigma_at of the true value whose clipped copies average to the level, squeezed as clipping squeezes
        it (clipping.clipped_std). Near black at sigma 25 it is 15 of 255, not 25."""
        truth = np.linspace(0.0, 1.0, 1025)
        means = np.maximum.accumulate(clipped_mean(truth, self.clean_sigma_at(truth)))
        true_values = np.interp(np.arange(256) / 255.0, means, truth)
        return clipped_std(true_values, self.clean_sigma_at(true_values)).astype(np.float32)

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
    blocks = []
    for image in sample:
        for channel in range(image.shape[-1]):
            mean, noise_detail, flatness, clipped = block_statistics(image[..., channel])
            # a pixel clipped at black or white has lost its noise
            blocks.append(np.stack([mean, noise_detail, flatness])[:, ~clipped])
    means, noise_details, flatness = np.concatenate(blocks, axis=1) if blocks else np.zeros((3, 0))
    level = fit_noise_level(means, noise_details, flatness, pure_noise_details(kernel, sample.shape[-1]))
    return NoiseLevel(level.brightness, level.sigma, kernel)


def pure_noise_details(kernel: np.ndarray | None, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The (HH detail, LH and HL detail) that block_statistics gives for noise of unit variance shaped by `kernel`
    (white where None), every channel pooled: simulated with a fixed seed, so the same kernel gives the same
    values."""
    side = SIMULATED_SIDE + (0 if kernel is None else kernel.shape[0] - 1)
    white = np.random.default_rng(0).standard_normal((channels, SIMULATED_FIELDS, side, side), np.float32)
    if kernel is None:
        noise = white
    else:  # as tf.nn.conv2d applies it: output channel d sums input channel c through kernel[:, :, c, d]
        noise = np.stack([sum(signal.correlate(white[c], kernel[None, :, :, c, d], mode="valid", method="fft")
                              for c in range(channels)) for d in range(channels)])
    details = [block_statistics(plane)[1:3] for planes in noise for plane in planes]
    return np.concatenate([hh for hh, _ in details]), np.concatenate([flatness for _, flatness in details])


def block_statistics(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per block of an HxW plane, flattened: its mean brightness, mean squared HH coefficient, mean squared LH and
    HL coefficients (summed), and whether over MAX_CLIPPED of its 2x2 cells hold a pure black or white pixel."""
    height, width = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    cells = plane[:height, :width].reshape(height // 2, 2, width // 2, 2)
    top_left, top_right, bottom_left, bottom_right = (cells[:, row, :, col] for row in (0, 1) for col in (0, 1))
    diagonal = (top_left - top_right - bottom_left + bottom_right) / 2
    vertical = (top_left + top_right - bottom_left - bottom_right) / 2  # the top row against the bottom one
    horizontal = (top_left - top_right + bottom_left - bottom_right) / 2  # the left column against the right one

    def pooled(values):
        rows, cols = values.shape[0] // BLOCK * BLOCK, values.shape[1] // BLOCK * BLOCK
        return values[:rows, :cols].reshape(rows // BLOCK, BLOCK, cols // BLOCK, BLOCK).mean(axis=(1, 3)).ravel()

    clipped = ((cells <= 0) | (cells >= 1)).any(axis=(1, 3)).astype(np.float32)
    return (pooled(cells.mean(axis=(1, 3))), pooled(diagonal**2), pooled(vertical**2 + horizontal**2),
            pooled(clipped) > MAX_CLIPPED)


def fit_noise_level(means: np.ndarray, noise_details: np.ndarray, flatness: np.ndarray,
                    pure_noise: tuple[np.ndarray, np.ndarray]) -> NoiseLevel:
    """The noise level of each brightness group with enough blocks, from its flattest blocks (_flat_blocks_sigma)."""
    if means.size == 0:
        return NoiseLevel((0.5,), (0.0,))
    edges = np.linspace(0.0, 1.0, GROUPS + 1)
    which = np.clip(np.digitize(means, edges) - 1, 0, GROUPS - 1)
    centres, sigmas = [], []
    for group in range(GROUPS):
        members = which == group
        if np.count_nonzero(members) >= MIN_BLOCKS:
            centre, sigma = _flat_blocks_sigma(means[members], noise_details[members], flatness[members], pure_noise)
            centres.append(centre)
            sigmas.append(sigma)
    if not centres:  # too few blocks for any group: one level for all
        return NoiseLevel((0.5,), (_flat_blocks_sigma(means, noise_details, flatness, pure_noise)[1],))
    return NoiseLevel(tuple(centres), tuple(sigmas))


def _flat_blocks_sigma(means: np.ndarray, noise_details: np.ndarray, flatness: np.ndarray,
                       pure_noise: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """(median brightness, sigma) of the flattest SELECTED of one group's blocks: their mean HH detail over that of
    the same fraction of pure noise's blocks, chosen the same way."""
    fraction = min(1.0, max(SELECTED, MIN_SELECTED / means.size))
    chosen = flatness <= np.quantile(flatness, fraction)
    pure_detail, pure_flatness = pure_noise
    unit = pure_detail[pure_flatness <= np.quantile(pure_flatness, fraction)].mean()
    return float(np.median(means[chosen])), float(np.sqrt(noise_details[chosen].mean() / unit))
