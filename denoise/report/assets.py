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

from denoise.io.images import array_to_uint8

THUMBNAIL = 320  # long side of the index's thumbnails, in pixels
VIEW = 640  # long side of the side-by-side view on an image's own page
MAP = 384  # long side of the map of what was removed (noise compresses badly: a larger map weighs more than a view)
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
    """Write the pictures of one image into folder, named stem-*; before is uint8 HxWxC, after float in [0, 1].

    The change is measured on every step-th pixel of every step-th row (about a megapixel or more), so a 50 MP
    photo costs little more than a small one; the crops and views are cut from the full images.
    """
    folder.mkdir(parents=True, exist_ok=True)
    step = _sample_step(*before.shape[:2])
    sampled_before, sampled_after = before[::step, ::step], array_to_uint8(after[::step, ::step])
    difference = sampled_after.astype(np.float32) - sampled_before
    change = np.abs(difference).mean(axis=-1)
    assets = ImageAssets(rms_change=float(np.sqrt(np.mean(np.square(difference)))), max_change=float(change.max()))
    for name, pixels, side in (("before", before, THUMBNAIL), ("after", after, THUMBNAIL),
                               ("view-before", before, VIEW), ("view-after", after, VIEW)):
        assets.files[name] = _save(_shrunk(pixels, side), folder, f"{stem}-{name}.jpg")
    assets.map_gain = min(MAP_MAX_GAIN, 127.5 / max(MAP_SPREAD * assets.rms_change, 1e-6))
    assets.files["map"] = _save(_removed_map(before, after, MAP, assets.map_gain), folder, f"{stem}-map.jpg")
    for which, (x, y) in _crop_corners(change, step).items():
        assets.crops[which] = (x, y)
        for side, pixels in (("before", before), ("after", after)):
            crop = _as_uint8(pixels[y : y + CROP, x : x + CROP])
            assets.files[f"{which}-{side}"] = _save(crop, folder, f"{stem}-{which}-{side}.png")
    return assets


def _sample_step(height: int, width: int) -> int:
    """The largest power of two up to CROP / 8 that still samples about a megapixel of the image."""
    step = 1
    while step < CROP // 8 and height * width / (2 * step) ** 2 >= 1_000_000:
        step *= 2
    return step


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    return pixels if pixels.dtype == np.uint8 else array_to_uint8(np.asarray(pixels, np.float32))


def _shrunk(pixels: np.ndarray, side: int) -> np.ndarray:
    """A copy at most `side` pixels on its long side: strided first (cheap on a 50 MP photo), then Pillow's filter."""
    height, width = pixels.shape[:2]
    step = max(1, max(height, width) // (2 * side))
    image = _pillow(_as_uint8(pixels[::step, ::step]))
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _removed_map(before: np.ndarray, after: np.ndarray, side: int, gain: float) -> np.ndarray:
    """input - output at most `side` pixels on its long side, around mid-gray, its contrast raised by gain."""
    step = max(1, -(-max(before.shape[:2]) // side))  # strided, not filtered: a filter would average the noise away
    removed = before[::step, ::step].astype(np.float32) - _as_uint8(after[::step, ::step])
    return np.clip(127.5 + gain * removed, 0, 255).round().astype(np.uint8)


def _crop_corners(change: np.ndarray, step: int) -> dict[str, tuple[int, int]]:
    """Top-left corners (in full-size pixels) of the CROP x CROP windows, on a grid of CROP, with the most and the
    least mean change; change is sampled at every step-th pixel."""
    height, width = change.shape
    side = max(1, min(CROP // step, height, width))
    rows, cols = height // side, width // side
    blocks = change[: rows * side, : cols * side].reshape(rows, side, cols, side).mean(axis=(1, 3))
    corners = {}
    for which, index in (("most", np.argmax(blocks)), ("least", np.argmin(blocks))):
        row, col = np.unravel_index(index, blocks.shape)
        corners[which] = (int(col * side * step), int(row * side * step))
    return corners


def _pillow(pixels: np.ndarray) -> Image.Image:
    pixels = np.ascontiguousarray(pixels)
    return Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels)


def _save(pixels: np.ndarray, folder: Path, name: str) -> str:
    # A plain save, not an atomic one: the report's pictures are only referred to once its index is written.
    _pillow(pixels).save(folder / name, **({"quality": 85} if name.endswith(".jpg") else {}))
    return f"{folder.name}/{name}"
