"""Images held in memory (a Pillow image or a NumPy array) <-> the float pixels the models take, and back.

The library's functions accept what a notebook or another program holds and give back the same type: a Pillow
image in its own mode (alpha and palette kept, as `denoise run` keeps them in files), or an array of the same
shape and dtype. Arrays may be HxW, HxWx1, HxWx2 (gray and alpha), HxWx3 or HxWx4 (RGBA), of uint8, uint16 or
float in [0, 1]; a last channel of alpha is handed back untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from denoise.errors import ImageError
from denoise.io.images import LoadedImage, image_channels, palette_of, to_float, to_integer, to_pillow

ImageLike = Union[Image.Image, np.ndarray]
# Arrays whose last axis has this many entries carry alpha in their last channel.
_WITH_ALPHA = {2: 1, 4: 3}
_FLOAT_KINDS = (np.float16, np.float32, np.float64)


@dataclass
class InMemoryImage:
    """The colour pixels of an image held in memory, and what turns new pixels back into the caller's type."""

    pixels: np.ndarray  # float32 HxWxC in [0, 1], C = 1 or 3: a new array, which the caller may overwrite
    source: ImageLike
    loaded: LoadedImage | None = None  # a Pillow image's mode, alpha, palette and black plate
    alpha: np.ndarray | None = None  # an array's alpha channel, as given

    def restore(self, pixels: np.ndarray) -> ImageLike:
        """New colour pixels (float HxWxC in [0, 1]) as the same type, mode, shape and dtype as the source."""
        if self.loaded is not None:
            image = to_pillow(self.loaded, np.asarray(pixels, np.float32))
            image.info = dict(self.source.info)  # the ICC profile, EXIF and the like travel with the image
            if image.mode != self.source.mode:  # a transparent palette image comes back as RGBA: its alpha says it
                image.info.pop("transparency", None)
            return image
        return _array_like(self.source, pixels, self.alpha)


def from_image(image: Any, what: str = "the image") -> InMemoryImage:
    """An InMemoryImage of a Pillow image or a NumPy array; ImageError says what else would do.

    `what` names the image in messages ("image 3 of the list").
    """
    if isinstance(image, Image.Image):
        return _from_pillow(image, what)
    if isinstance(image, np.ndarray):
        return _from_array(image, what)
    raise ImageError(f"{what} is a {type(image).__name__}; give a Pillow image or a NumPy array (H x W or "
                     "H x W x C). To clean files, use `denoise run` or read them with PIL.Image.open first.")


def _from_pillow(image: Image.Image, what: str) -> InMemoryImage:
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise ImageError(f"{what} holds {frames} frames; denoise cleans single images. Pass one frame at a time "
                         "(image.seek(i), then image.copy()).")
    image.load()
    pixels, alpha, black = image_channels(image, what)
    palette = palette_of(image) if image.mode == "P" and not image.has_transparency_data else None
    loaded = LoadedImage(Path(what), image.format or "PNG", image.mode, image.size, pixels, alpha, {}, palette, black)
    return InMemoryImage(np.array(pixels, np.float32), image, loaded=loaded)


def _from_array(array: np.ndarray, what: str) -> InMemoryImage:
    if array.ndim not in (2, 3) or (array.ndim == 3 and not 1 <= array.shape[-1] <= 4) or 0 in array.shape:
        raise ImageError(f"{what} is an array of shape {array.shape}; give H x W (gray) or H x W x C with C = 1, 2 "
                         "(gray and alpha), 3 (RGB) or 4 (RGBA).")
    colour = array if array.ndim == 2 else array[..., : _WITH_ALPHA.get(array.shape[-1], array.shape[-1])]
    alpha = array[..., -1].copy() if array.ndim == 3 and array.shape[-1] in _WITH_ALPHA else None
    return InMemoryImage(_float_pixels(colour, what), array, alpha=alpha)


def _float_pixels(colour: np.ndarray, what: str) -> np.ndarray:
    if colour.dtype in (np.uint8, np.uint16):
        return to_float(colour)
    if colour.dtype in _FLOAT_KINDS:
        if not np.all(np.isfinite(colour)) or colour.min() < 0 or colour.max() > 1:
            raise ImageError(f"{what} is a {colour.dtype} array with values outside [0, 1] (from {colour.min():g} to "
                             f"{colour.max():g}); float images must lie in [0, 1]. Scale it first, e.g. "
                             "array / 255 for 8-bit values.")
        pixels = np.array(colour, np.float32)
        return pixels[..., None] if pixels.ndim == 2 else pixels
    raise ImageError(f"{what} is a {colour.dtype} array; give uint8, uint16 or float values in [0, 1] "
                     "(e.g. array.astype(np.uint8) for 8-bit values held as integers).")


def _array_like(source: np.ndarray, pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Pixels in the source array's dtype and shape, its alpha put back as it was."""
    pixels = np.asarray(pixels, np.float32)
    if source.dtype in (np.uint8, np.uint16):
        values = to_integer(pixels, source.dtype.type)
    else:
        values = np.clip(pixels, 0.0, 1.0).astype(source.dtype)
    if alpha is not None:
        values = np.concatenate([values, alpha[..., None]], axis=-1)
    return values.reshape(source.shape)
