"""More or less smoothing than a blind model chooses by itself (`denoise run --strength`).

A blind model measures the noise in each image and removes what it finds. Strength s scales that:
- s below 1 keeps part of what was removed: noisy + s * (denoised - noisy). 0 gives the input back.
- s above 1 shows the model s times the noise it found, around its own estimate of the clean image (clipped to
  [0, 1] as a noisy file is), and cleans that: the model then removes noise of s times the level, as it would in a
  noisier photo, and smooths more. This runs the model twice. It can only work while s times the noise stays within
  what the model was trained for (sigma 50 for the Gaussian models): tests/test_strength.py checks that strength 2
  smooths a sigma-10 crop of samples/camera.png through the gray Gaussian model (its median difference between
  neighbours below 0.8x that at strength 1).
Any function from a list of float HxWxC images in [0, 1] to a list of the same shapes can be wrapped, so the shipped
models, a user's model, and the model chosen per image all take it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_STRENGTH = 3.0

Denoise = Callable[[list[np.ndarray]], list[np.ndarray]]


class WithStrength:
    """A denoiser whose smoothing is scaled by `strength` (0..MAX_STRENGTH; 1 is the model's own choice).

    Other attributes (the detected kinds of noise, the precision) are those of the denoiser it wraps.
    """

    def __init__(self, denoise: Denoise, strength: float):
        if not 0.0 <= strength <= MAX_STRENGTH:
            raise ValueError(f"strength must lie in 0..{MAX_STRENGTH:g}, not {strength}")
        self.denoise, self.strength = denoise, float(strength)

    def __getattr__(self, name: str):
        return getattr(self.denoise, name)

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        if self.strength == 1.0:
            return self.denoise(images)
        if self.strength == 0.0:
            return [np.array(image, dtype=np.float32) for image in images]
        # The wrapped denoiser may clean an image in place (RunSettings.reuse_input), so keep the inputs.
        noisy = [np.array(image, dtype=np.float32) for image in images]
        denoised = self.denoise([image.copy() for image in noisy])
        if self.strength < 1.0:
            return [n + self.strength * (d - n) for n, d in zip(noisy, denoised)]
        louder = [np.clip(d + self.strength * (n - d), 0.0, 1.0) for n, d in zip(noisy, denoised)]
        return list(self.denoise(louder))
