"""Noise specs ("gaussian:25", "gaussian:0-50", "salt-and-pepper:0.1"), mixes of them for training
("camera:0-1+gaussian:0-50"), and seeded NumPy noise generators.

Images here are float32 arrays in [0, 1]. Gaussian sigma is given on the 0-255 scale, as in the literature. The
training pipeline draws the same kinds of noise with TensorFlow ops (training/batches.py); this module stays free of
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
CAMERA = "camera"  # a camera's processed sensor noise (camera.py); level 0-1 through Brooks et al.'s range
CAMERA_JPEG = "camera-jpeg"  # the same, then JPEG at a random quality
CAMERA_KINDS = (CAMERA, CAMERA_JPEG)
POISSON = "poisson"  # shot noise alone: the level is the photon count of a white pixel (lower is noisier)
_ALIASES = {"gaussian": GAUSSIAN, "gauss": GAUSSIAN, "salt-and-pepper": SALT_AND_PEPPER, "sp": SALT_AND_PEPPER,
            "salt_and_pepper": SALT_AND_PEPPER, "impulse": SALT_AND_PEPPER, "camera": CAMERA,
            "camera-jpeg": CAMERA_JPEG, "poisson": POISSON, "shot": POISSON}
_SHIPPED_KINDS = (GAUSSIAN, SALT_AND_PEPPER, CAMERA)  # the kinds `run --noise` can choose a shipped model for
_LIMITS = {GAUSSIAN: (0.0, 255.0), SALT_AND_PEPPER: (0.0, 1.0), CAMERA: (0.0, 1.0), CAMERA_JPEG: (0.0, 1.0),
           POISSON: (1.0, 1e6)}
EXAMPLES = ("gaussian:25, gaussian:0-50, salt-and-pepper:0.1, salt-and-pepper:0.05-0.3, camera:0-1, camera-jpeg:0.5 "
            "or poisson:30")


@dataclass(frozen=True)
class NoiseSpec:
    """A kind of noise and its level, fixed (low == high) or a range drawn uniformly per image for blind training.

    For Gaussian noise the level is sigma on the 0-255 scale; for salt-and-pepper it is the fraction of pixels hit;
    for camera noise it is where in Brooks et al.'s range of sensor noise the image lies, 0 to 1 (camera.py); for
    Poisson noise it is the photon count a white pixel collects, each value then Poisson(count x value) / count.
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

    @property
    def specs(self) -> tuple["NoiseSpec", ...]:
        """This spec as a one-spec mix, so code that takes a NoiseMix takes a spec too."""
        return (self,)


@dataclass(frozen=True)
class NoiseMix:
    """Several noise specs trained together: each training batch draws one of them, all with equal chance.

    Written "camera:0-1+gaussian:0-50"; a spec given twice gets twice the share. Salt-and-pepper noise trains a model
    of its own kind (one that replaces only pure black and white pixels), so it cannot be mixed with the others.
    """

    specs: tuple[NoiseSpec, ...]

    def __str__(self) -> str:
        return MIX_SEPARATOR.join(str(spec) for spec in self.specs)


MIX_SEPARATOR = "+"


def parse_noise_mix(text: str) -> NoiseSpec | NoiseMix:
    """One spec ("gaussian:0-50") as a NoiseSpec, or several joined by '+' as a NoiseMix; NoiseSpecError if unfit."""
    parts = text.split(MIX_SEPARATOR)
    specs = tuple(parse_noise(part) for part in parts)
    if len(specs) == 1:
        return specs[0]
    if SALT_AND_PEPPER in {spec.kind for spec in specs}:
        raise NoiseSpecError(f"{text!r} mixes salt-and-pepper noise with other noise. A salt-and-pepper model only "
                             "replaces pure black and white pixels, so it is trained on salt-and-pepper alone: train "
                             "it with its own --noise salt-and-pepper:LOW-HIGH.")
    return NoiseMix(specs)


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
    """'auto' (None: detect per image), 'gaussian', 'salt-and-pepper' or 'camera' (aliases allowed); a level is
    refused. 'camera-jpeg' means 'camera': one shipped model cleans camera noise with or without JPEG.

    The shipped models are blind: they measure the level in each image themselves, so a level given here could only
    be ignored, and a silently ignored option misleads.
    """
    name, sep, level = text.strip().partition(":")
    name = name.strip().lower()
    choices = f"auto, {', '.join(_SHIPPED_KINDS[:-1])} or {_SHIPPED_KINDS[-1]}"
    if name != "auto" and name not in _ALIASES:
        raise NoiseSpecError(f"Unknown kind of noise {text!r}. Choose {choices}.")
    kind = None if name == "auto" else CAMERA if _ALIASES[name] in CAMERA_KINDS else _ALIASES[name]
    if kind is not None and kind not in _SHIPPED_KINDS:
        raise NoiseSpecError(f"No shipped model is trained for {kind} noise. Choose {choices}, or train one "
                             f"(denoise train --noise {kind}:LEVEL, or --target self on your noisy images).")
    if sep:
        raise NoiseSpecError(f"{text!r} gives a noise level, but --noise here only chooses which shipped model "
                             f"runs: the shipped models measure the level in each image themselves. Leave out "
                             f"':{level.strip()}' and write --noise {kind or 'auto'}.")
    return kind


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
    if spec.kind in CAMERA_KINDS:
        return _camera(image, spec, rng)
    level = rng.uniform(spec.low, spec.high) if spec.is_range else spec.low
    if spec.kind == GAUSSIAN:
        noisy = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(level / 255.0)
    elif spec.kind == POISSON:
        noisy = (rng.poisson(np.clip(image, 0.0, 1.0) * level) / level).astype(np.float32)
    else:
        noisy = _salt_and_pepper(image, level, rng)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def _camera(image: np.ndarray, spec: NoiseSpec, rng: np.random.Generator) -> np.ndarray:
    """Camera noise on one HxWxC image, seeded from rng; the pipeline is TensorFlow's (imported only here)."""
    import numpy as np

    from denoise.noise.camera import add_camera_noise

    seed = rng.integers(0, 2**31 - 1, size=2)
    noisy = add_camera_noise(image[None], spec.low, spec.high, seed, jpeg=spec.kind == CAMERA_JPEG)
    return np.asarray(noisy[0], dtype=np.float32)


def _salt_and_pepper(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    # One decision per pixel position shared by all channels, as a dead sensor pixel or a dropped bit would be.
    hit = rng.random(image.shape[:-1] + (1,)) < amount
    salt = rng.random(image.shape[:-1] + (1,)) < 0.5
    return np.where(hit, salt.astype(np.float32), image).astype(np.float32)
