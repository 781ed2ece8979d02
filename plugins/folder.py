"""A folder tree of your own clean images as a dataset.

Rules, in the order they apply:
- Files: every PNG, JPEG, TIFF, BMP and WebP under --path (suffixes in any case), walked in sorted order; hidden
  files and folders (names starting with ".") are left out. Unreadable files are skipped and listed in
  `notes["skipped_unreadable"]`; when nothing usable is left the loader raises DatasetError naming the folder.
  `limit` caps how many readable images are used (the first ones in walk order).
- Channels: `channels` 1 or 3 converts every image. With None, the dataset is colour (3) when any image is stored
  in colour (RGB, RGBA, CMYK, a palette...) and grayscale (1) otherwise, so colour is never thrown away.
  Images are read by denoise.io.images: alpha is dropped, 16-bit is scaled to 8 bits, and EXIF orientation is not
  applied (noise does not care which way up a picture is).
- Split: whole images (never patches of one image) go to train or validation, shuffled by `seed`.
  `validation_fraction` 1.0 puts every image into validation (for `denoise eval`); any other fraction above 0
  keeps at least one image on each side when there are two or more images.
- Train: with `patch_size`, each image is cut into square patches on a grid of stride `patch_size` that also
  touches the right and bottom edges; when that gives fewer than MIN_PATCHES patches the stride is halved.
  Images smaller than the patch are skipped (padding would teach the model invented borders) and listed in
  `notes["skipped_too_small"]`. Without `patch_size` the images are used whole and must share one size.
- Validation: whole images without `patch_size`; with it, centre crops of at most VALIDATION_CROP pixels a side,
  which keeps the per-epoch validation cheap on big photos.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from denoise.datasets import Dataset, LoadRequest
from denoise.errors import DatasetError, ImageError
from denoise.io.images import IMAGE_SUFFIXES, array_to_uint8, read_image

VALIDATION_CROP = 256
MIN_PATCHES = 256

Named = tuple[str, np.ndarray]  # an image and its path relative to the root, for notes and errors


def load_folder(request: LoadRequest) -> Dataset:
    """Your own clean images: every PNG, JPEG, TIFF, BMP or WebP in a folder tree (--path)."""
    root = require_folder(request.path)
    images, unreadable = read_images(root, request.limit)
    if not images:
        raise DatasetError(nothing_usable_message(root, unreadable))
    channels = request.channels or (3 if any(pixels.shape[-1] == 3 for _, pixels in images) else 1)
    images = [(name, to_channels(pixels, channels)) for name, pixels in images]
    train, validation = split_images(images, request.validation_fraction, request.seed)
    notes = {"source": f"folder {root}", "images": len(images), "channels": channels}
    notes.update({"train_images": len(train), "validation_images": len(validation)})
    if unreadable:
        notes["skipped_unreadable"] = unreadable
    train_pixels = make_train(train, request.patch_size, root, notes)
    if request.patch_size is not None:
        validation = [(name, center_crop(pixels, VALIDATION_CROP)) for name, pixels in validation]
    return Dataset(train=train_pixels, validation=[pixels for _, pixels in validation], notes=notes,
                   validation_names=[name for name, _ in validation])


def require_folder(path: Path | None) -> Path:
    """The folder to read, or a DatasetError saying why it cannot be used."""
    if path is None:
        raise DatasetError("The folder dataset needs a folder of clean images: pass it with --path.")
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} is not a folder. Pass a folder of clean images with --path.")
    return path


def find_image_files(root: Path) -> list[Path]:
    """Image files under root by suffix, in sorted walk order, without hidden files or folders."""
    found = []
    for folder, subfolders, files in os.walk(root):  # os.walk does not follow folder symlinks, so no loops
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(folder) / name)
    return found


def read_images(root: Path, limit: int | None) -> tuple[list[Named], list[str]]:
    """Up to `limit` readable images under root, and why each file that could not be read was skipped."""
    images, unreadable = [], []
    for path in find_image_files(root):
        if limit is not None and len(images) >= limit:
            break
        name = path.relative_to(root).as_posix()
        try:
            images.append((name, read_pixels(path)))
        except (ImageError, OSError, ValueError, EOFError, SyntaxError) as exc:  # Pillow's ways to say "damaged"
            unreadable.append(str(exc) if name in str(exc) else f"{name}: {exc}")  # ImageErrors name the file
    return images, unreadable


def read_pixels(path: Path) -> np.ndarray:
    """An image file as HxWx1 (gray) or HxWx3 (colour) uint8; alpha is dropped, 16-bit is scaled to 8-bit."""
    return array_to_uint8(read_image(path).pixels)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """The image with 1 or 3 channels: gray is repeated, colour is mixed to luma as Pillow does."""
    if pixels.shape[-1] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    return np.asarray(Image.fromarray(pixels).convert("L"))[..., np.newaxis]


def split_images(images: list[Named], fraction: float, seed: int) -> tuple[list[Named], list[Named]]:
    """Whole images shuffled by seed into (train, validation), each side kept in walk order."""
    count = len(images)
    if fraction >= 1.0:
        validation_count = count
    elif count < 2 or fraction <= 0.0:
        validation_count = 0
    else:
        validation_count = min(max(round(count * fraction), 1), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    validation = set(order[:validation_count].tolist())
    train = [image for index, image in enumerate(images) if index not in validation]
    return train, [image for index, image in enumerate(images) if index in validation]


def make_train(train: list[Named], patch_size: int | None, root: Path, notes: dict) -> np.ndarray | list:
    """The training images stacked as one array: patches of every image big enough, or the whole images."""
    if not train:
        return []
    if patch_size is None:
        return stack_whole(train, root)
    big_enough = [pixels for _, pixels in train if min(pixels.shape[:2]) >= patch_size]
    too_small = [name for name, pixels in train if min(pixels.shape[:2]) < patch_size]
    if too_small:
        notes["skipped_too_small"] = too_small
    if not big_enough:
        raise DatasetError(
            f"None of the {len(train)} training images in {root} is at least {patch_size}x{patch_size} pixels. "
            "Use a smaller --patch-size or add bigger images."
        )
    dense = count_patches(big_enough, patch_size, patch_size) < MIN_PATCHES  # few images: overlap to get more
    stride = max(1, patch_size // 2) if dense else patch_size
    notes["patch_stride"] = stride
    return np.stack([patch for pixels in big_enough for patch in cut_patches(pixels, patch_size, stride)])


def stack_whole(train: list[Named], root: Path) -> np.ndarray:
    """Whole training images as one array; they must share a size to be batched."""
    sizes = {pixels.shape: name for name, pixels in train}
    if len(sizes) > 1:
        (first, a), (second, b) = list(sizes.items())[:2]
        raise DatasetError(
            f"The images in {root} differ in size ({a} is {first[1]}x{first[0]}, {b} is {second[1]}x{second[0]}), "
            "so they cannot be used whole. Pass --patch-size to cut them into patches."
        )
    return np.stack([pixels for _, pixels in train])


def grid_starts(length: int, size: int, stride: int) -> list[int]:
    """Patch start offsets along one axis; the last patch always ends at the edge so no border is lost."""
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def count_patches(images: list[np.ndarray], size: int, stride: int) -> int:
    """How many patches cut_patches would give for these images."""
    shapes = [image.shape for image in images]
    return sum(len(grid_starts(h, size, stride)) * len(grid_starts(w, size, stride)) for h, w, _ in shapes)


def cut_patches(pixels: np.ndarray, size: int, stride: int) -> list[np.ndarray]:
    """Square size x size patches of one image on a grid of the given stride."""
    height, width = pixels.shape[:2]
    return [
        pixels[top : top + size, left : left + size]
        for top in grid_starts(height, size, stride)
        for left in grid_starts(width, size, stride)
    ]


def center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """The centre of the image, at most size x size."""
    height, width = pixels.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return pixels[top : top + size, left : left + size]


def nothing_usable_message(root: Path, unreadable: list[str]) -> str:
    """Why the folder gave no images, with the first few read errors."""
    if not unreadable:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        return f"No images were found in {root} (looked for {suffixes} in it and its subfolders)."
    shown = "; ".join(reason.rstrip(".") for reason in unreadable[:3])
    shown += f"; and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
    return f"None of the {len(unreadable)} image files in {root} could be read: {shown}."
