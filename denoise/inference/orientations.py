"""The flip ensemble: a model averaged over up to 8 flips and transposes of each image (the symmetries of a square).

The identity and the transpose come first: those two give most of the gain (CSet5 with the colour default, sigma
15 / 25 / 50: +0.10 / +0.09 / +0.09 dB with 2, +0.16 / +0.14 / +0.16 with 8, from `python benchmarks/quality.py
--clean CSET5 --noise gaussian:15 --noise gaussian:25 --noise gaussian:50 --ensemble 1 --ensemble 2 --ensemble 8`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RunPlanes = Callable[[list[np.ndarray], bool], list[np.ndarray]]  # (planes, in_place) -> outputs


def average_over_orientations(planes: list[np.ndarray], run: RunPlanes, count: int,
                              in_place: bool = False) -> list[np.ndarray]:
    """The mean of `run` over `count` orientations of each HxWxC plane; in_place lets the last run reuse the planes."""
    if count == 1:
        return run(planes, in_place)
    totals = None
    for turn in range(1, count):  # the identity last: that run may overwrite the input planes
        oriented = [np.ascontiguousarray(orient(plane, turn)) for plane in planes]  # copies of our own
        outputs = [orient_back(output, turn) for output in run(oriented, True)]
        if totals is None:  # the first turn's outputs are ours (model outputs, or the copies cleaned in place)
            totals = [output if output.flags.writeable else output.astype(np.float32) for output in outputs]
        else:
            for total, output in zip(totals, outputs):
                total += output
    results = run(planes, in_place)
    for index, (total, result) in enumerate(zip(totals, results)):
        out = result if result.flags.writeable else total  # in place, the mean lands in the input's buffer
        np.add(result, total, out=out)
        out *= np.float32(1 / count)
        results[index] = out
    return results


def orient(plane: np.ndarray, turn: int) -> np.ndarray:
    """Orientation `turn` (0-7) of an HxWxC plane, as a view: bit 0 transposes, bit 1 flips rows, bit 2 columns."""
    if turn & 2:
        plane = plane[::-1]
    if turn & 4:
        plane = plane[:, ::-1]
    return plane.transpose(1, 0, 2) if turn & 1 else plane


def orient_back(plane: np.ndarray, turn: int) -> np.ndarray:
    """The inverse of orient: transpose back first, then undo the flips (each its own inverse)."""
    if turn & 1:
        plane = plane.transpose(1, 0, 2)
    if turn & 4:
        plane = plane[:, ::-1]
    return plane[::-1] if turn & 2 else plane
