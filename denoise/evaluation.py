"""PSNR and SSIM of noisy inputs and of a model's outputs over a dataset.

The metrics are plain NumPy so they can be used anywhere (training's validation, benchmarks). Noisy copies are
rounded to 8 bits, exactly as the files a user hands to `denoise run` would be.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from denoise.noise.specs import NoiseMix, NoiseSpec, add_noise

# SSIM as defined by Wang et al. 2004: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03.
_SSIM_RADIUS, _SSIM_SIGMA, _C1, _C2 = 5, 1.5, 0.01**2, 0.03**2


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two float images in [0, 1] (inf when identical)."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(image, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Structural similarity of two float HxWxC images in [0, 1], averaged over channels (Wang et al. 2004)."""
    x, y = np.asarray(reference, np.float64), np.asarray(image, np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    values = [_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[-1])]
    return float(np.mean(values))


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    blur = _gaussian_blur
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return float(np.mean(numerator / denominator))


def _gaussian_blur(plane: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter, 'valid' region only (as the reference SSIM implementation)."""
    offsets = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1)
    kernel = np.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    kernel /= kernel.sum()
    if min(plane.shape) < kernel.size:  # images smaller than the window: plain global statistics
        return np.full((1, 1), plane.mean())
    windows = np.lib.stride_tricks.sliding_window_view
    rows = windows(plane, kernel.size, axis=1) @ kernel
    return windows(rows, kernel.size, axis=0) @ kernel


def to_8bit(image: np.ndarray) -> np.ndarray:
    """Round a float image in [0, 1] to the 256 levels an 8-bit file can hold (still float)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0


def noisy_copies(images, noise: NoiseSpec | NoiseMix, seed: int) -> list[np.ndarray]:
    """A seeded noisy 8-bit copy of each float image; the same seed gives the same noise.

    With a mix, the images take its specs in turn (image i gets spec i modulo their number).
    """
    rng = np.random.default_rng(seed)
    specs = noise.specs
    return [to_8bit(add_noise(image, specs[index % len(specs)], rng)).astype(np.float32)
            for index, image in enumerate(images)]


@dataclass
class ImageScore:
    """One image's PSNR (dB) and SSIM, of its noisy copy and of the model's output."""

    index: int
    name: str
    shape: tuple
    noisy_psnr: float
    noisy_ssim: float
    denoised_psnr: float
    denoised_ssim: float


@dataclass
class EvalReport:
    """The scores of a model on a set of images: .images per image, .summary() the means, .to_dict() both."""

    noise: str
    images: list[ImageScore] = field(default_factory=list)

    def mean(self, name: str) -> float:
        """The mean of one score over the images ("noisy_psnr", "denoised_ssim", ...)."""
        return float(np.mean([getattr(score, name) for score in self.images])) if self.images else float("nan")

    def summary(self) -> dict:
        names = ("noisy_psnr", "noisy_ssim", "denoised_psnr", "denoised_ssim")
        return {"noise": self.noise, "count": len(self.images), **{name: self.mean(name) for name in names}}

    def to_dict(self) -> dict:
        return {**self.summary(), "images": [asdict(score) for score in self.images]}


def score_images(clean, noisy, denoised, noise: NoiseSpec, names=()) -> EvalReport:
    """PSNR/SSIM of the noisy and the denoised version of each clean image; names label them (default: #index)."""
    report = EvalReport(str(noise))
    names = list(names) or [f"#{index}" for index in range(len(clean))]
    for index, (name, c, n, d) in enumerate(zip(names, clean, noisy, denoised)):
        report.images.append(
            ImageScore(index, name, tuple(int(v) for v in c.shape), psnr(c, n), ssim(c, n), psnr(c, d), ssim(c, d))
        )
    return report


def evaluate(denoise, clean, noise: NoiseSpec | NoiseMix, seed: int = 0, names=(), on_image=None) -> EvalReport:
    """Add seeded noise to clean float HxWxC images in [0, 1], clean them with `denoise` (list -> list), score both.

    The denoiser gets copies of the noisy images: it may clean them in place (RunSettings.reuse_input).
    on_image(score, noisy, denoised) is called for each image (the HTML report).
    """
    noisy = noisy_copies(clean, noise, seed)
    denoised = denoise([image.copy() for image in noisy])
    report = score_images(clean, noisy, denoised, noise, names)
    if on_image is not None:
        for score, before, after in zip(report.images, noisy, denoised):
            on_image(score, before, after)
    return report
