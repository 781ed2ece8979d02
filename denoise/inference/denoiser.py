"""Array in, array out: runs a model on images of any size, padding, tiling and batching as needed.

Large images are cut into tiles whose cores are aligned to the model's downsampling grid and that carry a margin of
context on every side; only the cores are kept. With a margin wider than the model's effective receptive field
the stitched result matches whole-image inference, so no seam can be seen, while memory stays bounded by the tile
size instead of the image size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from denoise.inference.colour import from_opponent, noise_sigma, residual_stride, to_opponent, unclip
from denoise.noise.detection import (
    detect_noise_kind,
    impulses_hit_whole_pixels,
    is_extreme,
    whole_extreme_pixels,
)
from denoise.errors import ModelError, NoiseSpecError
from denoise.inference.impulses import content_extremes, protect
from denoise.nn.architectures import (
    fixed_size,
    is_impulse_model,
    model_channels,
    size_multiple,
    with_bfloat16_compute,
)
from denoise.noise.specs import GAUSSIAN, parse_noise

DEFAULT_TILE = 1024  # core size in pixels; a 1024 + 2*64 tile of the default model needs a few hundred MB
# bfloat16 convolutions (oneDNN) need more memory per pixel: a 50 MP photo peaked at 2328 MiB with 1024 px tiles
# against 1975 MiB in float32, and at 1999-2005 MiB with 768 px tiles (README, "Performance").
BFLOAT16_TILE = 768
DEFAULT_MARGIN = 64
# Pixels per model call: one default tile (1152 x 1152 with its margins), or many small images at once. The model
# needs about 100 bytes of activations per pixel, so this is what keeps a run of big photos under 2 GB.
MAX_BATCH_PIXELS = 1_400_000
COLOUR_SPACES = ("rgb", "opponent")
# A self-ensemble averages the model over up to 8 flips and transposes of each image (the symmetries of a square),
# one model run each. The identity and the transpose come first: those two give most of the gain (CSet5 with the
# colour default, sigma 15 / 25 / 50: +0.10 / +0.09 / +0.09 dB with 2, +0.16 / +0.14 / +0.16 with 8;
# docs/model-search.md, stop 11).
MAX_ENSEMBLE = 8
BLIND_MAX_LOW_SIGMA = 5.0  # a Gaussian model trained from this sigma (or less) up to some higher one is "blind"


@dataclass(frozen=True)
class Window:
    """One tile: the region fed to the model (outer) and the part of its output that is kept (core)."""

    outer: tuple[slice, slice]
    core: tuple[slice, slice]  # in image coordinates
    core_in_outer: tuple[slice, slice]


class Denoiser:
    """Runs one Keras model on lists of float32 HxWxC images in [0, 1], of any size and 1 or 3 channels."""

    def __init__(self, model, *, tile: int | None = None, margin: int = DEFAULT_MARGIN,
                 max_batch_pixels: int = MAX_BATCH_PIXELS, reuse_input: bool = False, precision: str = "float32",
                 colour_space: str = "rgb", ensemble: int = 1):
        """colour_space="opponent": a gray Gaussian model cleans colour images in an opponent colour space
        (colour.py) instead of channel by channel; only for blind models (colour_space_for).
        ensemble: average the outputs of this many orientations of each image (1-8; N times the time)."""
        import tensorflow as tf

        from denoise.runtime import resolve_precision

        self.precision = resolve_precision(precision)
        if self.precision == "bfloat16":
            try:
                model = with_bfloat16_compute(model)
            except (ValueError, TypeError, KeyError, NotImplementedError):
                self.precision = "float32"  # a model Keras cannot rebuild from its config runs as it is
        self.model = model
        self.max_batch_pixels = max(1, max_batch_pixels)
        # A caller that owns its arrays (denoise run) lets a lone large image be cleaned in place, band by band,
        # instead of beside a second full-size float copy: on a 50 MP colour photo that saves about 500 MB.
        self.reuse_input = reuse_input
        self.channels = model_channels(model)
        self.impulse = is_impulse_model(model)
        self.fixed_size = fixed_size(model)
        self.multiple = size_multiple(model)
        if not 1 <= ensemble <= MAX_ENSEMBLE:
            raise ValueError(f"ensemble must be from 1 to {MAX_ENSEMBLE}, not {ensemble}")
        self.ensemble = ensemble
        if colour_space not in COLOUR_SPACES:
            raise ValueError(f"colour_space must be one of {COLOUR_SPACES}, not {colour_space!r}")
        self.opponent = colour_space == "opponent" and self.channels == 1 and not self.impulse
        tile = tile or (BFLOAT16_TILE if self.precision == "bfloat16" else DEFAULT_TILE)
        self.tile = _round_up(max(tile, self.multiple), self.multiple)
        self.margin = _round_up(margin, self.multiple)
        # One traced graph per input shape; reduce_retracing keeps the number of traces small for mixed sizes.
        self._predict = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Denoise each image; images of the same shape are run together in batches."""
        if self.reuse_input and len(images) == 1 and self._owned_colour_for_gray_model(images[0]):
            return [self._clean_channels_in_place(images[0])]
        planes, owners = self._split_channels(images)
        results = self._run_planes(planes, in_place=self.reuse_input and len(images) == 1)
        return [self._merge_channels(image, [results[i] for i in owners[k]]) for k, image in enumerate(images)]

    def _owned_colour_for_gray_model(self, image) -> bool:
        return (self.channels == 1 and isinstance(image, np.ndarray) and image.dtype == np.float32
                and image.ndim == 3 and image.shape[-1] > 1 and image.flags.writeable)

    def _clean_channels_in_place(self, image: np.ndarray) -> np.ndarray:
        """A gray model on one colour image we may overwrite: a channel at a time, so one plane copy at most."""
        whole = self._whole_impulse_pixels(image)
        opponent = self._in_opponent_space(image)
        if opponent:
            to_opponent(image, out=image)
            stride = residual_stride(*image.shape[:2])
            samples = image[::stride, ::stride].copy()  # some of the noisy planes, to measure the noise on
        for channel in range(image.shape[-1]):
            plane = np.ascontiguousarray(image[..., channel : channel + 1])
            clean = None if whole is None else is_extreme(plane[..., 0]) & ~whole
            kept = None if clean is None else plane[..., 0][clean]  # the run may overwrite the plane
            (result,) = self._run_planes([plane], in_place=True)
            image[..., channel : channel + 1] = result
            if clean is not None:
                image[..., channel][clean] = kept
        if opponent:
            self._back_from_opponent(image, samples, stride)
        return np.clip(image, 0.0, 1.0, out=image)

    def _in_opponent_space(self, image: np.ndarray) -> bool:
        return self.opponent and image.shape[-1] == 3

    @staticmethod
    def _back_from_opponent(denoised: np.ndarray, noisy_samples: np.ndarray, stride: int) -> None:
        """Opponent planes the model cleaned back to RGB, in place, with the clipping bias undone (colour.py).
        noisy_samples: the noisy opponent planes at every stride-th pixel of every stride-th row."""
        sigma = noise_sigma(noisy_samples, denoised[::stride, ::stride])
        unclip(from_opponent(denoised, out=denoised), sigma)

    def _whole_impulse_pixels(self, image: np.ndarray) -> np.ndarray | None:
        """For a gray impulse model on a colour image whose impulses hit whole pixels: the pixels black or white in
        every channel. A black or white value anywhere else is clean, and is put back after the model (which
        cannot tell, one channel at a time). None where that does not apply."""
        if not (self.impulse and self.channels == 1 and image.shape[-1] > 1 and impulses_hit_whole_pixels(image)):
            return None
        return whole_extreme_pixels(image)

    # Channel handling: a grayscale model cleans each colour channel on its own (or, colour_space="opponent", each
    # plane of an opponent colour space); a colour model gets gray images repeated into three channels and its
    # output averaged back.
    def _split_channels(self, images):
        planes, owners = [], []
        for image in images:
            image = _as_hwc(image)
            if image.shape[-1] == self.channels:
                parts = [image]
            elif self._in_opponent_space(image):
                opponent = to_opponent(image)
                parts = [opponent[..., c : c + 1] for c in range(3)]
            elif self.channels == 1:
                parts = [image[..., c : c + 1] for c in range(image.shape[-1])]
            elif image.shape[-1] == 1:
                parts = [np.repeat(image, self.channels, axis=-1)]
            else:
                raise ModelError(f"A {self.channels}-channel model cannot clean {image.shape[-1]}-channel images.")
            owners.append(list(range(len(planes), len(planes) + len(parts))))
            planes.extend(np.ascontiguousarray(part, dtype=np.float32) for part in parts)
        return planes, owners

    def _merge_channels(self, image, outputs):
        image = _as_hwc(image)
        if len(outputs) > 1 and self._in_opponent_space(image):
            merged = np.concatenate(outputs, axis=-1)
            stride = residual_stride(*image.shape[:2])
            self._back_from_opponent(merged, to_opponent(image[::stride, ::stride]), stride)
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

    def _run_planes(self, planes: list[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
        """The model's output for each plane, averaged over self.ensemble orientations of it.

        An impulse model gets the black and white content of mostly black and white planes (digits, scans, line
        art) as known values, and that content comes out exactly as it went in (impulses.content_extremes).
        """
        contents = [content_extremes(plane[..., 0]) if self.impulse and plane.shape[-1] == 1 else None
                    for plane in planes]
        if not any(content is not None for content in contents):
            return self._run_planes_oriented(planes, in_place)
        originals = [plane[..., 0][content] if content is not None else None
                     for plane, content in zip(planes, contents)]
        planes = [plane if content is None else protect(plane, content[..., None])
                  for plane, content in zip(planes, contents)]
        results = self._run_planes_oriented(planes, in_place)
        for index, (content, original) in enumerate(zip(contents, originals)):
            if content is not None:
                if not results[index].flags.writeable:
                    results[index] = results[index].copy()
                results[index][..., 0][content] = original
        return results

    def _run_planes_oriented(self, planes: list[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
        if self.ensemble == 1:
            return self._run_planes_once(planes, in_place)
        totals = None
        for turn in range(1, self.ensemble):  # the identity last: that run may overwrite the input planes
            oriented = [np.ascontiguousarray(_orient(plane, turn)) for plane in planes]  # copies of our own
            outputs = [_orient_back(output, turn) for output in self._run_planes_once(oriented, in_place=True)]
            if totals is None:  # the first turn's outputs are ours (model outputs, or the copies cleaned in place)
                totals = [output if output.flags.writeable else output.astype(np.float32) for output in outputs]
            else:
                for total, output in zip(totals, outputs):
                    total += output
        results = self._run_planes_once(planes, in_place)
        for index, (total, result) in enumerate(zip(totals, results)):
            out = result if result.flags.writeable else total  # in place, the mean lands in the input's buffer
            np.add(result, total, out=out)
            out *= np.float32(1 / self.ensemble)
            results[index] = out
        return results

    def _run_planes_once(self, planes: list[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
        results: list[np.ndarray | None] = [None] * len(planes)
        groups = defaultdict(list)
        for index, plane in enumerate(planes):
            groups[plane.shape].append(index)
        for shape, indices in groups.items():
            if self._needs_tiling(shape):
                for index in indices:
                    results[index] = self._run_tiled(planes[index], in_place)
            else:
                outputs = self._run_same_size([planes[i] for i in indices])
                for index, output in zip(indices, outputs):
                    results[index] = output
        return results

    def _needs_tiling(self, shape) -> bool:
        return self.fixed_size is None and max(shape[:2]) > self.tile + 2 * self.margin

    def _run_same_size(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Pad a group of equally sized images to the model's grid, run them in memory-bounded batches, crop."""
        height, width = images[0].shape[:2]
        self._check_size(height, width)
        padded = [self._pad(image) for image in images]
        per_batch = max(1, self.max_batch_pixels // padded[0][..., 0].size)
        outputs = []
        for start in range(0, len(padded), per_batch):
            batch = np.stack(padded[start : start + per_batch])
            outputs.extend(np.asarray(self._predict(batch))[:, :height, :width, :])
        return outputs

    def _run_tiled(self, image: np.ndarray, in_place: bool = False) -> np.ndarray:
        """Clean tile by tile, one band of tile rows at a time; the image is never padded as a whole."""
        height, width = image.shape[:2]
        padded_h, padded_w = _round_up(height, self.multiple), _round_up(width, self.multiple)
        mirror = padded_h - height < height and padded_w - width < width  # the same choice as _pad
        rows, cols = _source_indices(height, padded_h, mirror), _source_indices(width, padded_w, mirror)
        windows = plan_windows(padded_h, padded_w, self.tile, self.margin)
        # In place, a band's output may only replace its input once the next band, whose margin reads it, is done;
        # tiles of at least two grid cells keep the mirrored bottom rows out of committed bands too.
        in_place = in_place and self.margin <= self.tile and self.tile >= 2 * self.multiple and image.flags.writeable
        output = image if in_place else np.empty_like(image)
        pending = None
        for band in _bands(windows):
            done = self._run_windows(image, rows, cols, band)
            if pending is not None:
                _commit(output, *pending, height, width)
            pending = (band, done)
        _commit(output, *pending, height, width)
        return output

    def _run_windows(self, image, rows, cols, windows: list[Window]) -> list[np.ndarray]:
        """The kept core of every window, the model run on batches of same-shape tiles."""
        results: list[np.ndarray | None] = [None] * len(windows)
        by_shape = defaultdict(list)
        for index, window in enumerate(windows):
            by_shape[(window.outer[0].stop - window.outer[0].start, window.outer[1].stop - window.outer[1].start)]\
                .append(index)
        for (tile_h, tile_w), indices in by_shape.items():
            per_batch = max(1, self.max_batch_pixels // (tile_h * tile_w))
            for start in range(0, len(indices), per_batch):
                chunk = indices[start : start + per_batch]
                tiles = [image[np.ix_(rows[windows[i].outer[0]], cols[windows[i].outer[1]])] for i in chunk]
                outputs = np.asarray(self._predict(np.stack(tiles)))
                for i, result in zip(chunk, outputs):
                    results[i] = result[windows[i].core_in_outer].copy()
        return results

    def _pad(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        pad_h, pad_w = _round_up(height, self.multiple) - height, _round_up(width, self.multiple) - width
        if not (pad_h or pad_w):
            return image
        # Mirror padding keeps image statistics at the border; tiny images fall back to repeating the edge.
        mode = "reflect" if pad_h < height and pad_w < width else "edge"
        return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)

    def _check_size(self, height: int, width: int) -> None:
        if self.fixed_size and (height, width) != self.fixed_size:
            raise ModelError(
                f"This model only takes {self.fixed_size[0]}x{self.fixed_size[1]} images (a dense autoencoder), "
                f"not {height}x{width}. Use a convolutional model (--arch unet) for other sizes."
            )


def plan_windows(height: int, width: int, tile: int, margin: int) -> list[Window]:
    """Tiles covering a height x width image: cores of `tile` pixels, each with up to `margin` pixels of context."""
    windows = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            oy0, ox0 = max(0, y0 - margin), max(0, x0 - margin)
            oy1, ox1 = min(height, y1 + margin), min(width, x1 + margin)
            windows.append(
                Window(
                    outer=(slice(oy0, oy1), slice(ox0, ox1)),
                    core=(slice(y0, y1), slice(x0, x1)),
                    core_in_outer=(slice(y0 - oy0, y1 - oy0), slice(x0 - ox0, x1 - ox0)),
                )
            )
    return windows


def _bands(windows: list[Window]) -> list[list[Window]]:
    """Windows grouped by their row of tiles, top to bottom (plan_windows lists them row by row)."""
    bands: dict[int, list[Window]] = {}
    for window in windows:
        bands.setdefault(window.core[0].start, []).append(window)
    return list(bands.values())


def _commit(output: np.ndarray, windows: list[Window], results: list[np.ndarray], height: int, width: int) -> None:
    for window, result in zip(windows, results):
        (ys, xs) = window.core
        if ys.start < height and xs.start < width:  # cores wholly in the grid padding are dropped
            output[ys.start : min(ys.stop, height), xs.start : min(xs.stop, width)] = \
                result[: height - ys.start, : width - xs.start]


def _source_indices(size: int, padded: int, mirror: bool) -> np.ndarray:
    """For each row (or column) of the image padded to `padded`, the image row it shows, as _pad would pad."""
    index = np.arange(padded)
    beyond = index >= size
    if mirror:
        index[beyond] = 2 * (size - 1) - index[beyond]
    else:
        index[beyond] = size - 1
    return index


def _orient(plane: np.ndarray, turn: int) -> np.ndarray:
    """Orientation `turn` (0-7) of an HxWxC plane, as a view: bit 0 transposes, bit 1 flips rows, bit 2 columns."""
    if turn & 2:
        plane = plane[::-1]
    if turn & 4:
        plane = plane[:, ::-1]
    return plane.transpose(1, 0, 2) if turn & 1 else plane


def _orient_back(plane: np.ndarray, turn: int) -> np.ndarray:
    """The inverse of _orient: transpose back first, then undo the flips (each its own inverse)."""
    if turn & 1:
        plane = plane.transpose(1, 0, 2)
    if turn & 4:
        plane = plane[:, ::-1]
    return plane[::-1] if turn & 2 else plane


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _as_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    return image[..., None] if image.ndim == 2 else image


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


def load_denoiser(path, **options) -> Denoiser:
    """A Denoiser over a model file, cleaning colour images in the colour space that suits the model."""
    from denoise.nn.architectures import load_model

    model, metadata = load_model(path)
    return Denoiser(model, colour_space=colour_space_for(metadata), **options)


class DefaultDenoiser:
    """Cleans each image with the shipped model for its kind of noise, told or detected (detection.detect_noise_kind).

    Each model is loaded the first time an image needs it, so a folder without impulse noise never loads that model.
    `kinds` counts the images cleaned per kind of noise, for the summary of a run.
    """

    def __init__(self, noise_kind: str | None = None, **options):
        from denoise.nn.model_files import DEFAULT_MODELS, default_model_path

        for kind, channels in DEFAULT_MODELS:  # a broken installation fails here, before any file is read
            default_model_path(channels, kind)
        self.noise_kind = noise_kind  # None: detect per image
        self.options = options
        self.kinds: dict[str, int] = defaultdict(int)
        self._by_path: dict = {}

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        from denoise.nn.model_files import default_model_path

        groups = defaultdict(list)  # model file -> indices of the images it cleans
        for index, image in enumerate(images):
            image = _as_hwc(image)
            kind = self.noise_kind or detect_noise_kind(image)
            self.kinds[kind] += 1
            groups[default_model_path(image.shape[-1], kind)].append(index)
        results: list[np.ndarray | None] = [None] * len(images)
        for path, indices in groups.items():
            for index, output in zip(indices, self._denoiser(path)([images[i] for i in indices])):
                results[index] = output
        return results

    def _denoiser(self, path) -> Denoiser:
        if path not in self._by_path:
            self._by_path[path] = load_denoiser(path, **self.options)
        return self._by_path[path]
