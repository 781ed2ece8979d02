"""The folder loader, on real PNG/JPEG/TIFF files in nested folders made in tmp_path."""

import numpy as np
import pytest
from PIL import Image

from denoise.datasets import LoadRequest
from denoise.errors import DatasetError
from denoise_plugins import folder


def gradient(height: int, width: int, colour: bool) -> np.ndarray:
    """A smooth test picture that survives JPEG well."""
    y, x = np.mgrid[0:height, 0:width]
    gray = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    if not colour:
        return gray
    return np.stack([gray, (y * 255 // max(height - 1, 1)).astype(np.uint8), 255 - gray], axis=-1)


def save(path, pixels, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


@pytest.fixture
def gray_tree(tmp_path):
    """Five gray 40x48 images spread over nested folders, with mixed-case suffixes and a stray non-image file."""
    root = tmp_path / "photos"
    save(root / "a.png", gradient(40, 48, False))
    save(root / "b.PNG", gradient(40, 48, False))
    save(root / "nested" / "c.jpg", gradient(40, 48, False), quality=95)
    save(root / "nested" / "deeper" / "d.TIF", gradient(40, 48, False))
    save(root / "nested" / "e.bmp", gradient(40, 48, False))
    (root / "notes.txt").write_text("not an image")
    save(root / ".thumbnails" / "hidden.png", gradient(8, 8, False))
    return root


def test_finds_images_in_sorted_walk_order_without_hidden_ones(gray_tree):
    names = [p.relative_to(gray_tree).as_posix() for p in folder.find_image_files(gray_tree)]
    assert names == ["a.png", "b.PNG", "nested/c.jpg", "nested/e.bmp", "nested/deeper/d.TIF"]


def test_gray_folder_gives_gray_patches_and_whole_validation_crops(gray_tree):
    dataset = folder.load_folder(LoadRequest(path=gray_tree, patch_size=16, validation_fraction=0.2, seed=1))
    assert dataset.notes["channels"] == 1
    assert (dataset.notes["train_images"], dataset.notes["validation_images"]) == (4, 1)
    assert dataset.train.dtype == np.uint8 and dataset.train.shape[1:] == (16, 16, 1)
    # 40x48 has 3x3 grid cells at stride 16 (edges included); so few patches that the stride is halved to 8
    assert dataset.notes["patch_stride"] == 8
    assert len(dataset.train) == 4 * len(folder.grid_starts(40, 16, 8)) * len(folder.grid_starts(48, 16, 8))
    assert [image.shape for image in dataset.validation] == [(40, 48, 1)]


def test_split_is_by_image_seeded_and_keeps_one_each_side():
    images = [(str(i), np.full((4, 4, 1), i, np.uint8)) for i in range(5)]
    train, validation = folder.split_images(images, 0.01, seed=3)
    assert len(validation) == 1 and len(train) == 4
    assert folder.split_images(images, 0.01, seed=3) == (train, validation)
    assert folder.split_images(images, 0.99, seed=3)[0] != []
    assert folder.split_images(images, 1.0, seed=3) == ([], images)
    assert folder.split_images(images[:1], 0.5, seed=3) == (images[:1], [])


def test_validation_fraction_one_gives_only_validation(gray_tree):
    dataset = folder.load_folder(LoadRequest(path=gray_tree, validation_fraction=1.0))
    assert len(dataset.train) == 0 and len(dataset.validation) == 5


def test_colour_if_any_image_is_colour_and_channels_override(tmp_path):
    root = tmp_path / "mixed"
    save(root / "gray.png", gradient(32, 32, False))
    save(root / "sub" / "colour.jpg", gradient(32, 32, True), quality=95)
    save(root / "sub" / "colour.webp", gradient(32, 32, True), lossless=True)
    dataset = folder.load_folder(LoadRequest(path=root, validation_fraction=0.0))
    assert dataset.notes["channels"] == 3 and dataset.train.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(dataset.train[0][..., 0], gradient(32, 32, False))  # gray repeated
    np.testing.assert_array_equal(dataset.train[2], gradient(32, 32, True))  # lossless WebP kept exactly
    gray = folder.load_folder(LoadRequest(path=root, channels=1, validation_fraction=0.0))
    assert gray.train.shape == (3, 32, 32, 1)


def test_big_validation_images_are_centre_cropped_with_patches(tmp_path):
    save(tmp_path / "one.png", gradient(300, 400, True))
    save(tmp_path / "two.png", gradient(300, 400, True))
    dataset = folder.load_folder(LoadRequest(path=tmp_path, patch_size=16, validation_fraction=0.5))
    assert [image.shape for image in dataset.validation] == [(256, 256, 3)]
    assert dataset.notes["patch_stride"] == 16  # 19x25 grid cells are plenty, so no overlap
    assert dataset.train.shape == (19 * 25, 16, 16, 3)
    whole = folder.load_folder(LoadRequest(path=tmp_path, validation_fraction=1.0))
    assert [image.shape for image in whole.validation] == [(300, 400, 3)] * 2


def test_images_smaller_than_the_patch_are_skipped_and_noted(tmp_path):
    save(tmp_path / "big.png", gradient(32, 32, False))
    save(tmp_path / "tiny.png", gradient(8, 50, False))
    dataset = folder.load_folder(LoadRequest(path=tmp_path, patch_size=16, validation_fraction=0.0))
    assert dataset.notes["skipped_too_small"] == ["tiny.png"]
    assert dataset.train.shape[1:] == (16, 16, 1)
    with pytest.raises(DatasetError, match=r"at least 64x64 pixels.*smaller --patch-size"):
        folder.load_folder(LoadRequest(path=tmp_path, patch_size=64, validation_fraction=0.0))


def test_whole_train_images_of_different_sizes_ask_for_patches(tmp_path):
    save(tmp_path / "a.png", gradient(32, 32, False))
    save(tmp_path / "b.png", gradient(32, 40, False))
    with pytest.raises(DatasetError, match=r"differ in size.*--patch-size"):
        folder.load_folder(LoadRequest(path=tmp_path, validation_fraction=0.0))


def test_limit_caps_source_images(gray_tree):
    dataset = folder.load_folder(LoadRequest(path=gray_tree, limit=2, validation_fraction=1.0))
    assert dataset.notes["images"] == 2 and len(dataset.validation) == 2


def test_unreadable_file_is_skipped_with_a_note(gray_tree):
    (gray_tree / "nested" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    dataset = folder.load_folder(LoadRequest(path=gray_tree, validation_fraction=1.0))
    assert len(dataset.validation) == 5
    (skipped,) = dataset.notes["skipped_unreadable"]
    assert "nested/broken.png" in skipped


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    wide = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369)  # 0 .. 65535
    Image.fromarray(wide).save(tmp_path / "wide.png")
    dataset = folder.load_folder(LoadRequest(path=tmp_path, validation_fraction=1.0))
    np.testing.assert_array_equal(dataset.validation[0][..., 0], (wide // 257).astype(np.uint8))


def test_empty_or_unusable_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(DatasetError, match=f"No images were found in {tmp_path}"):
        folder.load_folder(LoadRequest(path=tmp_path))
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(DatasetError, match=f"None of the 1 image files in {tmp_path} could be read: .*bad.jpg"):
        folder.load_folder(LoadRequest(path=tmp_path))


def test_missing_path_is_an_error():
    with pytest.raises(DatasetError, match="--path"):
        folder.load_folder(LoadRequest())
