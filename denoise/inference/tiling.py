"""Large images in tiles: cores aligned to the model's grid, each with a margin of context; only cores are kept.

With a margin wider than the model's effective receptive field the stitched result matches whole-image inference,
so no seam can be seen, while memory stays bounded by the tile size instead of the image size. The image is never
padded as a whole: tiles read mirrored rows and columns through index arrays, one band of tile rows at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # an NHWC batch in, the model's NHWC output


@dataclass(frozen=True)
class Window:
    """One tile: the region fed to the model (outer) and the part of its output that is kept (core)."""

    outer: tuple[slice, slice]
    core: tuple[slice, slice]  # in image coordinates
    core_in_outer: tuple[slice, slice]


def plan_windows(height: int, width: int, tile: int, margin: int) -> list[Window]:
    """Tiles covering a height x width image: cores of `tile` pixels, each with at least `margin` pixels of context
    where the image has them, and every window of the same size (tile + 2 margin a side, or the image's side):
    a window at an edge reaches further inwards instead of shrinking. One window size means one input shape, so a
    runtime plans its buffers once (LiteRT re-planned them for every new shape, and its memory grew each time)."""
    windows = []
    for (oy0, oy1), (y0, y1) in _axis_windows(height, tile, margin):
        for (ox0, ox1), (x0, x1) in _axis_windows(width, tile, margin):
            windows.append(
                Window(
                    outer=(slice(oy0, oy1), slice(ox0, ox1)),
                    core=(slice(y0, y1), slice(x0, x1)),
                    core_in_outer=(slice(y0 - oy0, y1 - oy0), slice(x0 - ox0, x1 - ox0)),
                )
            )
    return windows


def _axis_windows(size: int, tile: int, margin: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """((outer start, stop), (core start, stop)) along one axis: equal outer lengths, shifted inwards at the ends."""
    length = min(size, tile + 2 * margin)
    spans = []
    for start in range(0, size, tile):
        outer_start = max(0, min(start - margin, size - length))
        spans.append(((outer_start, outer_start + length), (start, min(start + tile, size))))
    return spans


def run_tiled(image: np.ndarray, predict: Predict, *, tile: int, margin: int, multiple: int,
              max_batch_pixels: int, in_place: bool = False) -> np.ndarray:
    """The model's output for an HxWxC image, cleaned tile by tile, one band of tile rows at a time.

    tile and margin are multiples of `multiple`, the model's grid. in_place: the output may overwrite the image.
    """
    height, width = image.shape[:2]
    padded_h, padded_w = round_up(height, multiple), round_up(width, multiple)
    mirror = padded_h - height < height and padded_w - width < width  # the same choice as pad_to_multiple
    rows, cols = _source_indices(height, padded_h, mirror), _source_indices(width, padded_w, mirror)
    windows = plan_windows(padded_h, padded_w, tile, margin)
    # In place, a band's output may only replace its input once every band that reads it is done.
    in_place = in_place and margin <= tile and tile >= 2 * multiple and image.flags.writeable
    output = image if in_place else np.empty_like(image)
    bands = _bands(windows)
    # the first image row each band's windows read (mirrored rows included), and the first any later band reads
    reads_from = [min(int(rows[window.outer[0]].min()) for window in band) for band in bands]
    later_reads = [min(reads_from[index + 1 :], default=padded_h) for index in range(len(bands))]
    pending = []
    for index, band in enumerate(bands):
        pending.append((band, _run_windows(image, rows, cols, band, predict, max_batch_pixels)))
        # a band is written out once no later window reads its rows (the last band's window may reach up two)
        while pending and pending[0][0][0].core[0].stop <= later_reads[index]:
            _commit(output, *pending.pop(0), height, width)
    return output


def _run_windows(image, rows, cols, windows: list[Window], predict: Predict, max_batch_pixels: int):
    """The kept core of every window, the model run on batches of same-shape tiles."""
    results: list[np.ndarray | None] = [None] * len(windows)
    by_shape = defaultdict(list)
    for index, window in enumerate(windows):
        by_shape[(window.outer[0].stop - window.outer[0].start, window.outer[1].stop - window.outer[1].start)]\
            .append(index)
    for (tile_h, tile_w), indices in by_shape.items():
        per_batch = max(1, max_batch_pixels // (tile_h * tile_w))
        for start in range(0, len(indices), per_batch):
            chunk = indices[start : start + per_batch]
            tiles = [image[np.ix_(rows[windows[i].outer[0]], cols[windows[i].outer[1]])] for i in chunk]
            for i, result in zip(chunk, predict(np.stack(tiles))):
                results[i] = result[windows[i].core_in_outer].copy()
    return results


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
    """For each row (or column) of the image padded to `padded`, the image row it shows, as pad_to_multiple would."""
    index = np.arange(padded)
    beyond = index >= size
    if mirror:
        index[beyond] = 2 * (size - 1) - index[beyond]
    else:
        index[beyond] = size - 1
    return index


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """An HxWxC image padded at the bottom and right to multiples of `multiple` (itself when it fits)."""
    height, width = image.shape[:2]
    pad_h, pad_w = round_up(height, multiple) - height, round_up(width, multiple) - width
    if not (pad_h or pad_w):
        return image
    # Mirror padding keeps image statistics at the border; tiny images fall back to repeating the edge.
    mode = "reflect" if pad_h < height and pad_w < width else "edge"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
