"""Saving and loading models as `.keras` files with denoise's metadata, atomically and without running code.

Metadata (architecture, channels, noise, dataset, epochs, validation PSNR...) is stored as `denoise.json` inside
the `.keras` zip, beside Keras' own files, so `denoise info` can read it without importing TensorFlow.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import zipfile
from pathlib import Path

import keras

from denoise.errors import ModelError
from denoise.nn.architectures import with_weights_in
from denoise.nn.model_files import METADATA_NAME, read_metadata


def save_model(model: keras.Model, path: Path, metadata: dict, include_optimizer: bool = False) -> None:
    """Write the model and its metadata atomically: a crash never leaves a half-written file at `path`.

    The optimizer state (twice the size of the weights for Adam) is only kept for resumable checkpoints.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    except OSError as exc:
        raise ModelError(f"Could not write the model {path}: {exc.strerror or exc}. Choose another path.") from exc
    os.close(handle)
    try:
        (model if include_optimizer else _without_optimizer(model)).save(temp_name)
        with zipfile.ZipFile(temp_name, "a") as archive:
            archive.writestr(METADATA_NAME, json.dumps(metadata, indent=2, sort_keys=True))
        with open(temp_name, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes files private; a model is an ordinary file
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def remove_unfinished_saves(path: Path) -> list[Path]:
    """Delete the hidden temp files that saves of `path` left when their process was killed; returns them."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{glob.escape(path.stem)}.*.keras"))
    for leftover in stale:
        leftover.unlink(missing_ok=True)
    return stale


def _without_optimizer(model: keras.Model) -> keras.Model:
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def load_model(path: Path, compile: bool = False) -> tuple[keras.Model, dict]:
    """Load a `.keras` model with safe_mode on, and its metadata; every failure becomes a clear ModelError.

    compile=True also restores the optimizer state, for resuming training.
    """
    metadata = read_metadata(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=compile)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ModelError(
                f"{path} contains code (a Lambda layer or a pickled function) that would run when loaded; "
                "denoise refuses such files because a model file must not be able to run code on your machine."
            ) from exc
        raise ModelError(f"{path} could not be loaded as a Keras model: {exc}") from exc
    except Exception as exc:
        raise ModelError(f"{path} could not be loaded as a Keras model ({type(exc).__name__}: {exc}).") from exc
    _check_image_to_image(model, path)
    if any(weights.dtype == "float16" for weights in model.weights):  # stored compactly (`denoise compact`)
        model = with_weights_in(model, "float32")  # CPUs have no fast float16 convolutions; bfloat16 comes later
    return model, metadata


def _check_image_to_image(model, path: Path) -> None:
    """Refuse models denoise cannot run: not one NHWC image in and the same shape out, or not 1 or 3 channels."""
    shapes_ok = (
        isinstance(model, keras.Model)
        and len(model.inputs) == 1
        and len(model.outputs) == 1
        and len(model.input_shape) == 4
        and tuple(model.output_shape) == tuple(model.input_shape)
    )
    if not shapes_ok:
        raise ModelError(
            f"{path} is a Keras model but not an image-to-image model denoise can run (input "
            f"{getattr(model, 'input_shape', '?')}, output {getattr(model, 'output_shape', '?')}); "
            "use a model made by `denoise train`."
        )
    if model.input_shape[-1] not in (1, 3):
        raise ModelError(
            f"{path} takes {model.input_shape[-1]}-channel images; denoise runs grayscale (1) or colour (3) models."
        )
