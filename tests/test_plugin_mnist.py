"""The MNIST / Fashion-MNIST loaders, on small IDX and .npz files made here; the network is never touched."""

import gzip
import struct
import sys
import types

import numpy as np
import pytest

from denoise.datasets import LoadRequest
from denoise.errors import DatasetError
from denoise_plugins import mnist


def idx_bytes(images: np.ndarray, magic: int = 0x00000803) -> bytes:
    """An IDX image file holding `images` (N, rows, cols) uint8."""
    return struct.pack(">IIII", magic, *images.shape) + images.tobytes()


def fake_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


def write_idx(folder, train, test, gzipped=True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, images in (("train-images-idx3-ubyte", train), ("t10k-images-idx3-ubyte", test)):
        if gzipped:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(images)))
        else:
            (folder / stem).write_bytes(idx_bytes(images))


@pytest.fixture
def offline_keras(monkeypatch):
    """Stand-ins for keras.datasets.* whose load_data fails as Keras' downloader does offline (and needs no TF)."""
    calls = []

    def load_data():
        calls.append("load_data")
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] name resolution")

    datasets = types.ModuleType("keras.datasets")
    for name in ("mnist", "fashion_mnist"):
        module = types.ModuleType(f"keras.datasets.{name}")
        module.load_data = load_data
        setattr(datasets, name, module)
        monkeypatch.setitem(sys.modules, f"keras.datasets.{name}", module)
    keras = types.ModuleType("keras")
    keras.datasets = datasets
    monkeypatch.setitem(sys.modules, "keras", keras)
    monkeypatch.setitem(sys.modules, "keras.datasets", datasets)
    return calls


@pytest.mark.parametrize("gzipped", [True, False])
def test_reads_idx_files_from_data_dir(tmp_path, gzipped):
    train, test = fake_images(5, 0), fake_images(3, 1)
    write_idx(tmp_path / "data", train, test, gzipped=gzipped)
    dataset = mnist.load_mnist(LoadRequest(path=tmp_path / "data"))
    assert dataset.train.shape == (5, 28, 28, 1) and dataset.train.dtype == np.uint8
    np.testing.assert_array_equal(dataset.train[..., 0], train)
    np.testing.assert_array_equal(dataset.validation[..., 0], test)
    assert dataset.train.flags.writeable


def test_reads_keras_npz_and_applies_limit_and_channels(tmp_path):
    train, test = fake_images(6, 2), fake_images(4, 3)
    np.savez(tmp_path / "mnist.npz", x_train=train, y_train=np.zeros(6), x_test=test, y_test=np.zeros(4))
    dataset = mnist.load_mnist(LoadRequest(path=tmp_path, limit=2, channels=3))
    assert dataset.train.shape == (2, 28, 28, 3)
    assert dataset.validation.shape == (2, 28, 28, 3)
    np.testing.assert_array_equal(dataset.train[..., 2], train[:2])


def test_fashion_mnist_reads_the_keras_cache(tmp_path, offline_keras):
    cache = tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist"  # KERAS_HOME is set by conftest
    write_idx(cache, fake_images(4, 4), fake_images(2, 5))
    dataset = mnist.load_fashion_mnist(LoadRequest())
    assert dataset.train.shape == (4, 28, 28, 1) and len(dataset.validation) == 2
    assert offline_keras == []  # found in the cache, so nothing was downloaded


def test_corrupt_magic_number_is_a_clear_error(tmp_path):
    folder = tmp_path / "data"
    write_idx(folder, fake_images(2, 0), fake_images(2, 1))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(fake_images(2, 0), magic=0x801)))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz is not an IDX image file.*0x00000801"):
        mnist.load_mnist(LoadRequest(path=folder))


def test_truncated_and_broken_gzip_files_are_clear_errors(tmp_path):
    folder = tmp_path / "data"
    write_idx(folder, fake_images(2, 0), fake_images(2, 1))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(fake_images(2, 1))[:-10]))
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        mnist.load_mnist(LoadRequest(path=folder))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DatasetError, match="Could not read .*t10k-images-idx3-ubyte.gz"):
        mnist.load_mnist(LoadRequest(path=folder))


def test_missing_files_in_data_dir_name_them_and_do_not_download(tmp_path, offline_keras):
    with pytest.raises(DatasetError) as error:
        mnist.load_mnist(LoadRequest(path=tmp_path))
    message = str(error.value)
    assert f"not found in {tmp_path}" in message
    assert "train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz or mnist.npz" in message
    assert offline_keras == []


@pytest.mark.parametrize(
    ("loader", "files", "cache"),
    [
        (mnist.load_mnist, "mnist.npz", "datasets"),
        (mnist.load_fashion_mnist, "train-images-idx3-ubyte.gz", "datasets/fashion-mnist"),
    ],
)
def test_offline_without_files_says_what_to_put_where(tmp_path, offline_keras, loader, files, cache):
    with pytest.raises(DatasetError) as error:
        loader(LoadRequest())
    message = str(error.value)
    assert offline_keras == ["load_data"]
    assert files in message and "--path" in message
    assert str(tmp_path / "home" / ".keras" / cache) in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/" in message
    assert "URL fetch failure" in message
