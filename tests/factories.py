"""Small real images and models for tests, made on the spot (no binary fixtures, no network)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def smooth_image(height: int, width: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A uint8 HxWxC image with gradients, blobs and edges: structure a denoiser can learn to keep."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    planes = []
    for _ in range(channels):
        plane = rng.uniform(0.2, 0.8) + 0.3 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y))
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        plane = np.where((y - cy) ** 2 + (x - cx) ** 2 < r * r, plane * 0.5, plane)
        planes.append(plane)
    return (np.clip(np.stack(planes, axis=-1), 0, 1) * 255).round().astype(np.uint8)


def write_image_folder(folder: Path, count: int, size=(48, 48), channels: int = 1, suffix=".png") -> list[Path]:
    """Write `count` smooth images into folder; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        pixels = smooth_image(size[0], size[1], channels, seed=index)
        path = folder / f"image{index:03d}{suffix}"
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(path)
        paths.append(path)
    return paths


def tiny_unet(channels: int = 1, width: int = 4, depth: int = 2, seed: int = 0):
    """A real, untrained U-Net small enough to build and run in well under a second."""
    import keras

    from denoise.nn.architectures import build_model

    keras.utils.set_random_seed(seed)
    return build_model("unet", channels, width=width, depth=depth)


def digit_like_images(count: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """(count, size, size, 1) uint8 images like MNIST digits: white strokes on a black background, soft edges.

    Two to four random line and arc strokes per image, drawn 4x larger and scaled down, so most pixels are pure
    black (0) or pure white (255) with a rim of gray, as in MNIST. Content like this is what an impulse detector
    must not take for salt-and-pepper noise.
    """
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    scale = 4
    images = np.zeros((count, size, size, 1), np.uint8)
    for index in range(count):
        canvas = Image.new("L", (size * scale, size * scale), 0)
        draw = ImageDraw.Draw(canvas)
        lo, hi = 0.2 * size * scale, 0.8 * size * scale
        for _ in range(int(rng.integers(2, 5))):
            box = sorted(rng.uniform(lo, hi, 2)), sorted(rng.uniform(lo, hi, 2))
            width = int(rng.integers(2, 4)) * scale
            if rng.random() < 0.5:
                draw.line([(box[0][0], box[1][0]), (box[0][1], box[1][1])], fill=255, width=width)
            else:
                start = float(rng.uniform(0, 360))
                draw.arc([box[0][0], box[1][0], box[0][1] + scale * 4, box[1][1] + scale * 4], start,
                         start + float(rng.uniform(120, 300)), fill=255, width=width)
        small = canvas.resize((size, size), Image.Resampling.BOX)
        # MNIST's strokes saturate: stretch the stroke cores to pure white, as its scanning and normalising did.
        images[index, ..., 0] = np.clip(np.asarray(small, np.float32) * 1.6, 0, 255).round().astype(np.uint8)
    return images


def line_art_images(count: int, size: int = 96, seed: int = 0, binary: bool = False) -> list[np.ndarray]:
    """HxWx1 float32 images in [0, 1] like scanned pages: black text, lines and boxes on white paper.

    Drawn 4x larger and scaled down, so strokes have a gray rim as a scan's do; binary=True draws at full size and
    thresholds, as a fax or a bilevel TIFF has it. Content like this is mostly pure black and white.
    """
    from PIL import ImageDraw, ImageFont

    words = "the quick brown fox jumps over a lazy dog scan page note line art 0123456789 invoice total".split()
    rng = np.random.default_rng(seed)
    scale = 1 if binary else 4
    images = []
    for _ in range(count):
        canvas = Image.new("L", (size * scale, size * scale), 255)
        draw = ImageDraw.Draw(canvas)
        y = int(rng.integers(2, 10)) * scale
        while y < (size - 20) * scale:
            font_size = int(rng.integers(10, 18))
            font = ImageFont.load_default(size=font_size * scale)
            draw.text((int(rng.integers(2, 10)) * scale, y), " ".join(rng.choice(words, 4)), fill=0, font=font)
            y += int(font_size * 1.5) * scale
        for _ in range(int(rng.integers(2, 5))):
            (x0, y0), (x1, y1) = (rng.uniform(0, size * scale, 2).tolist() for _ in range(2))
            width = int(rng.integers(1, 3)) * scale
            if rng.random() < 0.5:
                draw.line([(x0, y0), (x1, y1)], fill=0, width=width)
            else:
                draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=0, width=width)
        if scale > 1:
            canvas = canvas.resize((size, size), Image.Resampling.BOX)
        pixels = np.asarray(canvas, np.float32)
        if binary:
            pixels = np.where(pixels >= 128, 255.0, 0.0).astype(np.float32)
        images.append(pixels[..., None] / 255)
    return images


def mnist_cache(keras_home: Path) -> None:
    """MNIST as Keras' .npz and Fashion-MNIST as IDX files, where Keras' downloader would have put them."""
    train, test = digit_like_images(64, seed=1)[..., 0], digit_like_images(8, seed=2)[..., 0]
    (keras_home / "datasets" / "fashion-mnist").mkdir(parents=True)
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=train, x_test=test)
    for stem, images in (("train-images-idx3-ubyte", train), ("t10k-images-idx3-ubyte", test)):
        header = struct.pack(">IIII", 0x803, *images.shape)
        (keras_home / "datasets" / "fashion-mnist" / f"{stem}.gz").write_bytes(
            gzip.compress(header + images.tobytes()))
