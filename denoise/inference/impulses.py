"""Which pure black and white values of an image are its content, and which salt-and-pepper noise. NumPy only.

The impulse model (layers.FillImpulses, KeepUncorrupted) re-estimates every pure black or white value, which is
right for photos, where such values are rare, and ruins digits, scans and line art, which are mostly black and
white: held-out MNIST digits with 20% salt-and-pepper came out at 8.95 dB, below the noisy input's 10.2. Where
most of an image is black and white beyond what the noise explains, `content_extremes` marks the values that are
no lone impulse; the inference nudges those by one level before the model (so the model keeps them and reads
them as known context) and puts their exact values back after it. Photos are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np

from denoise.noise.detection import (
    EXTREME_HIGH,
    EXTREME_LOW,
    impulse_rate,
    is_extreme,
    isolated_extremes,
    neighbour_counts,
    probe_crops,
)

# Share of the pixels that are black or white beyond the impulses (extremes - 2 x impulse_rate) from which an
# image's black and white are taken for content. Measured: Set12 and samples/ with salt-and-pepper noise at most
# 0.11 (a photo with a clipped sky); digits, line art and binary text 0.34-0.97 with 0-50% noise.
CONTENT_MIN = 0.25
# A black (white) pixel with more black (white) neighbours than this share of lone impulses would have is
# content. Measured on generated digits, line art and binary text at 10-50% (benchmarks/impulse_content.py): 0.9
# is best on binary text at 10% (16.3 dB against 14.1), 0.97 on digits at 50% (14.1 against 13.3, under the
# adaptive median's 13.8); 0.995 loses binary text.
COVER = 0.97
NUDGE = 1.0 / 255.0  # content values go into the model one 8-bit level inside the range, so it keeps them


def content_extremes(plane: np.ndarray) -> np.ndarray | None:
    """HxW mask of the black and white values of a float HxW plane in [0, 1] that are content, not impulses.

    None where the plane is not mostly black and white beyond its noise (photos): there every black and white
    value is left to the model, as before. Elsewhere a black or white value is taken for an impulse only if it is
    isolated (far from the median of its 8 neighbours, as detection sees it) and has no more neighbours of its own
    value than salt-and-pepper noise of the measured rate gives 97% of its impulses; every other one is content.
    """
    extreme = is_extreme(plane)
    rate = impulse_rate(probe_crops(plane))
    if extreme.mean() - 2 * rate < CONTENT_MIN:
        return None
    most = _binomial_quantile(8, max(rate, 1e-3), COVER)
    low, high = plane <= EXTREME_LOW, plane >= EXTREME_HIGH
    few = (low & (neighbour_counts(low) <= most)) | (high & (neighbour_counts(high) <= most))
    return extreme & ~(few & isolated_extremes(plane))


def protect(plane: np.ndarray, content: np.ndarray) -> np.ndarray:
    """A copy of the plane with its content values moved one level off black and white (the model keeps those)."""
    nudged = plane.copy()
    nudged[content & (plane <= EXTREME_LOW)] = NUDGE
    nudged[content & (plane >= EXTREME_HIGH)] = 1.0 - NUDGE
    return nudged


def _binomial_quantile(trials: int, p: float, cover: float) -> int:
    """The smallest k with P(Binomial(trials, p) <= k) >= cover."""
    total = 0.0
    for k in range(trials + 1):
        total += comb(trials, k) * p**k * (1 - p) ** (trials - k)
        if total >= cover:
            return k
    return trials


def run_keeping_content(planes: list[np.ndarray], run: Callable[[list[np.ndarray], bool], list[np.ndarray]],
                        in_place: bool = False) -> list[np.ndarray]:
    """`run` (an impulse model) on HxWx1 planes, with each plane's black and white content kept exactly.

    The content goes into the model nudged (`protect`), so the model reads it as known context, and comes out as
    it went in. Planes without such content (photos) pass as they are.
    """
    contents = [content_extremes(plane[..., 0]) if plane.shape[-1] == 1 else None for plane in planes]
    if not any(content is not None for content in contents):
        return run(planes, in_place)
    originals = [plane[..., 0][content] if content is not None else None for plane, content in zip(planes, contents)]
    planes = [plane if content is None else protect(plane, content[..., None])
              for plane, content in zip(planes, contents)]
    results = run(planes, in_place)
    for index, (content, original) in enumerate(zip(contents, originals)):
        if content is not None:
            if not results[index].flags.writeable:
                results[index] = results[index].copy()
            results[index][..., 0][content] = original
    return results
