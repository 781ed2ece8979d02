"""MNIST and Fashion-MNIST: 28x28 grayscale images, read from IDX or .npz files, or fetched by Keras' downloader.

Both loaders give the official train split as `train` and the test split as `validation`; `validation_fraction`
and `patch_size` do not apply (the images are already small and the split is fixed).
"""

from __future__ import annotations

import gzip
import importlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoise.datasets import Dataset, LoadRequest
from denoise.errors import DatasetError

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte data, 3 dimensions (count, rows, columns)
DOWNLOAD_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
SPLITS = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}


@dataclass(frozen=True)
class Source:
    """Where one dataset lives: its file names, its Keras cache folder and its Keras module."""

    title: str
    npz_name: str
    cache_subdir: str
    keras_module: str
    download_names: tuple[str, ...]  # what Keras' downloader fetches from DOWNLOAD_BASE


MNIST = Source("MNIST", "mnist.npz", "datasets", "mnist", ("mnist.npz",))
FASHION_MNIST = Source(
    "Fashion-MNIST",
    "fashion-mnist.npz",
    os.path.join("datasets", "fashion-mnist"),
    "fashion_mnist",
    tuple(f"{stem}.gz" for stem in SPLITS.values()),
)


def load_mnist(request: LoadRequest) -> Dataset:
    """MNIST handwritten digits (60,000 train / 10,000 test, 28x28 gray)."""
    return load_source(MNIST, request)


def load_fashion_mnist(request: LoadRequest) -> Dataset:
    """Fashion-MNIST clothing photos (60,000 train / 10,000 test, 28x28 gray)."""
    return load_source(FASHION_MNIST, request)


def load_source(source: Source, request: LoadRequest) -> Dataset:
    """Read a source from --path, else from the Keras cache, else download it; then apply limit and channels."""
    if request.path is not None:
        found = read_folder(Path(request.path), source)
        if found is None:
            raise DatasetError(missing_message(source, Path(request.path)))
    else:
        found = read_folder(keras_cache(source), source) or download(source)
    train, test, origin = found
    validation = shape_images(test, request)
    return Dataset(
        train=shape_images(train, request),
        validation=validation,
        notes={"source": source.title, "origin": origin},
        validation_names=[f"{source.title} test image {index}" for index in range(len(validation))],
    )


def read_folder(folder: Path, source: Source) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The (train, test) images stored in `folder` as IDX files or as a .npz, or None when neither is there."""
    if folder.is_file() and folder.suffix == ".npz":
        return (*read_npz(folder), str(folder))
    idx_files = [find_idx(folder, stem) for stem in SPLITS.values()]
    if all(idx_files):
        return read_idx_images(idx_files[0]), read_idx_images(idx_files[1]), str(folder)
    npz = folder / source.npz_name
    if npz.is_file():
        return (*read_npz(npz), str(npz))
    return None


def find_idx(folder: Path, stem: str) -> Path | None:
    """The gzipped or plain IDX file named `stem` in `folder`, if present."""
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_images(path: Path) -> np.ndarray:
    """Parse an IDX image file (gzipped or not) into an (N, rows, cols, 1) uint8 array."""
    data = read_bytes(path)
    if len(data) < 16:
        raise DatasetError(f"{path} is too short to be an IDX image file ({len(data)} bytes). Download it again.")
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IDX_IMAGES_MAGIC:
        raise DatasetError(
            f"{path} is not an IDX image file: its magic number is {magic:#010x}, expected {IDX_IMAGES_MAGIC:#010x}. "
            "It may be corrupt or a label file; download it again."
        )
    if len(data) - 16 != count * rows * cols:
        raise DatasetError(
            f"{path} is truncated or corrupt: its header promises {count} images of {rows}x{cols} "
            f"({count * rows * cols} bytes) but it holds {len(data) - 16}. Download it again."
        )
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols, 1)


def read_bytes(path: Path) -> bytes:
    """The file's contents, un-gzipped when its name ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip reports damage as any of these
        raise DatasetError(f"Could not read {path}: {exc}. The file may be corrupt; download it again.") from exc


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The x_train and x_test arrays of a Keras-style .npz, as (N, 28, 28, 1) uint8."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = archive["x_train"], archive["x_test"]
    except KeyError as exc:
        raise DatasetError(f"{path} has no {exc} array; expected the keys x_train and x_test.") from exc
    except (OSError, ValueError, zlib.error) as exc:
        raise DatasetError(f"Could not read {path}: {exc}. The file may be corrupt; download it again.") from exc
    return tuple(as_images(array, path) for array in arrays)


def as_images(array: np.ndarray, origin: object) -> np.ndarray:
    """A (N, H, W) or (N, H, W, 1) array of pixel values as (N, H, W, 1) uint8."""
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4 or array.shape[-1] != 1 or array.dtype != np.uint8:
        raise DatasetError(f"{origin} holds {array.dtype} data of shape {array.shape}; expected uint8 (N, H, W).")
    return array


def shape_images(images: np.ndarray, request: LoadRequest) -> np.ndarray:
    """Apply the request's limit and channel count; the result is a writable copy."""
    images = images[: request.limit] if request.limit is not None else images
    if request.channels == 3:
        return np.repeat(images, 3, axis=-1)
    return np.array(images)  # a copy: arrays from np.frombuffer are read-only


def keras_cache(source: Source) -> Path:
    """The folder Keras' downloader keeps this source in: $KERAS_HOME or ~/.keras, then the source's subfolder."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / source.cache_subdir


def download(source: Source) -> tuple[np.ndarray, np.ndarray, str]:
    """Fetch the source with Keras' own downloader; any failure (usually: offline) says how to get the files."""
    try:
        # Imported here because Keras pulls in TensorFlow, which takes seconds and is only needed to download.
        module = importlib.import_module(f"keras.datasets.{source.keras_module}")
        (x_train, _), (x_test, _) = module.load_data()
    except Exception as exc:  # the downloader raises a bare Exception when the fetch fails
        raise DatasetError(f"{missing_message(source, None)} (The download failed: {exc})") from exc
    return as_images(x_train, "Keras"), as_images(x_test, "Keras"), f"keras.datasets.{source.keras_module}"


def missing_message(source: Source, folder: Path | None) -> str:
    """Which files are missing, where to put them and where to get them."""
    idx = " and ".join(f"{stem}.gz" for stem in SPLITS.values())
    found_where = f"in {folder}" if folder is not None else f"in {keras_cache(source)} and could not be downloaded"
    urls = " and ".join(DOWNLOAD_BASE + name for name in source.download_names)
    return (
        f"{source.title} was not found {found_where}. Put either {idx} or {source.npz_name} into the folder you pass "
        f"as --path, or into the Keras cache folder {keras_cache(source)}. Get them from {urls} "
        "(or run once with network access and no --path to let Keras download them)."
    )
