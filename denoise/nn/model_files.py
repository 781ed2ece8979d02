"""Reading what a `.keras` model file is and how it was trained, without importing TensorFlow.

A `.keras` file is a zip archive holding Keras' config.json, metadata.json and weights; denoise adds its own
`denoise.json` (architecture, channels, noise, dataset, epochs, validation PSNR, training command).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from denoise.errors import ModelError, UsageError

METADATA_NAME = "denoise.json"
WEIGHTS_FOLDER = Path(__file__).parents[1] / "weights"
_SHOWN = (
    ("architecture", "architecture"),
    ("channels", "channels"),
    ("noise", "trained on noise"),
    ("dataset", "dataset"),
    ("epochs", "epochs"),
    ("validation_psnr", "validation PSNR (dB)"),
    ("stored_as", "weights stored as"),
    ("trained_at", "trained at"),
    ("denoise_version", "denoise version"),
)


# Names shipped models had before, so that scripts written for them keep working: until 2026-12-01 gray images had
# a width-32 model of their own and colour photos the width-40 one that is now `gaussian` for both.
FORMER_NAMES = {"gaussian-gray": "gaussian", "gaussian-colour": "gaussian"}


def shipped_model_names() -> list[str]:
    """The names the shipped models can be given by instead of a path, e.g. "gaussian"."""
    return sorted(path.stem for path in WEIGHTS_FOLDER.glob("*.keras"))


def resolve_model(path_or_name: str | Path) -> Path:
    """A model file's path: an existing file as given, else the shipped model of that name (with or without .keras,
    or a former name of it).

    An unknown name comes back as a path, so that read_metadata's error names it and lists the shipped names.
    """
    path = Path(path_or_name)
    if not path.exists() and path.parent == Path("."):
        name = FORMER_NAMES.get(path.stem, path.stem)
        if name in shipped_model_names():
            return WEIGHTS_FOLDER / f"{name}.keras"
    return path


def read_metadata(path: Path) -> dict:
    """denoise's metadata of a `.keras` file, without importing TensorFlow; ModelError if it is not a model file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"The model file {path} does not exist. Give a .keras file made by `denoise train`, or a "
                         f"shipped model's name: {', '.join(shipped_model_names())}.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelError(f"{path} is a zip file but not a Keras model (no config.json inside).")
            if METADATA_NAME not in names:
                return {}
            return json.loads(archive.read(METADATA_NAME))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelError(
            f"{path} is not a readable .keras model file ({type(exc).__name__}: {exc}). "
            "It may be truncated or come from another program; train or download it again."
        ) from exc



def check_model_file_name(path: Path) -> None:
    """UsageError unless `path` ends in .keras, the only name Keras saves a model under; checked before any work."""
    if Path(path).suffix != ".keras":
        raise UsageError(f"The model file name must end in .keras, not {Path(path).name!r}.")


def describe_model_file(path: Path) -> list[str]:
    """Human-readable lines about a model file: its metadata and its training settings."""
    path = Path(path)
    metadata = read_metadata(path)
    lines = [f"{path}  ({path.stat().st_size / 1e6:.2f} MB)"]
    if not metadata:
        return lines + ["  no denoise metadata: a Keras model saved by another program"]
    for key, label in _SHOWN:
        if metadata.get(key) is not None:
            value = metadata[key]
            lines.append(f"  {label:<22} {value:.2f}" if isinstance(value, float) else f"  {label:<22} {value}")
    for key, value in sorted((metadata.get("train_config") or {}).items()):
        lines.append(f"  train.{key:<16} {value}")
    return lines
