"""The small pictures of a before-and-after report, made from pixels already in memory while a run goes on.

For each image: a thumbnail of the input and of the output, a map of what was removed, and full-resolution crops
of the input and the output where the output changed most and least. Only these small files are written, so a run
of 1,000 photos gets a light report without a second decode of any input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from denoise.io.files import write_atomically
from denoise.io.images import array_to_uint8

THUMBNAIL = 320  # long side of the index's thumbnails, in pixels
VIEW = 768  # long side of the side-by-side view on an image's own page
CROP = 64  # side of the zoomed crops, in image pixels (shown enlarged)
# The map of what was removed shows input - output around mid-gray, its contrast raised so that MAP_SPREAD times
# the image's RMS change reaches black or white (but at most MAP_MAX_GAIN times): noise shows as grain,
# removed detail as edges.
MAP_SPREAD = 2.5
MAP_MAX_GAIN = 32.0


@dataclass
class ImageAssets:
    """What the report shows of one image: file names (relative to the report folder) and measures of change."""

    files: dict[str, str] = field(default_factory=dict)  # "before", "after", "map", "view-before", ...
    rms_change: float = 0.0  # root mean square of output - input, in levels of 255
    max_change: float = 0.0  # the largest change of any value, in levels of 255
    crops: dict[str, tuple[int, int]] = field(default_factory=dict)  # "most" / "least" -> (x, y) of the crop
    map_gain: float = 1.0  # how much the map of what was removed raises its contrast


def make_assets(before: np.ndarray, after: np.ndarray, folder: Path, stem: str) -> ImageAssets:
    """Write the pictures of one image into folder, named stem-*; before is uint8 HxWxC, after float in [0, 1]."""
    after8 = array_to_uint8(np.asarray(after, np.float32))
    change = np.abs(after8.astype(np.int16) - before.astype(np.int16)).mean(axis=-1, dtype=np.float32)
    assets = ImageAssets(rms_change=float(np.sqrt(np.mean(np.square(after8.astype(np.float32) - before)))),
                         max_change=float(change.max()) if change.size else 0.0)
    for name, pixels, side in (("before", before, THUMBNAIL), ("after", after8, THUMBNAIL),
                               ("view-before", before, VIEW), ("view-after", after8, VIEW)):
        assets.files[name] = _save(_shrunk(pixels, side), folder, f"{stem}-{name}.jpg")
    assets.map_gain = min(MAP_MAX_GAIN, 127.5 / max(MAP_SPREAD * assets.rms_change, 1e-6))
    assets.files["map"] = _save(_removed_map(before, after8, VIEW, assets.map_gain), folder, f"{stem}-map.png")
    for which, (x, y) in _crop_corners(change).items():
        assets.crops[which] = (x, y)
        for side, pixels in (("before", before), ("after", after8)):
            crop = pixels[y : y + CROP, x : x + CROP]
            assets.files[f"{which}-{side}"] = _save(crop, folder, f"{stem}-{which}-{side}.png")
    return assets


def _shrunk(pixels: np.ndarray, side: int) -> np.ndarray:
    """A copy at most `side` pixels on its long side: strided first (cheap on a 50 MP photo), then Pillow's filter."""
    height, width = pixels.shape[:2]
    step = max(1, max(height, width) // (2 * side))
    image = _pillow(pixels[::step, ::step])
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _removed_map(before: np.ndarray, after: np.ndarray, side: int, gain: float) -> np.ndarray:
    """input - output at most `side` pixels on its long side, around mid-gray, its contrast raised by gain."""
    removed = _shrunk_float(before, side) - _shrunk_float(after, side)
    return np.clip(127.5 + gain * removed, 0, 255).round().astype(np.uint8)


def _shrunk_float(pixels: np.ndarray, side: int) -> np.ndarray:
    """Strided down to at most `side` pixels a side (no filter: a filter would average the noise away)."""
    step = max(1, -(-max(pixels.shape[:2]) // side))
    return pixels[::step, ::step].astype(np.float32)


def _crop_corners(change: np.ndarray) -> dict[str, tuple[int, int]]:
    """Top-left corners of the CROP x CROP windows (on a grid of CROP) with the most and the least mean change."""
    height, width = change.shape
    side = min(CROP, height, width)
    rows, cols = height // side, width // side
    blocks = change[: rows * side, : cols * side].reshape(rows, side, cols, side).mean(axis=(1, 3))
    most, least = np.unravel_index(np.argmax(blocks), blocks.shape), np.unravel_index(np.argmin(blocks), blocks.shape)
    return {"most": (int(most[1] * side), int(most[0] * side)), "least": (int(least[1] * side), int(least[0] * side))}


def _pillow(pixels: np.ndarray) -> Image.Image:
    pixels = np.ascontiguousarray(pixels)
    return Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels)


def _save(pixels: np.ndarray, folder: Path, name: str) -> str:
    image = _pillow(pixels)
    options = {"quality": 90} if name.endswith(".jpg") else {}
    write_atomically(folder / name, lambda file: image.save(file, format="JPEG" if name.endswith(".jpg") else "PNG",
                                                             **options))
    return f"{folder.name}/{name}"
