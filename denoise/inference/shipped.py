"""Which shipped model cleans which image: by the kind of noise, told or detected, and the image's channel count.

Nothing here imports TensorFlow until an image is cleaned, so `denoise run` can check the installation first.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import numpy as np

from denoise.errors import ModelError
from denoise.inference.channels import as_hwc
from denoise.inference.settings import RunSettings
from denoise.nn.model_files import WEIGHTS_FOLDER
from denoise.noise.detection import detect_noise_kind, image_sigma
from denoise.noise.specs import CAMERA, GAUSSIAN, SALT_AND_PEPPER

# The shipped models, by kind of noise and number of colour channels; each has a model card beside it. The Gaussian
# and impulse ones are grayscale models: colour images go through them as three gray planes (opponent planes for the
# Gaussian model, the channels for the impulse one), which measured better on CSet5 than the colour models tried so
# far for white noise (docs/model-search.md). Camera noise is correlated across the channels, so its model sees all
# three at once; gray images go through it as three equal channels.
DEFAULT_MODELS = {
    (GAUSSIAN, 1): "gaussian.keras",
    (GAUSSIAN, 3): "gaussian.keras",  # cleaning opponent planes (channels.colour_space_for)
    (SALT_AND_PEPPER, 1): "impulse-gray.keras",
    (SALT_AND_PEPPER, 3): "impulse-gray.keras",
    (CAMERA, 1): "camera-colour.keras",
    (CAMERA, 3): "camera-colour.keras",
}

# An image whose white noise reads below this sigma (0-255) is passed through as it is, when the kind of noise was
# detected as Gaussian rather than told: a blind model that removes light noise well also takes a little of any
# clean photo's own grain and texture (Set12's boat came out 38.6 dB from itself). Clean Set12 images read 2.0-4.6
# (detection.image_sigma), the same images with sigma-5 noise 6.3 and more; smooth images with sigma-5 noise can
# read 4.6 and are left as they are. `--noise gaussian` cleans every image. docs/run.md has the figures.
PASS_THROUGH_SIGMA = 5.0


def choose_model(image: np.ndarray, noise_kind: str | None = None) -> tuple[str, Path | None]:
    """The kind of noise in an HxWxC image (noise_kind if told, else detected) and the shipped model that cleans it;
    None when the image is passed through as it is (detected Gaussian noise below PASS_THROUGH_SIGMA)."""
    kind = noise_kind or detect_noise_kind(image)
    if noise_kind is None and kind == GAUSSIAN and image_sigma(image) < PASS_THROUGH_SIGMA:
        return kind, None
    return kind, default_model_path(image.shape[-1], kind)


def default_model_path(channels: int, noise_kind: str = GAUSSIAN) -> Path:
    """The shipped model for a kind of noise and 1-channel (grayscale) or 3-channel (colour) images."""
    path = WEIGHTS_FOLDER / DEFAULT_MODELS[(noise_kind, 1 if channels == 1 else 3)]
    if not path.is_file():
        raise ModelError(
            f"The default model {path.name} is missing from this installation ({WEIGHTS_FOLDER}). "
            "Reinstall denoise, or pass a model you trained with --model."
        )
    return path


def check_installation() -> None:
    """ModelError naming the first shipped model that is missing, before any file is read."""
    for kind, channels in DEFAULT_MODELS:
        default_model_path(channels, kind)


class DefaultDenoiser:
    """Cleans each image with the shipped model for its kind of noise, told or detected (detection.detect_noise_kind).

    Each model is loaded the first time an image needs it, so a folder without impulse noise never loads that model.
    `kinds` counts the images cleaned per kind of noise, for the summary of a run. Calls from several threads at
    once are safe: loading and counting happen under a lock, and a loaded model runs from any thread.
    """

    def __init__(self, noise_kind: str | None = None, settings: RunSettings | None = None):
        check_installation()  # a broken installation fails here, before any file is read
        self.noise_kind = noise_kind  # None: detect per image
        self.settings = settings or RunSettings()
        self.kinds: dict[str, int] = defaultdict(int)
        self._by_path: dict = {}
        self._lock = threading.Lock()

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        groups = defaultdict(list)  # model file -> indices of the images it cleans
        results: list[np.ndarray | None] = [None] * len(images)
        for index, image in enumerate(images):
            kind, path = choose_model(as_hwc(image), self.noise_kind)
            if path is None:
                results[index] = image  # the run counts it among the images left unchanged
                continue
            with self._lock:
                self.kinds[kind] += 1
            groups[path].append(index)
        for path, indices in groups.items():
            for index, output in zip(indices, self._denoiser(path)([images[i] for i in indices])):
                results[index] = output
        return results

    def _denoiser(self, path: Path):
        with self._lock:  # two threads needing a model first would otherwise both load it
            if path not in self._by_path:
                from denoise.inference.denoiser import load_denoiser

                self._by_path[path] = load_denoiser(path, self.settings)
            return self._by_path[path]
