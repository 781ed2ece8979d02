"""Colour images through a grayscale model: an opponent colour space, and the bias of clipped noise undone.

A blind grayscale model cleans a colour photo better in an opponent colour space than channel by channel (CSet5,
docs/model-search.md): the brightness plane Y = (R+G+B)/3 carries a third of the noise variance of a channel, and the
two colour-difference planes carry little fine detail, so each plane is an easier gray image. CBM3D does the same.

8-bit files clip noise at black and white, which lifts dark values and lowers bright ones on average. The gray model
learned to undo that in a gray plane, where clipping happens; mixing the channels hides it from the model. So after
converting back, each value is corrected as Foi does for BM3D ("Clipped noisy images: heteroskedastic modeling and
practical denoising", Signal Processing, 2009): the denoised value estimates E[clip(c + n)], the mean of a clipped
noisy value, and inverting that increasing function of the clean value c gives c. It needs the noise level, which is
read off what the model removed, so the user still never has to give sigma.

Images are float32 HxWx3 arrays in [0, 1]; the conversions work band by band so that a 50 MP photo needs no second
full-size copy.
"""

from __future__ import annotations

import math

import numpy as np

from denoise.noise.detection import robust_sigma

TO_OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]], np.float32)
FROM_OPPONENT = np.linalg.inv(TO_OPPONENT.astype(np.float64)).astype(np.float32)
# The colour-difference planes lie in [-1/2, 1/2]; shifted by a half they are images in [0, 1] like the others.
OFFSET = np.array([0.0, 0.5, 0.5], np.float32)
# A channel's noise sigma over that of each opponent plane (the rows' Euclidean norms, inverted): sqrt(3, 2, 8/3).
NOISE_GAIN = 1.0 / np.linalg.norm(TO_OPPONENT.astype(np.float64), axis=1)
RESIDUAL_SAMPLES = 250_000  # pixels the noise level is measured on: plenty, and cheap on a 50 MP photo
_BAND_PIXELS = 1 << 20
_TABLE_SIZE = 4096


def to_opponent(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Y, (R-B)/2 + 1/2 and (R-2G+B)/4 + 1/2 of an HxWx3 image (out=image converts in place)."""
    return _transform(image, TO_OPPONENT, OFFSET, 0.0, out)


def from_opponent(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The inverse of to_opponent."""
    return _transform(image, FROM_OPPONENT, 0.0, OFFSET, out)


def _transform(image, matrix, add_after, subtract_before, out):
    out = np.empty(image.shape, np.float32) if out is None else out
    rows = max(1, _BAND_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], rows):
        band = image[top : top + rows].astype(np.float32)  # a copy: out may be image
        band -= subtract_before
        out[top : top + rows] = band @ matrix.T + add_after
    return out


def residual_stride(height: int, width: int) -> int:
    """Measure the noise on every n-th pixel of every n-th row: all of a small image, about RESIDUAL_SAMPLES of a
    big one."""
    return max(1, int(math.sqrt(height * width / RESIDUAL_SAMPLES)))


def noise_sigma(noisy: np.ndarray, denoised: np.ndarray) -> float:
    """The noise sigma of a channel (0-1 scale), from opponent planes before and after the model (HxWx3 each).

    What the model removed from each plane is the noise plus its small errors; the median absolute deviation keeps
    edges it got wrong from counting. Values near black or white are left out, where clipping shrinks the noise.
    """
    usable = (noisy[..., 0] > 0.1) & (noisy[..., 0] < 0.9)
    if usable.sum() < 100:
        usable = np.ones(noisy.shape[:2], bool)
    sigmas = []
    for plane in range(3):
        sigmas.append(robust_sigma((noisy[..., plane] - denoised[..., plane])[usable]) * NOISE_GAIN[plane])
    return float(np.median(sigmas))


def unclip(image: np.ndarray, sigma: float) -> np.ndarray:
    """Undo the bias that clipping at 0 and 1 gave values near them, in place (see the module's notes)."""
    if sigma < 0.25 / 255:
        return image
    clean = np.linspace(0.0, 1.0, _TABLE_SIZE + 1)
    clipped_mean = _clipped_gaussian_mean(clean, sigma)
    # The inverse as a table over the denoised value, looked up by rounding (steps of 1/16 of an 8-bit level):
    # several times faster than interpolating every value, which matters on heavy noise where many values move.
    inverse = np.interp(clean, clipped_mean, clean).astype(np.float32)
    moved = np.abs(inverse - clean) > 1e-4  # far from black and white the value stays as it is
    low, high = clean[moved & (clean < 0.5)], clean[moved & (clean > 0.5)]
    below = low.max() if low.size else -1.0
    above = high.min() if high.size else 2.0
    rows = max(1, _BAND_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], rows):
        band = image[top : top + rows]  # a view: assigning through its mask writes to the image
        near = (band <= below) | (band >= above)
        index = np.rint(np.clip(band[near], 0.0, 1.0) * _TABLE_SIZE).astype(np.intp)
        band[near] = inverse[index]
    return image


def _clipped_gaussian_mean(clean: np.ndarray, sigma: float) -> np.ndarray:
    """E[clip(c + n, 0, 1)] for n ~ N(0, sigma^2), for each clean value c."""
    cdf = np.vectorize(lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))))
    pdf = lambda x: np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # noqa: E731
    a, b = (0.0 - clean) / sigma, (1.0 - clean) / sigma
    return clean * (cdf(b) - cdf(a)) + sigma * (pdf(a) - pdf(b)) + (1.0 - cdf(b))
