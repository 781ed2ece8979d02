"""The Python API: clean a Pillow image or a NumPy array in one call, from a notebook or another program.

    import denoise
    cleaned = denoise.clean(image)               # the same type, mode, shape and dtype come back
    model = denoise.load_model("camera-colour")  # load once, then clean many images
    outputs = model.clean_many(images)

`denoise run`, `denoise eval` and `denoise train` are built on these functions. Nothing here prints or exits: a
problem raises an exception from denoise.errors whose message says what to do. TensorFlow is imported by the first
call that needs it, never by `import denoise`. docs/api.md has a worked example.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from denoise.errors import UsageError
from denoise.inference.settings import DEFAULT_PRECISION, RunSettings
from denoise.io.arrays import ImageLike, from_image
from denoise.noise.specs import parse_noise, parse_noise_kind, parse_noise_mix

if TYPE_CHECKING:
    from denoise.datasets import Dataset
    from denoise.evaluation import EvalReport, ImageScore
    from denoise.training.trainer import EpochReport, TrainResult

__all__ = ["Model", "add_noise", "clean", "evaluate", "load_dataset", "load_model", "train"]

AUTO = "auto"  # detect the kind of noise in each image and pick the shipped model for it


class Model:
    """A loaded denoiser, either one model file or the shipped models chosen per image; cleans without reloading.

    Thread-safe: one Model may clean images from several threads at once, with the same results as one call after
    another (tests/test_api.py checks it). Make one with load_model().
    """

    def __init__(self, denoiser: Callable[[list[np.ndarray]], list[np.ndarray]], name: str, settings: RunSettings,
                 threads: int):
        self._denoiser, self.name, self.settings, self.threads = denoiser, name, settings, threads

    def __repr__(self) -> str:
        return f"<denoise.Model {self.name}, {self.precision}>"

    def clean(self, image: ImageLike) -> ImageLike:
        """A cleaned copy of a Pillow image or NumPy array, of the same type, mode, shape and dtype; alpha is kept."""
        return self.clean_many([image])[0]

    def clean_many(self, images: Sequence[ImageLike]) -> list[ImageLike]:
        """Cleaned copies of several images; those of the same size run through the model together."""
        held = [from_image(image, f"image {index} of {len(images)}" if len(images) > 1 else "the image")
                for index, image in enumerate(images)]
        outputs = self.clean_pixels([item.pixels for item in held])
        return [item.restore(output) for item, output in zip(held, outputs)]

    def clean_pixels(self, pixels: list[np.ndarray]) -> list[np.ndarray]:
        """Cleaned float32 HxWxC arrays (C = 1 or 3, values in [0, 1]). It may overwrite the arrays it is given."""
        return self._denoiser(pixels)

    @property
    def precision(self) -> str:
        """The arithmetic the model runs in: "float32" or "bfloat16"."""
        from denoise.runtime import resolve_engine

        return getattr(self._denoiser, "precision", None) or resolve_engine(self.settings.precision,
                                                                             self.settings.runtime)[0]

    @property
    def runtime(self) -> str:
        """What runs the model: "litert" (TensorFlow Lite's XNNPACK kernels, float32 on CPUs) or "tensorflow"."""
        from denoise.runtime import resolve_engine

        return getattr(self._denoiser, "runtime", None) or resolve_engine(self.settings.precision,
                                                                           self.settings.runtime)[1]

    @property
    def noise_counts(self) -> dict[str, int]:
        """With the shipped models chosen per image: how many images each kind of noise was found in so far."""
        return {kind: count for kind, count in getattr(self._denoiser, "kinds", {}).items() if count}


def load_model(model: str | Path | Any | None = None, *, noise: str = AUTO, strength: float = 1.0,
               precision: str = DEFAULT_PRECISION, ensemble: int = 1, settings: RunSettings | None = None,
               threads: int | None = None) -> Model:
    """A Model for a `.keras` file, a shipped model's name, a Keras model object, or (None) the shipped models.

    noise: with the shipped models, "auto" detects the kind of noise in each image; "gaussian", "salt-and-pepper"
    or "camera" uses that kind's model for every image. strength scales the smoothing (1: the model's own; 0.5
    keeps half the noise; 2 smooths as if the noise were twice as strong). precision ("auto", "float32",
    "bfloat16") and ensemble (1-8 flips averaged) are as in `denoise run`; settings replaces them with a full
    RunSettings (tiling, memory per call). threads sizes TensorFlow's pools if it is not running yet.
    """
    from denoise.inference.strength import MAX_STRENGTH, WithStrength
    from denoise.runtime import parse_precision, start_tensorflow

    kind = parse_noise_kind(noise or AUTO)
    if kind is not None and model is not None:
        raise UsageError(f"noise={kind!r} chooses among the shipped models; with a model of your own ({model!r}), "
                         "leave it out.")
    path = _model_path(model)
    if path is not None:
        from denoise.nn.model_files import read_metadata

        read_metadata(path)  # a missing or foreign file fails here, before TensorFlow is imported
    elif model is not None and not _is_keras_model(model):
        raise UsageError(f"model is a {type(model).__name__}; give a .keras file's path, a shipped model's name, a "
                         "Keras model, or None for the shipped models.")
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise UsageError(f"strength must lie in 0..{MAX_STRENGTH:g} (1: the model's own choice), not {strength}.")
    if settings is None:
        try:
            settings = RunSettings(precision=parse_precision(precision), ensemble=ensemble, reuse_input=True)
        except ValueError as exc:
            raise UsageError(f"{exc}.") from exc
    elif (precision, ensemble) != (DEFAULT_PRECISION, 1):
        raise UsageError("Give either settings or precision and ensemble, not both: settings holds them too.")
    threads = start_tensorflow(threads)
    denoiser, name = _denoiser_for(model, path, kind, settings)
    return Model(denoiser if strength == 1.0 else WithStrength(denoiser, strength), name, settings, threads)


def _model_path(model) -> Path | None:
    """The file a model argument names (a path, or a shipped model's name), or None for None and model objects."""
    from denoise.nn.model_files import resolve_model

    return resolve_model(model) if isinstance(model, (str, Path)) else None


def _is_keras_model(model) -> bool:
    return hasattr(model, "predict") and hasattr(model, "input_shape")


def _denoiser_for(model, path: Path | None, kind: str | None, settings: RunSettings):
    """The denoiser behind a Model and its name; model is checked already (load_model)."""
    from denoise.inference.denoiser import Denoiser, load_denoiser
    from denoise.inference.shipped import DefaultDenoiser

    if path is not None:
        return load_denoiser(path, settings), path.stem
    if model is None:
        return DefaultDenoiser(kind, settings), f"shipped models ({kind or 'chosen per image'})"
    if settings.runtime == "auto":  # a Keras object may still be training: LiteRT would run a frozen copy of it
        settings = dataclasses.replace(settings, runtime="tensorflow")
    return Denoiser(model, settings), getattr(model, "name", "Keras model")


_loaded: dict[tuple, Model] = {}
_loading = threading.Lock()


def clean(image: ImageLike, *, model: str | Path | Model | None = None, noise: str = AUTO, strength: float = 1.0,
          precision: str = DEFAULT_PRECISION, ensemble: int = 1) -> ImageLike:
    """A cleaned copy of a Pillow image or NumPy array (H x W or H x W x C; uint8, uint16 or float in [0, 1]).

    The same type, mode, shape and dtype come back, alpha untouched; large images go through in tiles. By default
    the shipped model for the kind of noise found in the image cleans it. The model is loaded once and kept for
    later calls with the same arguments; load_model() gives one to keep yourself.
    """
    if isinstance(model, Model) and (noise, strength, precision, ensemble) != (AUTO, 1.0, DEFAULT_PRECISION, 1):
        raise UsageError("A loaded Model keeps the noise, strength, precision and ensemble it was loaded with; "
                         "give them to load_model() instead.")
    if not isinstance(model, Model):
        key = (str(model) if model is not None else None, noise, strength, precision, ensemble)
        with _loading:
            if key not in _loaded:
                _loaded[key] = load_model(model, noise=noise, strength=strength, precision=precision,
                                          ensemble=ensemble)
            model = _loaded[key]
    return model.clean(image)


def add_noise(image: ImageLike, noise: str = "gaussian:25", *, seed: int | Sequence[int] | None = None) -> ImageLike:
    """A noisy copy of an image, of the same type, mode, shape and dtype, for trying a model out.

    noise is a spec as `denoise noise --noise` takes it ("gaussian:25", "salt-and-pepper:0.1", "poisson:30",
    "camera:0.5", "camera-jpeg:0.5"); a level range draws one level. The same seed gives the same noise.
    """
    from denoise.noise.specs import CAMERA_KINDS
    from denoise.noise.specs import add_noise as noisy_pixels

    spec = parse_noise(noise) if isinstance(noise, str) else noise
    held = from_image(image)
    if spec.kind in CAMERA_KINDS:
        from denoise.runtime import start_tensorflow

        start_tensorflow()  # the camera's pipeline runs in TensorFlow
    return held.restore(noisy_pixels(held.pixels, spec, np.random.default_rng(seed)))


def evaluate(model: str | Path | Model | None, images: Sequence[ImageLike], noise: str = "gaussian:25", *,
             seed: int = 0, names: Sequence[str] = (),
             on_image: Callable[[ImageScore, np.ndarray, np.ndarray], None] | None = None) -> EvalReport:
    """PSNR and SSIM of a model's outputs on clean images given seeded noise, beside those of the noisy input.

    The noisy copies are rounded to 8 bits, as a noisy file holds them. report.summary() has the means;
    report.images each image's scores. on_image(score, noisy, denoised) sees each image's float pixels.
    """
    from denoise.evaluation import evaluate as score

    if not isinstance(model, Model):
        model = load_model(model)
    clean_pixels = [from_image(image, f"image {index}").pixels for index, image in enumerate(images)]
    return score(model.clean_pixels, clean_pixels, parse_noise_mix(noise) if isinstance(noise, str) else noise,
                 seed=seed, names=names, on_image=on_image)


def load_dataset(name: str = "folder", *, path: str | Path | None = None, limit: int | None = None,
                 channels: int | None = None, patch_size: int | None = None, validation_fraction: float = 0.1,
                 seed: int = 0) -> Dataset:
    """Clean images from a dataset plugin ("mnist", "fashion-mnist", "folder" or one another package registers).

    dataset.train and dataset.validation hold HxWxC uint8 arrays; with patch_size the training images are cut
    into patches of that side.
    """
    from denoise.datasets import LoadRequest
    from denoise.datasets import load_dataset as load

    request = LoadRequest(path=Path(path) if path is not None else None, patch_size=patch_size,
                          validation_fraction=validation_fraction, channels=channels, seed=seed, limit=limit)
    return load(name, request)


def train(out: str | Path, *, dataset: str = "folder", path: str | Path | None = None, noise: str | None = None,
          init_from: str | Path | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
          on_message: Callable[[str], None] | None = None, threads: int | None = None, **options: Any) -> TrainResult:
    """Train a model as `denoise train` does and return its history; the best model is saved at `out`.

    options are `denoise train`'s other options as keywords (epochs=5, width=16, target="self", ...). noise
    defaults to gaussian:0-50 for clean images. on_epoch gets each validation's EpochReport; on_message gets what
    training is about to do (warnings, when it is not given, go through Python's warnings module).
    """
    from denoise.datasets import get_plugin
    from denoise.nn.model_files import resolve_model
    from denoise.runtime import start_tensorflow
    from denoise.training.config import DEFAULT_NOISE, TrainConfig, check_config, default_patch_size

    if options.get("patch_size") is None:  # Neighbor2Neighbor halves its patches before the network sees them
        options["patch_size"] = default_patch_size(options.get("target", "clean"),
                                                   options.get("self_method", "recorrupt"))
    config = _train_config(TrainConfig, out=Path(out), dataset=dataset, data_path=path and Path(path),
                           init_from=init_from and resolve_model(init_from), **options)
    if noise is None and config.target == "clean":
        noise = DEFAULT_NOISE
    config.noise = parse_noise_mix(noise) if isinstance(noise, str) else noise
    check_config(config)  # every option is checked before TensorFlow's import and the dataset's reading
    get_plugin(dataset)
    start_tensorflow(threads)
    from denoise.training.trainer import train as run_training

    return run_training(config, on_epoch=on_epoch, on_start=on_message or _warn_only)


def _train_config(config_class, **values):
    names = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"train() has no option {', '.join(unknown)}. Its options: "
                         f"{', '.join(sorted(names - {'out', 'dataset', 'data_path', 'noise'}))}.")
    return config_class(noise=None, **values)


def _warn_only(line: str) -> None:
    if line.startswith("warning: "):
        warnings.warn(line.removeprefix("warning: "), UserWarning, stacklevel=3)
