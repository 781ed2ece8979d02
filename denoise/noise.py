"""Noise specs ("gaussian:25", "gaussian:0-50", "salt-and-pepper:0.1") and seeded NumPy noise generators.

Images here are float32 arrays in [0, 1]. Gaussian sigma is given on the 0-255 scale, as in the literature. The
training pipeline draws the same kinds of noise with TensorFlow ops (see training.py); this module stays free of
TensorFlow so the CLI can parse specs without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from denoise.errors import NoiseSpecError

if TYPE_CHECKING:  # NumPy is imported where noise is made, so parsing a spec (the CLI's --help) stays instant
    import numpy as np

GAUSSIAN = "gaussian"
SALT_AND_PEPPER = "salt-and-pepper"
_ALIASES = {"gaussian": GAUSSIAN, "gauss": GAUSSIAN, "salt-and-pepper": SALT_AND_PEPPER, "sp": SALT_AND_PEPPER,
            "salt_and_pepper": SALT_AND_PEPPER, "impulse": SALT_AND_PEPPER}
_LIMITS = {GAUSSIAN: (0.0, 255.0), SALT_AND_PEPPER: (0.0, 1.0)}
EXAMPLES = "gaussian:25, gaussian:0-50, salt-and-pepper:0.1 or salt-and-pepper:0.05-0.3"


@dataclass(frozen=True)
class NoiseSpec:
    """A kind of noise and its level, fixed (low == high) or a range drawn uniformly per image for blind training.

    For Gaussian noise the level is sigma on the 0-255 scale; for salt-and-pepper it is the fraction of pixels hit.
    """

    kind: str
    low: float
    high: float

    @property
    def is_range(self) -> bool:
        return self.high > self.low

    def __str__(self) -> str:
        level = f"{self.low:g}" if not self.is_range else f"{self.low:g}-{self.high:g}"
        return f"{self.kind}:{level}"

    def with_level(self, level: float) -> "NoiseSpec":
        return NoiseSpec(self.kind, float(level), float(level))


def parse_noise(text: str) -> NoiseSpec:
    """Parse 'kind:level' or 'kind:low-high'; raise NoiseSpecError naming the valid forms."""
    kind_text, sep, level_text = text.strip().partition(":")
    kind = _ALIASES.get(kind_text.strip().lower())
    if kind is None or not sep:
        raise NoiseSpecError(f"Cannot read the noise spec {text!r}. Use one of: {EXAMPLES}.")
    low, high = _parse_level(level_text, text)
    lowest, highest = _LIMITS[kind]
    if not (lowest <= low <= high <= highest):
        raise NoiseSpecError(
            f"The noise level in {text!r} must lie in {lowest:g}..{highest:g} with low <= high. Example: {EXAMPLES}."
        )
    return NoiseSpec(kind, low, high)


def parse_noise_kind(text: str) -> str | None:
    """'auto' (None: detect per image), 'gaussian' or 'salt-and-pepper' (aliases allowed, any level ignored)."""
    name = text.strip().lower().partition(":")[0]
    if name == "auto":
        return None
    if name not in _ALIASES:
        raise NoiseSpecError(f"Unknown kind of noise {text!r}. Choose auto, {GAUSSIAN} or {SALT_AND_PEPPER}.")
    return _ALIASES[name]


def _parse_level(level_text: str, whole: str) -> tuple[float, float]:
    parts = level_text.strip().split("-")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise NoiseSpecError(f"The level in {whole!r} is not a number or a range. Use one of: {EXAMPLES}.") from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise NoiseSpecError(f"The level in {whole!r} has too many parts. Use one of: {EXAMPLES}.")


def add_noise(image: np.ndarray, spec: NoiseSpec, rng: np.random.Generator, clip: bool = True) -> np.ndarray:
    """Return a noisy copy of a float image in [0, 1]; the level is drawn from the spec's range once per image.

    clip=True keeps the result in [0, 1], as an 8-bit file written from it would be.
    """
    import numpy as np

    image = np.asarray(image, dtype=np.float32)
    level = rng.uniform(spec.low, spec.high) if spec.is_range else spec.low
    if spec.kind == GAUSSIAN:
        noisy = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(level / 255.0)
    else:
        noisy = _salt_and_pepper(image, level, rng)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def _salt_and_pepper(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    # One decision per pixel position shared by all channels, as a dead sensor pixel or a dropped bit would be.
    hit = rng.random(image.shape[:-1] + (1,)) < amount
    salt = rng.random(image.shape[:-1] + (1,)) < 0.5
    return np.where(hit, salt.astype(np.float32), image).astype(np.float32)


# Telling the kind of noise apart, so `denoise run` can pick the right model without being told.
# Salt-and-pepper noise leaves isolated pure black and white pixels and every other pixel exactly clean; strong
# Gaussian noise also clips some pixels to black or white, but then the unclipped pixels are noisy too. Measured
# on Set12, CSet5 and samples/ (docs/model-search.md): salt-and-pepper at 2-70% gives 1.3-56% isolated extremes
# with 2-5 levels of noise elsewhere; Gaussian sigma 50 gives 2-4% with 45-49 levels; clean images at most 0.7%.
IMPULSE_MIN_FRACTION = 0.01  # isolated extremes needed to call it salt-and-pepper
IMPULSE_MAX_SIGMA = 15.0  # ... while the other pixels are this quiet (0-255 scale)
# 8-bit 0 and 255 on the [0, 1] scale, with half a level of slack for values that went through float arithmetic.
EXTREME_LOW, EXTREME_HIGH = 0.5 / 255.0, 254.5 / 255.0
_PROBE = 256  # side of the crops that are measured, so a 50 MP photo costs what a small one does


def detect_noise_kind(image: np.ndarray) -> str:
    """SALT_AND_PEPPER or GAUSSIAN for a float HxWxC image in [0, 1] (the most likely of the two)."""
    for channel in range(image.shape[-1]):
        planes = _probe_crops(image[..., channel])
        fraction = sum(_isolated_extremes(p).sum() for p in planes) / sum(p.size for p in planes)
        if fraction >= IMPULSE_MIN_FRACTION and _sigma_between_extremes(planes) <= IMPULSE_MAX_SIGMA:
            return SALT_AND_PEPPER
    return GAUSSIAN


def _probe_crops(plane: np.ndarray) -> list[np.ndarray]:
    """The whole plane if small, else a crop at each of its four corners."""
    import numpy as np

    height, width = plane.shape
    if height <= 2 * _PROBE or width <= 2 * _PROBE:
        return [plane]
    ys, xs = (np.linspace(0, size - _PROBE, 2).astype(int) for size in (height, width))
    return [plane[y : y + _PROBE, x : x + _PROBE] for y in ys for x in xs]


def is_extreme(values: np.ndarray) -> np.ndarray:
    """Pure black or white: the only values salt-and-pepper noise writes."""
    return (values <= EXTREME_LOW) | (values >= EXTREME_HIGH)


def whole_extreme_pixels(image: np.ndarray) -> np.ndarray:
    """HxW mask of the pixels of an HxWxC image that are black or white in every channel."""
    return (image <= EXTREME_LOW).all(axis=-1) | (image >= EXTREME_HIGH).all(axis=-1)


def impulses_hit_whole_pixels(image: np.ndarray) -> bool:
    """Whether the isolated black and white values of a colour image come as whole pixels, all channels at once.

    Dead pixels, dropped bits and `denoise noise` hit whole pixels; some tools (MATLAB's imnoise) hit each channel
    on its own. In the first case a value that is black or white in a pixel that is not is known to be clean.
    """
    import numpy as np

    whole, isolated = [], []
    for crops in zip(*(_probe_crops(image[..., c]) for c in range(image.shape[-1]))):
        crop = np.stack(crops, axis=-1)
        isolated.append(np.any([_isolated_extremes(crop[..., c]) for c in range(crop.shape[-1])], axis=0).ravel())
        whole.append(whole_extreme_pixels(crop).ravel())
    isolated_all, whole_all = np.concatenate(isolated), np.concatenate(whole)
    return bool(isolated_all.any()) and float(whole_all[isolated_all].mean()) > 0.5


def _isolated_extremes(plane: np.ndarray) -> np.ndarray:
    """Pure black or white pixels far (over a quarter of the range) from the median of their 8 neighbours."""
    import numpy as np

    height, width = plane.shape
    padded = np.pad(plane, 1, mode="edge")
    neighbours = [padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    median = np.median(np.stack(neighbours), axis=0)
    return is_extreme(plane) & (np.abs(plane - median) > 0.25)


def _sigma_between_extremes(planes: list[np.ndarray]) -> float:
    """Robust Gaussian sigma (0-255 scale) of pixels that, with their 4 neighbours, are not pure black or white.

    The residual of a pixel against the mean of its 4 neighbours has variance 1.25 sigma^2 for white noise; the
    median absolute deviation keeps edges and texture from counting as noise.
    """
    import numpy as np

    residuals = []
    for plane in planes:
        extreme = is_extreme(plane)
        centre = plane[1:-1, 1:-1]
        around = (plane[:-2, 1:-1] + plane[2:, 1:-1] + plane[1:-1, :-2] + plane[1:-1, 2:]) / 4
        usable = ~(extreme[1:-1, 1:-1] | extreme[:-2, 1:-1] | extreme[2:, 1:-1] | extreme[1:-1, :-2]
                   | extreme[1:-1, 2:])
        residuals.append((centre - around)[usable])
    residual = np.concatenate(residuals)
    if residual.size < 100:  # almost everything is black or white: nothing to measure
        return float("inf")
    deviation = np.median(np.abs(residual - np.median(residual)))
    return float(1.4826 * deviation / np.sqrt(1.25) * 255.0)
