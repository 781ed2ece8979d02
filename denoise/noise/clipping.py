"""What clipping at black and white does to noise: an 8-bit file holds clip(x + noise, 0, 1), not x + noise.

Near black the noisy copies of a true value x average to more than x (at sigma 25 of 255, a black pixel's average
10 of 255) and vary less (14.6 of 255 instead of 25); near white, the mirror image. Closed forms for Gaussian noise
of standard deviation sigma; values and sigmas are on the 0-1 scale and broadcast.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr  # the standard normal distribution function

SMALLEST_SIGMA = 1e-6  # no noise at all: clipping only


def _bounds(value, sigma):
    sigma = np.maximum(np.asarray(sigma, np.float64), SMALLEST_SIGMA)
    value = np.asarray(value, np.float64)
    return value, sigma, -value / sigma, (1.0 - value) / sigma  # black and white, in sigmas from the value


def _density(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def clipped_mean(value, sigma) -> np.ndarray:
    """The mean of clip(value + sigma * Z, 0, 1) over standard normal Z."""
    value, sigma, below, above = _bounds(value, sigma)
    inside = ndtr(above) - ndtr(below)
    return value * inside + sigma * (_density(below) - _density(above)) + (1.0 - ndtr(above))


def clipped_std(value, sigma) -> np.ndarray:
    """The standard deviation of clip(value + sigma * Z, 0, 1) over standard normal Z."""
    value, sigma, below, above = _bounds(value, sigma)
    inside = ndtr(above) - ndtr(below)
    square = (value**2 * inside + 2 * value * sigma * (_density(below) - _density(above))
              + sigma**2 * (inside + below * _density(below) - above * _density(above)) + (1.0 - ndtr(above)))
    return np.sqrt(np.maximum(square - clipped_mean(value, sigma) ** 2, 0.0))
