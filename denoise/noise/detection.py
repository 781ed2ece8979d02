"""Telling the kind of noise in an image apart, so `denoise run` can pick the right model without being told.

Images here are float32 HxWxC arrays in [0, 1]. Only NumPy, and only on a few crops of each image, so it costs
milliseconds beside the model.
"""

from __future__ import annotations

import numpy as np

from denoise.noise.specs import CAMERA, GAUSSIAN, SALT_AND_PEPPER

# Salt-and-pepper noise leaves isolated pure black and white pixels and every other pixel exactly clean; strong
# Gaussian noise also clips some pixels to black or white, but then the unclipped pixels are noisy too. Measured
# on Set12, CSet5 and samples/ (docs/model-search.md): salt-and-pepper at 2-70% gives 1.3-56% isolated extremes
# with 2-5 levels of noise elsewhere; Gaussian sigma 50 gives 2-4% with 45-49 levels; clean images at most 0.7%.
IMPULSE_MIN_FRACTION = 0.01  # isolated extremes needed to call it salt-and-pepper
IMPULSE_MAX_SIGMA = 15.0  # ... while the other pixels are this quiet (0-255 scale)
# Where most values are pure black or white (digits, scans, line art: content, or very dense noise) there are too
# few quiet pixels to measure a sigma on, and thin strokes look isolated to a 3x3 median. There the rate of lone
# impulses (impulse_rate) decides. Measured on generated digits, line art and binary text (tests/factories.py,
# benchmarks/impulse_content.py), Set12 and samples/: clean images at most 0.002, Gaussian sigma 10-50 at most
# 0.014, salt-and-pepper 10% 0.03-0.06 (its value is half the density), 30% 0.14, 50% 0.19-0.25.
MOSTLY_EXTREME = 0.5  # fraction of pure black and white values from which impulse_rate decides
IMPULSE_MIN_RATE = 0.02
# 8-bit 0 and 255 on the [0, 1] scale, with half a level of slack for values that went through float arithmetic.
EXTREME_LOW, EXTREME_HIGH = 0.5 / 255.0, 254.5 / 255.0
_PROBE = 256  # side of the crops that are measured, so a 50 MP photo costs what a small one does
# White noise (what `denoise noise --noise gaussian` adds, independently per pixel and channel) halves when 2x2
# pixels are averaged; a camera's noise, spread over neighbouring pixels by demosaicing and JPEG, does not, and
# neither does the fine detail of a clean photo. Measured on the colour-difference planes (R-G, B-G), where
# little detail is, by `python benchmarks/noise_kinds.py --clean ../shared/data/cbsd432 --count 10` (320x320 crops):
# binned over full is 0.49-0.70 for Gaussian sigma 5-50 (0.54-0.89 at sigma 3, where one image in ten goes to the
# camera model, which also removes white noise); 1.45-1.73 for camera noise at levels 0-1, 1.00-2.67 with JPEG;
# 1.79-1.90 for white noise repeated over 2x2 pixels; 1.25-2.50 for the clean images, 1.00-2.00 for them as JPEG.
WHITE_NOISE_MAX_RATIO = 0.8
MIN_COLOUR_NOISE = 0.3  # sigma (0-255) of the colour differences below which there is nothing to measure


def detect_noise_kind(image: np.ndarray) -> str:
    """SALT_AND_PEPPER, GAUSSIAN or CAMERA for a float HxWxC image in [0, 1] (the most likely of them).

    CAMERA: a colour image whose noise is not white, which is what real photos carry (and clean photos, whose
    detail is not white either: the camera model is trained to leave clean photos as they are).
    """
    if _has_impulses(image):
        return SALT_AND_PEPPER
    if image.shape[-1] == 3 and not has_white_colour_noise(image):
        return CAMERA
    return GAUSSIAN


def _has_impulses(image: np.ndarray) -> bool:
    """Whether salt-and-pepper noise is the most likely explanation of the image's black and white pixels."""
    for channel in range(image.shape[-1]):
        planes = probe_crops(image[..., channel])
        if sum(is_extreme(p).sum() for p in planes) >= MOSTLY_EXTREME * sum(p.size for p in planes):
            if impulse_rate(planes) >= IMPULSE_MIN_RATE:
                return True
            continue
        fraction = sum(isolated_extremes(p).sum() for p in planes) / sum(p.size for p in planes)
        if fraction >= IMPULSE_MIN_FRACTION and _sigma_between_extremes(planes) <= IMPULSE_MAX_SIGMA:
            return True
    return False


def has_white_colour_noise(image: np.ndarray) -> bool:
    """Whether an RGB image's colour differences carry white noise (or none at all to measure).

    See WHITE_NOISE_MAX_RATIO: the noise left after 2x2 binning, over the noise at full resolution.
    """
    full, binned = whiteness(image)
    return full < MIN_COLOUR_NOISE or binned < WHITE_NOISE_MAX_RATIO * full


def whiteness(image: np.ndarray) -> tuple[float, float]:
    """The noise sigma (0-255) of an RGB image's colour differences R-G and B-G, at full resolution and after
    averaging 2x2 blocks; white noise gives (s, s / 2). Measured on the probe crops only (views: nothing is copied
    at the image's size)."""
    full, binned = [], []
    for red, green, blue in zip(*(probe_crops(image[..., channel]) for channel in range(3))):
        for difference in (red - green, blue - green):
            full.append(_residual(difference).ravel())
            binned.append(_residual(bin_2x2(difference)).ravel())
    return residual_sigma(np.concatenate(full)), residual_sigma(np.concatenate(binned))


def bin_2x2(plane: np.ndarray) -> np.ndarray:
    """The mean of each 2x2 block of an HxW plane (an odd last row or column is dropped)."""
    height, width = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    return plane[:height, :width].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))


def _residual(plane: np.ndarray) -> np.ndarray:
    """Each inner pixel minus the mean of its 4 neighbours: variance 1.25 sigma^2 for white noise of sigma."""
    return plane[1:-1, 1:-1] - (plane[:-2, 1:-1] + plane[2:, 1:-1] + plane[1:-1, :-2] + plane[1:-1, 2:]) / 4


def impulse_rate(planes: list[np.ndarray]) -> float:
    """The share of pixels salt-and-pepper noise set to black (or to white): half its density; 0 for clean images.

    Impulses land at random places whatever the image shows, so among the places with no black neighbour (3x3)
    and a neighbour median far from black, the share that is black themselves is the rate of black impulses there
    and everywhere. A black pixel of a stroke, a letter or a background has black neighbours and never counts;
    Gaussian noise clipped to black sits beside dark values, not far from them. The smaller of the black and white
    rates is taken (content adds to one of them at most; noise sets both alike); a value with fewer than 20 such
    places is left out, and with no measurable value the rate is 0.
    """
    rates = []
    for value in (0.0, 1.0):
        hits = places = 0
        for plane in planes:
            same = plane <= EXTREME_LOW if value == 0.0 else plane >= EXTREME_HIGH
            around = neighbour_counts(same)
            lone = around == 0
            ys, xs = np.nonzero(lone)
            if ys.size:
                far = np.abs(_neighbour_median(plane, ys, xs) - value) > 0.25
                places += int(far.sum())
                hits += int(same[ys, xs][far].sum())
        if places >= 20:
            rates.append(hits / places)
    return min(rates) if rates else 0.0


def neighbour_counts(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's 8 neighbours are set in a boolean HxW mask (outside the image counts as unset)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    height, width = mask.shape
    return sum(padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)
               if (dy, dx) != (1, 1))


def _neighbour_median(plane: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The median of the 8 neighbours (edges repeated) of the pixels at ys, xs."""
    padded = np.pad(plane, 1, mode="edge")
    return np.median(np.stack([padded[ys + dy, xs + dx] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]),
                     axis=0)


def probe_crops(plane: np.ndarray) -> list[np.ndarray]:
    """The whole HxW plane if small, else a 256x256 crop at each of its corners: what the estimates look at."""
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
    whole, isolated = [], []
    for crops in zip(*(probe_crops(image[..., c]) for c in range(image.shape[-1]))):
        crop = np.stack(crops, axis=-1)
        isolated.append(np.any([isolated_extremes(crop[..., c]) for c in range(crop.shape[-1])], axis=0).ravel())
        whole.append(whole_extreme_pixels(crop).ravel())
    isolated_all, whole_all = np.concatenate(isolated), np.concatenate(whole)
    return bool(isolated_all.any()) and float(whole_all[isolated_all].mean()) > 0.5


def isolated_extremes(plane: np.ndarray) -> np.ndarray:
    """Pure black or white pixels far (over a quarter of the range) from the median of their 8 neighbours.

    The median is taken at the black and white pixels only: they are a few percent of most images, and a median
    over every pixel cost 70% of the model's own time on a 512x512 colour image (docs/model-search.md).
    """
    extreme = is_extreme(plane)
    isolated = np.zeros_like(extreme)
    ys, xs = np.nonzero(extreme)
    if ys.size:
        isolated[ys, xs] = np.abs(plane[ys, xs] - _neighbour_median(plane, ys, xs)) > 0.25
    return isolated


def _sigma_between_extremes(planes: list[np.ndarray]) -> float:
    """Robust Gaussian sigma (0-255 scale) of pixels that, with their 4 neighbours, are not pure black or white.

    The residual of a pixel against the mean of its 4 neighbours has variance 1.25 sigma^2 for white noise; the
    median absolute deviation keeps edges and texture from counting as noise.
    """
    residuals = []
    for plane in planes:
        extreme = is_extreme(plane)
        usable = ~(extreme[1:-1, 1:-1] | extreme[:-2, 1:-1] | extreme[2:, 1:-1] | extreme[1:-1, :-2]
                   | extreme[1:-1, 2:])
        residuals.append(_residual(plane)[usable])
    residual = np.concatenate(residuals)
    if residual.size < 100:  # almost everything is black or white: nothing to measure
        return float("inf")
    return residual_sigma(residual)


def image_sigma(image: np.ndarray) -> float:
    """The white-noise sigma (0-255 scale) of a float HxWxC image in [0, 1]: the median of plane_sigma over each
    channel's probe crops, so a 50 MP photo is never copied whole for it. Texture reads as a little noise: clean
    photos read 2-5 (Set12 at most 4.6), fine fur or grain up to 10-19."""
    return float(np.median([plane_sigma(crop) for channel in range(image.shape[-1])
                            for crop in probe_crops(image[..., channel])]))


def plane_sigma(plane: np.ndarray) -> float:
    """The sigma (0-255 scale) of the white noise in a float HxW plane in [0, 1], robust to edges and texture."""
    return residual_sigma(_residual(plane))


def residual_sigma(residuals: np.ndarray) -> float:
    """The white-noise sigma (0-255 scale) behind residuals of _residual: robust, so edges and texture barely count."""
    return float(robust_sigma(residuals) / np.sqrt(1.25) * 255.0)


def robust_sigma(values: np.ndarray) -> float:
    """The standard deviation of Gaussian noise from its median absolute deviation, which a minority of outliers
    (edges, texture, a model's mistakes) barely moves."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))
