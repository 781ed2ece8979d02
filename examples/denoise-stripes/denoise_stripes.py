"""An example dataset plugin for denoise: small synthetic images of stripes and gradients, made from the seed."""

from __future__ import annotations

import numpy as np

from denoise.datasets import Dataset, LoadRequest

SIZE = 32  # image side when the request names no patch size
TRAIN_COUNT = 64
VALIDATION_COUNT = 8


def load_stripes(request: LoadRequest) -> Dataset:
    """Synthetic stripes and gradients (no download; for trying denoise and for tests)."""
    size = request.patch_size or SIZE
    channels = request.channels or 1
    rng = np.random.default_rng(request.seed)
    train_count = min(TRAIN_COUNT, request.limit or TRAIN_COUNT)
    validation_count = min(VALIDATION_COUNT, request.limit or VALIDATION_COUNT)
    if request.validation_fraction >= 1.0:  # `denoise eval` wants only validation images
        train_count = 0
    train = [picture(rng, size, channels) for _ in range(train_count)]
    validation = [picture(rng, SIZE, channels) for _ in range(validation_count)]
    return Dataset(train=train, validation=validation, notes={"source": "denoise-stripes (synthetic)"})


def picture(rng: np.random.Generator, size: int, channels: int) -> np.ndarray:
    """One size x size image: stripes at a random angle and period over a gradient, as uint8 HxWxC."""
    y, x = np.mgrid[0:size, 0:size] / size
    angle, period = rng.uniform(0, np.pi), rng.uniform(0.1, 0.5)
    stripes = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period))
    gradient = x if rng.random() < 0.5 else y
    gray = 0.6 * stripes + 0.4 * gradient
    tints = rng.uniform(0.5, 1.0, channels)  # colour images get one tint per channel
    return np.rint(255 * gray[..., None] * tints).astype(np.uint8)
