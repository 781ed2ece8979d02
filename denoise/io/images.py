"""Pillow <-> arrays: read an image into float colour pixels plus what is needed to write it back the same way.

Colour pixels are float32 HxWxC in [0, 1] (C = 1 or 3); alpha is kept aside untouched. Writing restores the original
mode, format, size and metadata (EXIF, ICC profile, dpi, PNG text, JPEG subsampling, TIFF compression) and is atomic.

Choices about modes, so a reader need not dig through the code:
- P (palette) without transparency is mapped back onto its own palette (nearest colour, no dithering), so a GIF-like
  graphic stays a small palette file. P with transparency, and PA, are written as RGBA: mapping denoised colours
  back onto a palette whose entries carry alpha could turn opaque pixels transparent.
- CMYK is denoised as RGB (Pillow's formula) and written back as CMYK keeping the original black plate.
- 1-bit is denoised as grayscale and thresholded at one half; F (32-bit float) is accepted only within [0, 1].
- Multi-frame files (animations, multi-page TIFF, MPO) are refused: denoising frame 0 alone would silently drop
  the other frames.
- 16-bit RGB PNGs are opened by Pillow as 8-bit RGB, so they come back 8-bit.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from denoise.errors import ImageError
from denoise.io.files import os_error_reason, write_atomically

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
JPEG_QUALITY = 95
WEBP_QUALITY = 95
# What Pillow raises on damaged data, besides OSError; Image.open catches the same kinds while probing formats.
_CORRUPT = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, struct.error)
_ROWS_PER_BAND = 256
_SCALE = {"1": 255, "L": 255, "LA": 255, "RGB": 255, "RGBA": 255, "I": 65535, "F": 1}
# TIFF tags that describe the stored layout; Pillow computes them anew, and copying stale ones corrupts the file.
_TIFF_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 282, 283,
                               284, 290, 291, 296, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 529, 530,
                               531, 532})


@dataclass
class LoadedImage:
    """One image read from disk: its colour pixels, untouched alpha, and what is needed to write it back."""

    path: Path
    format: str  # Pillow's format name ("PNG", "JPEG", ...), from the content, not the suffix
    mode: str  # the mode as stored, e.g. "RGBA" or "I;16"
    size: tuple[int, int]  # (width, height) as Pillow gives it
    pixels: np.ndarray  # float32 HxWxC in [0, 1], colour channels only (C = 1 or 3)
    alpha: np.ndarray | None = None  # HxW uint8, untouched
    info: dict = field(default_factory=dict)  # keyword arguments for Pillow's save that carry the metadata
    palette: Image.Image | None = None  # P mode: a tiny image holding the original palette to map back onto
    black: np.ndarray | None = None  # CMYK: the original black plate (HxW uint8)
    fingerprint: bytes = b""  # of the stored values as decoded (fingerprint()), to tell whether a rewrite changed any


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read one single-frame image fully; raise ImageError naming the file and what to do."""
    path = Path(path)
    _check_file(path)
    with _open(path) as image:
        frames = _frame_count(image, path)
        if frames > 1:
            raise ImageError(f"{path} holds {frames} frames (an animation, a multi-page file or an MPO "
                             "photo); denoise handles single images only. Split it into one file per frame first.")
        _load(image, path)
        pixels, alpha, black = image_channels(image, path)
        palette = palette_of(image) if image.mode == "P" and not image.has_transparency_data else None
        return LoadedImage(path, image.format or "PNG", image.mode, image.size, pixels, alpha,
                           _save_options(image, path), palette, black, fingerprint(image))


def fingerprint(image: Image.Image) -> bytes:
    """A digest of an image's decoded values with its mode and size: equal digests mean the same pixels.

    Taken in bands of rows, so a 50 MP photo is never copied whole. What `run` compares to tell the images it left
    unchanged (no noise found) from those it cleaned; a JPEG counts as unchanged when its decoded values are, even
    though writing it again encodes them anew.
    """
    digest = hashlib.blake2b(f"{image.mode} {image.size}".encode(), digest_size=16)
    width, height = image.size
    for top in range(0, height, _ROWS_PER_BAND):
        digest.update(image.crop((0, top, width, min(height, top + _ROWS_PER_BAND))).tobytes())
    return digest.digest()


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path} cannot be opened ({os_error_reason(exc)}). Check that the path is right.") from exc
    if not path.is_file():
        raise ImageError(f"{path} is not a file. Give an image file or a folder of images.")
    if size == 0:
        raise ImageError(f"{path} is empty (0 bytes), perhaps an unfinished copy or download. Copy it again.")


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path} is larger than Pillow's safety limit of {Image.MAX_IMAGE_PIXELS} pixels "
                         f"({exc}). If you trust the file, split it into smaller images.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path} is not an image Pillow can read. Remove it from the folder or convert it to "
                         "PNG, JPEG, TIFF, BMP or WebP.") from exc
    except OSError as exc:
        raise ImageError(f"{path} cannot be opened ({os_error_reason(exc)}). Check its permissions.") from exc


def _frame_count(image: Image.Image, path: Path) -> int:
    # Counting pages reads every page header (TIFF), so a damaged later page fails here, not in _load.
    try:
        return getattr(image, "n_frames", 1)
    except _CORRUPT as exc:
        raise ImageError(f"{path} is truncated or corrupt ({exc}). Copy or export it again from the "
                         "original.") from exc


def _load(image: Image.Image, path: Path) -> None:
    # A full decode here finds truncation and corruption now, not halfway through writing the output.
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path} is larger than Pillow's safety limit ({exc}). If you trust the file, split it "
                         "into smaller images.") from exc
    except _CORRUPT as exc:
        raise ImageError(f"{path} is truncated or corrupt ({exc}). Copy or export it again from the "
                         "original.") from exc


def image_channels(image: Image.Image, path: Path | str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Colour pixels as float32 HxWxC in [0, 1], the untouched alpha, and the CMYK black plate of a decoded image;
    `path` names it in errors."""
    mode = image.mode
    if mode in ("P", "PA"):
        return image_channels(image.convert("RGBA" if image.has_transparency_data else "RGB"), path)
    if mode == "CMYK":
        return _cmyk_to_rgb(np.asarray(image)), None, np.asarray(image)[..., 3].copy()
    if mode.startswith("I;16"):
        return to_float(np.asarray(image).astype(np.uint16)), None, None
    if mode == "1":
        return to_float(np.asarray(image.convert("L"))), None, None
    if mode not in _SCALE:
        raise ImageError(f"{path} has the colour mode {mode}, which denoise does not support. Convert it to RGB or "
                         "grayscale (L) first.")
    if mode in ("L", "RGB"):
        return _float_by_bands(image), None, None
    array = np.asarray(image)
    if mode in ("I", "F"):
        _check_range(array, path)
        return (array.astype(np.float32) / np.float32(_SCALE[mode]))[..., None], None, None
    if mode in ("LA", "RGBA"):
        return to_float(array[..., :-1]), array[..., -1].copy(), None
    return to_float(array), None, None


def _float_by_bands(image: Image.Image) -> np.ndarray:
    """An 8-bit L or RGB image as float32 HxWxC, converted a band of rows at a time.

    np.asarray(image) would first copy every pixel as uint8: 150 MB more at the peak for a 50 MP photo.
    """
    width, height = image.size
    out = np.empty((height, width, len(image.getbands())), np.float32)
    for top in range(0, height, _ROWS_PER_BAND):
        band = np.asarray(image.crop((0, top, width, min(height, top + _ROWS_PER_BAND))))
        out[top : top + len(band)] = to_float(band)
    return out


def _check_range(array: np.ndarray, path: Path) -> None:
    high = 65535 if array.dtype.kind in "iu" else 1.0
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > high:
        raise ImageError(f"{path} holds values outside 0..{high}, which denoise cannot map to [0, 1]. Convert it "
                         "to 16-bit or 8-bit grayscale first.")


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    # Pillow's own formula, computed in float so that writing back with the same black plate inverts it exactly.
    ink = cmyk.astype(np.float32) / np.float32(255)
    return (1 - ink[..., :3]) * (1 - ink[..., 3:])


def palette_of(image: Image.Image) -> Image.Image:
    """A 1x1 P image holding a palette image's palette, to map new colours back onto."""
    holder = Image.new("P", (1, 1))
    holder.putpalette(image.getpalette())
    return holder


def to_float(array: np.ndarray) -> np.ndarray:
    """An 8- or 16-bit HxW or HxWxC array as float32 HxWxC in [0, 1]."""
    array = np.asarray(array)
    scale = np.float32(65535 if array.dtype == np.uint16 else 255)
    # One float array, not a cast and then a quotient: on a 50 MP photo that is 600 MB less at the peak.
    values = np.divide(array, scale, dtype=np.float32)
    return values[..., None] if values.ndim == 2 else values


def to_integer(pixels: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """Float pixels in [0, 1] clipped and rounded to uint8 or uint16."""
    scale = np.iinfo(dtype).max
    out = np.empty(np.shape(pixels), dtype)
    # In bands of rows, so the float temporaries stay small however large the image is.
    for start in range(0, max(1, len(out)), _ROWS_PER_BAND):
        band = np.clip(pixels[start : start + _ROWS_PER_BAND], 0.0, 1.0, dtype=np.result_type(pixels, np.float32))
        band *= scale  # in place: a 12 MP photo spends a third of its writing time here otherwise
        band += 0.5
        out[start : start + _ROWS_PER_BAND] = np.floor(band, out=band)
    return out


def array_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] as uint8, clipped and rounded."""
    return to_integer(pixels, np.uint8)


def _save_options(image: Image.Image, path: Path) -> dict:
    """Keyword arguments for Image.save that keep this file's metadata and encoding."""
    fmt = image.format
    options = {key: image.info[key] for key in ("icc_profile", "dpi") if image.info.get(key)}
    if fmt in ("JPEG", "PNG", "WEBP"):
        # The EXIF block is copied byte for byte, orientation tag included: the stored pixels are denoised
        # unrotated, so viewers apply the same rotation to the output as to the input.
        options.update({key: image.info[key] for key in ("exif", "xmp") if image.info.get(key)})
    if fmt == "JPEG":
        options.update(_jpeg_options(image))
    elif fmt == "PNG" and getattr(image, "text", None):
        options["pnginfo"] = _png_text(image.text)
    elif fmt == "TIFF":
        options.update(_tiff_options(image))
    elif fmt == "WEBP":
        options.update({"lossless": True} if _webp_is_lossless(path) else {"quality": WEBP_QUALITY})
    return options


def _jpeg_options(image: Image.Image) -> dict:
    options = {"quality": JPEG_QUALITY}
    sampling = JpegImagePlugin.get_sampling(image)
    if sampling >= 0:
        options["subsampling"] = sampling
    if image.info.get("progressive"):
        options["progressive"] = True
    if image.info.get("comment"):
        options["comment"] = image.info["comment"]
    return options


def _png_text(text: dict) -> PngImagePlugin.PngInfo:
    chunks = PngImagePlugin.PngInfo()
    for key, value in text.items():
        chunks.add_text(key, value)  # iTXt values and non-Latin-1 text become iTXt chunks
    return chunks


def _tiff_options(image: Image.Image) -> dict:
    # Pillow has already applied (and removed) a TIFF orientation tag on load, so the pixels here are upright.
    exif = image.getexif()
    for tag in [tag for tag in exif if tag in _TIFF_LAYOUT_TAGS]:
        del exif[tag]
    options = {"exif": exif} if len(exif) else {}
    compression = image.info.get("compression")
    if compression and compression != "raw":
        options["compression"] = compression
    return options


def _webp_is_lossless(path: Path) -> bool:
    # Pillow does not say whether a WebP was lossless; the first image chunk (VP8L vs VP8) does.
    with open(path, "rb") as file:
        head = file.read(4096)
    offset = 12
    while offset + 8 <= len(head):
        chunk = head[offset:offset + 4]
        if chunk in (b"VP8L", b"VP8 "):
            return chunk == b"VP8L"
        length = int.from_bytes(head[offset + 4:offset + 8], "little")
        offset += 8 + length + (length & 1)
    return False


def save_image(loaded: LoadedImage, pixels: np.ndarray, dest: str | os.PathLike,
               before_replace: Callable[[os.stat_result], None] | None = None) -> bool:
    """Write new colour pixels with the untouched alpha in the original mode, format and metadata, atomically.

    before_replace: see files.write_atomically (the in-place journal records the new file's identity there).
    Returns whether any stored value differs from the file read (see fingerprint).
    """
    dest = Path(dest)
    expected = loaded.pixels.shape
    if np.shape(pixels) != expected:
        raise ImageError(f"Cannot write {dest}: got pixels of shape {np.shape(pixels)} for {loaded.path}, which "
                         f"has shape {expected}. This is a bug in the denoiser; please report it.")
    image = to_pillow(loaded, np.asarray(pixels, dtype=np.float32))
    write_atomically(dest, lambda file: image.save(file, format=loaded.format, **loaded.info), before_replace)
    return fingerprint(image) != loaded.fingerprint


def to_pillow(loaded: LoadedImage, pixels: np.ndarray) -> Image.Image:
    """A Pillow image in the original mode (or RGBA for a transparent palette) from new colour pixels."""
    mode = loaded.mode
    if mode == "CMYK":
        return Image.fromarray(_rgb_to_cmyk(pixels, loaded.black), "CMYK")
    if mode == "P" and loaded.palette is not None:
        return _onto_palette(array_to_uint8(pixels), loaded.palette)
    if mode.startswith("I;16"):
        return Image.fromarray(to_integer(pixels[..., 0], np.uint16))
    if mode == "I":
        return Image.fromarray(to_integer(pixels[..., 0], np.uint16).astype(np.int32))
    if mode == "F":
        return Image.fromarray(np.clip(pixels[..., 0], 0.0, 1.0).astype(np.float32))
    if mode == "1":
        return Image.fromarray(pixels[..., 0] >= 0.5)
    if loaded.alpha is None and mode in ("L", "RGB"):
        return _pillow_by_bands(pixels, mode)
    colour = array_to_uint8(pixels)
    if loaded.alpha is not None:
        return Image.fromarray(np.concatenate([colour, loaded.alpha[..., None]], axis=-1))
    return Image.fromarray(colour[..., 0] if colour.shape[-1] == 1 else colour)


def _pillow_by_bands(pixels: np.ndarray, mode: str) -> Image.Image:
    """An 8-bit L or RGB Pillow image from float pixels, a band of rows at a time (no full-size uint8 copy)."""
    height, width = pixels.shape[:2]
    image = Image.new(mode, (width, height))
    for top in range(0, height, _ROWS_PER_BAND):
        band = array_to_uint8(pixels[top : top + _ROWS_PER_BAND])
        image.paste(Image.fromarray(band[..., 0] if mode == "L" else band), (0, top))
    return image


def _onto_palette(rgb: np.ndarray, palette: Image.Image) -> Image.Image:
    """Colours that are palette entries get their own entry; the others Pillow's nearest entry, undithered."""
    # Pillow's nearest-colour search works on cells of 4 levels per channel, so entries one step apart (common in
    # scanned or hand-made palettes) would collapse into one; exact matches are therefore looked up here.
    nearest = np.asarray(Image.fromarray(rgb).quantize(palette=palette, dither=Image.Dither.NONE))
    entries = np.asarray(palette.getpalette("RGB"), np.uint8).reshape(-1, 3)
    keys, first = np.unique(_colour_keys(entries), return_index=True)
    wanted = _colour_keys(rgb)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    indices = np.where(keys[at] == wanted, first[at], nearest).astype(np.uint8)
    image = Image.frombytes("P", (rgb.shape[1], rgb.shape[0]), indices.tobytes())
    image.putpalette(palette.getpalette("RGB"))
    return image


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _rgb_to_cmyk(pixels: np.ndarray, black: np.ndarray) -> np.ndarray:
    # Keep the original black plate and solve Pillow's formula for C, M and Y: rebuilding CMYK with no black (as
    # Pillow's RGB->CMYK does) would turn black text into a three-ink black on the press.
    room = 1 - black.astype(np.float32)[..., None] / np.float32(255)
    cmy = 1 - np.divide(np.clip(pixels, 0, 1), room, out=np.ones_like(pixels), where=room > 0)
    return np.concatenate([to_integer(cmy), black[..., None]], axis=-1)


def save_array(pixels: np.ndarray, dest: str | os.PathLike) -> None:
    """Write a float HxWxC array in [0, 1] (C = 1 or 3) as an 8-bit image, its format taken from the suffix."""
    dest = Path(dest)
    fmt = Image.registered_extensions().get(dest.suffix.lower())
    if fmt is None:
        raise ImageError(f"Cannot write {dest}: unknown image suffix. Use one of {', '.join(sorted(IMAGE_SUFFIXES))}.")
    colour = array_to_uint8(np.asarray(pixels, dtype=np.float32))
    image = Image.fromarray(colour[..., 0] if colour.ndim == 3 and colour.shape[-1] == 1 else colour)
    write_atomically(dest, lambda file: image.save(file, format=fmt))
