"""The colour path: how images with other channel counts than the model's go through it, and come back.

A grayscale model cleans each channel of a colour image on its own, or, for a blind Gaussian model, each plane of
an opponent colour space (colour.py), which carries less noise; a colour model gets gray images repeated into three
channels and its output averaged back. A gray impulse model on a colour image whose impulses hit whole pixels puts
back every black or white value that is not black or white in all channels (it is clean, which the model cannot
tell one channel at a time).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from denoise.errors import ModelError, NoiseSpecError
from denoise.inference.colour import (
    from_opponent,
    noise_sigma,
    residual_stride,
    to_opponent,
    unclip,
)
from denoise.noise.detection import (
    impulses_hit_whole_pixels,
    is_extreme,
    whole_extreme_pixels,
)
from denoise.noise.specs import GAUSSIAN, parse_noise

COLOUR_SPACES = ("rgb", "opponent")
BLIND_MAX_LOW_SIGMA = 5.0  # a Gaussian model trained from this sigma (or less) up to some higher one is "blind"

RunPlanes = Callable[[list[np.ndarray], bool], list[np.ndarray]]  # (HxWx1-or-C planes, in_place) -> outputs


def colour_space_for(metadata: dict) -> str:
    """"opponent" for a blind grayscale Gaussian model, else "rgb".

    The opponent planes of a colour image carry less noise than its channels (colour.py), which a model trained
    on a range of noise levels down to light noise handles, and one trained at a single level would not.
    """
    try:
        noise = parse_noise(str(metadata.get("noise", "")))
    except NoiseSpecError:
        return "rgb"
    blind = noise.kind == GAUSSIAN and noise.is_range and noise.low <= BLIND_MAX_LOW_SIGMA
    return "opponent" if blind and metadata.get("channels") == 1 else "rgb"


class ChannelPath:
    """Splits images into the planes a model of `channels` channels takes, and merges its outputs back."""

    def __init__(self, channels: int, impulse: bool, colour_space: str = "rgb"):
        if colour_space not in COLOUR_SPACES:
            raise ValueError(f"colour_space must be one of {COLOUR_SPACES}, not {colour_space!r}")
        self.channels, self.impulse = channels, impulse
        self.opponent = colour_space == "opponent" and channels == 1 and not impulse

    def split(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[list[int]]]:
        """The planes to run, and for each image the indices of its planes among them."""
        planes, owners = [], []
        for image in images:
            parts = self._parts(as_hwc(image))
            owners.append(list(range(len(planes), len(planes) + len(parts))))
            planes.extend(np.ascontiguousarray(part, dtype=np.float32) for part in parts)
        return planes, owners

    def _parts(self, image: np.ndarray) -> list[np.ndarray]:
        if image.shape[-1] == self.channels:
            return [image]
        if self._in_opponent_space(image):
            opponent = to_opponent(image)
            return [opponent[..., c : c + 1] for c in range(3)]
        if self.channels == 1:
            return [image[..., c : c + 1] for c in range(image.shape[-1])]
        if image.shape[-1] == 1:
            return [np.repeat(image, self.channels, axis=-1)]
        raise ModelError(f"A {self.channels}-channel model cannot clean {image.shape[-1]}-channel images.")

    def merge(self, image: np.ndarray, outputs: list[np.ndarray]) -> np.ndarray:
        """One image's cleaned planes back in its own channels, clipped to [0, 1]."""
        image = as_hwc(image)
        if len(outputs) > 1 and self._in_opponent_space(image):
            merged = np.concatenate(outputs, axis=-1)
            stride = residual_stride(*image.shape[:2])
            _back_from_opponent(merged, to_opponent(image[::stride, ::stride]), stride)
        elif len(outputs) > 1:
            merged = np.concatenate(outputs, axis=-1)
            whole = self._whole_impulse_pixels(image)
            if whole is not None:
                clean = is_extreme(image) & ~whole[..., None]
                merged[clean] = image[clean]
        elif outputs[0].shape[-1] != image.shape[-1]:
            merged = outputs[0].mean(axis=-1, keepdims=True)
        else:
            merged = outputs[0]
        # merged is our own array (never the caller's), so it is clipped in place where NumPy allows writing to it.
        return np.clip(merged, 0.0, 1.0, out=merged if merged.flags.writeable else None)

    def cleans_in_place(self, image) -> bool:
        """Whether a colour image we may overwrite can go through this gray model a channel at a time, in place."""
        return (self.channels == 1 and isinstance(image, np.ndarray) and image.dtype == np.float32
                and image.ndim == 3 and image.shape[-1] > 1 and image.flags.writeable)

    def clean_in_place(self, image: np.ndarray, run: RunPlanes) -> np.ndarray:
        """A gray model on one colour image we may overwrite: a channel at a time, each cleaned where it lies.

        The channel goes to the model as a strided view of the image: a large one is tiled, and its tiles' outputs
        are written straight back into it, so a 50 MP photo needs no 200 MB plane copy; a small one comes back as
        a new array, copied in."""
        whole = self._whole_impulse_pixels(image)
        opponent = self._in_opponent_space(image)
        if opponent:
            to_opponent(image, out=image)
            stride = residual_stride(*image.shape[:2])
            samples = image[::stride, ::stride].copy()  # some of the noisy planes, to measure the noise on
        for channel in range(image.shape[-1]):
            plane = image[..., channel : channel + 1]
            clean = None if whole is None else is_extreme(plane[..., 0]) & ~whole
            kept = None if clean is None else plane[..., 0][clean]  # the run may overwrite the plane
            (result,) = run([plane], True)
            if result is not plane:
                image[..., channel : channel + 1] = result
            if clean is not None:
                image[..., channel][clean] = kept
        if opponent:
            _back_from_opponent(image, samples, stride)
        return np.clip(image, 0.0, 1.0, out=image)

    def _in_opponent_space(self, image: np.ndarray) -> bool:
        return self.opponent and image.shape[-1] == 3

    def _whole_impulse_pixels(self, image: np.ndarray) -> np.ndarray | None:
        """For a gray impulse model on a colour image whose impulses hit whole pixels: the pixels black or white in
        every channel. None where that does not apply."""
        if not (self.impulse and self.channels == 1 and image.shape[-1] > 1 and impulses_hit_whole_pixels(image)):
            return None
        return whole_extreme_pixels(image)


def _back_from_opponent(denoised: np.ndarray, noisy_samples: np.ndarray, stride: int) -> None:
    """Opponent planes the model cleaned back to RGB, in place, with the clipping bias undone (colour.py).
    noisy_samples: the noisy opponent planes at every stride-th pixel of every stride-th row."""
    sigma = noise_sigma(noisy_samples, denoised[::stride, ::stride])
    unclip(from_opponent(denoised, out=denoised), sigma)


def as_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    return image[..., None] if image.ndim == 2 else image
