"""How noise is spread over neighbouring pixels and across the colour channels, measured from noisy images alone.

A camera's noise is not white: demosaicing interpolates each missing colour from its neighbours, so a pixel's
noise is shared with the pixels beside it, and the colour matrix mixes it across the channels (camera.py). On the
camera:0.5 noise of 60 CBSD432 photos, horizontal neighbours' noise correlates by 0.64 and red with green by -0.24.
Recorruption (training/recorrupt.py) must add noise shaped the same way, or the network learns to keep the part of
the noise the added noise lacks. So the shape is measured:

- In the flattest blocks of BLOCK x BLOCK pixels (the lowest FLAT_SHARE of their variance once a plane is fitted out
  of each channel), the covariance of every pair of channels at every offset up to LAGS pixels. Flat blocks hold
  little but noise; which blocks count as flat biases the overall scale, but barely the shape, and the scale is
  measured apart (level.py).
- It is scaled to an average variance of 1 per channel at offset 0: a "correlation" R.
- A filter K whose output, fed white noise, has that covariance: the matrix square root of R's spectrum at every
  frequency, back in space and cut to KERNEL_SIDE pixels a side.
Noise measured as white within WHITE_TOLERANCE gets no filter: white noise stays exactly white.
"""

from __future__ import annotations

import numpy as np

BLOCK = 16
FLAT_SHARE = 0.1
GROUPS = 8
LAGS = 2
KERNEL_SIDE = 7
FFT_SIDE = 16
WHITE_TOLERANCE = 0.1  # a correlation below this, and channel variances this close to equal, count as white
MAX_BLOCKS = 20_000


def noise_correlation(images: np.ndarray) -> np.ndarray:
    """R, (2 LAGS + 1, 2 LAGS + 1, C, C): the covariance of the noise of float NxHxWxC images in [0, 1] between
    channel c at a pixel and channel d at an offset (dy, dx) from it, at R[LAGS + dy, LAGS + dx, c, d], scaled to an
    average variance of 1."""
    blocks = _flattest_blocks(images)
    covariance = np.zeros((2 * LAGS + 1, 2 * LAGS + 1, images.shape[-1], images.shape[-1]))
    for dy in range(-LAGS, LAGS + 1):
        for dx in range(-LAGS, LAGS + 1):
            here = blocks[:, max(0, -dy) : BLOCK - max(0, dy), max(0, -dx) : BLOCK - max(0, dx)]
            there = blocks[:, max(0, dy) : BLOCK - max(0, -dy), max(0, dx) : BLOCK - max(0, -dx)]
            covariance[LAGS + dy, LAGS + dx] = np.einsum("nhwc,nhwd->cd", here, there) / here[..., 0].size
    return covariance / np.mean(np.diag(covariance[LAGS, LAGS]))


def _flattest_blocks(images: np.ndarray) -> np.ndarray:
    """The FLAT_SHARE of BLOCK x BLOCK blocks with the least variance once each channel's best plane is taken out;
    those residuals, (M, BLOCK, BLOCK, C)."""
    count, height, width, channels = images.shape
    rows, cols = height // BLOCK, width // BLOCK
    blocks = images[:, : rows * BLOCK, : cols * BLOCK].reshape(count, rows, BLOCK, cols, BLOCK, channels)
    blocks = blocks.transpose(0, 1, 3, 2, 4, 5).reshape(-1, BLOCK * BLOCK, channels)
    blocks = blocks[:: max(1, len(blocks) // MAX_BLOCKS)]
    ys, xs = np.mgrid[0:BLOCK, 0:BLOCK]
    plane = np.stack([np.ones(BLOCK * BLOCK), ys.ravel(), xs.ravel()], axis=1)
    residuals = blocks - plane @ (np.linalg.pinv(plane) @ blocks)
    variances, brightness = residuals.var(axis=(1, 2)), blocks.mean(axis=(1, 2))
    # the flattest of each brightness group, so that the dark blocks, whose noise is weakest and clipped at black,
    # are not all the flattest
    groups = np.clip((brightness * GROUPS).astype(int), 0, GROUPS - 1)
    flattest = []
    for group in range(GROUPS):
        members = np.flatnonzero(groups == group)
        flattest.extend(members[np.argsort(variances[members])[: int(np.ceil(len(members) * FLAT_SHARE))]])
    return residuals[np.array(flattest)].reshape(-1, BLOCK, BLOCK, channels)


def is_white(correlation: np.ndarray) -> bool:
    """Whether R is that of white noise, equally strong in every channel, within WHITE_TOLERANCE."""
    centre = correlation[LAGS, LAGS]
    others = correlation.copy()
    others[LAGS, LAGS] -= np.diag(np.diag(centre))
    return bool(np.max(np.abs(others)) < WHITE_TOLERANCE and np.all(np.abs(np.diag(centre) - 1) < 3 * WHITE_TOLERANCE))


def shaping_kernel(correlation: np.ndarray) -> np.ndarray:
    """K, (KERNEL_SIDE, KERNEL_SIDE, C, C) float32, for tf.nn.conv2d: white unit noise through it has covariance R
    (nearly: the filter is cut to KERNEL_SIDE, and R's spectrum is made non-negative first)."""
    channels = correlation.shape[-1]
    grid = np.zeros((FFT_SIDE, FFT_SIDE, channels, channels))
    for dy in range(-LAGS, LAGS + 1):
        for dx in range(-LAGS, LAGS + 1):
            grid[dy % FFT_SIDE, dx % FFT_SIDE] = correlation[LAGS + dy, LAGS + dx]
    spectrum = np.fft.fft2(grid, axes=(0, 1))
    spectrum = (spectrum + np.conj(np.swapaxes(spectrum, -1, -2))) / 2  # Hermitian at every frequency
    values, vectors = np.linalg.eigh(spectrum)
    root = vectors @ (np.sqrt(np.clip(values, 0, None))[..., None] * np.conj(np.swapaxes(vectors, -1, -2)))
    kernel = np.real(np.fft.ifft2(root, axes=(0, 1)))
    half = KERNEL_SIDE // 2
    kernel = np.roll(kernel, (half, half), axis=(0, 1))[:KERNEL_SIDE, :KERNEL_SIDE]
    # tf.nn.conv2d gives output_d(x) = sum_t,c K[t][c, d] input_c(x + t) = (root(t)^T input(x + t))_d, and
    # root(t)^T = root(-t): the convolution of the input with the root, as wanted
    return kernel.astype(np.float32)
