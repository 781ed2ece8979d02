"""Which kind of noise `denoise run` detects for each kind of noise added to clean colour photos, and why.

For each case (clean, JPEG only, Gaussian, camera noise with and without JPEG, white noise spread over 2x2 pixels),
the noisy 8-bit images are read by detection.detect_noise_kind as `denoise run` does; printed are the share detected
as each kind and the range (min / median / max) of the colour differences' noise after 2x2 binning over before
(detection.whiteness: about 0.5 for white noise).

    python benchmarks/noise_kinds.py --clean ../shared/data/cbsd432 --count 10
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from denoise.io.images import IMAGE_SUFFIXES  # noqa: E402
from denoise.noise.detection import detect_noise_kind, whiteness  # noqa: E402
from denoise.noise.specs import (  # noqa: E402
    CAMERA,
    GAUSSIAN,
    SALT_AND_PEPPER,
    add_noise,
    parse_noise,
)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer), np.float32) / 255


def blocky(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of this sigma, one value per 2x2 block of pixels (noise correlated over 2x2 pixels)."""
    height, width = -(-image.shape[0] // 2), -(-image.shape[1] // 2)
    noise = rng.standard_normal((height, width, image.shape[-1])).astype(np.float32) * sigma / 255
    return image + np.repeat(np.repeat(noise, 2, 0), 2, 1)[: image.shape[0], : image.shape[1]]


def cases() -> dict:
    def spec(text):
        return lambda image, rng: add_noise(image, parse_noise(text), rng)

    found = {"clean": lambda image, rng: image, "JPEG q75 only": lambda image, rng: jpeg(image, 75)}
    found.update({f"gaussian:{s}": spec(f"gaussian:{s}") for s in (3, 5, 15, 25, 50)})
    found.update({f"camera:{t}": spec(f"camera:{t}") for t in (0, 0.25, 0.5, 0.75, 1)})
    found.update({f"camera-jpeg:{t}": spec(f"camera-jpeg:{t}") for t in (0, 0.5, 1)})
    found.update({f"2x2 blocks, sigma {s}": (lambda s: lambda image, rng: blocky(image, s, rng))(s) for s in (5, 10)})  # noqa: B023 - bound by the outer lambda
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="a folder of clean colour photos")
    parser.add_argument("--count", type=int, default=10, help="use every n-th image, this many in all")
    parser.add_argument("--size", type=int, default=320, help="crop each image to at most this many pixels a side")
    args = parser.parse_args(argv)
    files = sorted(path for path in args.clean.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    files = files[:: max(1, len(files) // args.count)][: args.count]
    clean = [np.asarray(Image.open(f).convert("RGB"), np.float32)[: args.size, : args.size] / 255 for f in files]
    print(f"{len(clean)} images of {args.clean}, at most {args.size}x{args.size}")
    print(f"{'case':<22}{'gaussian':>9}{'camera':>8}{'s&p':>6}   binned/full min / median / max")
    for name, make in cases().items():
        rng = np.random.default_rng(0)
        noisy = [np.round(np.clip(make(image, rng), 0, 1) * 255).astype(np.float32) / 255 for image in clean]
        kinds = Counter(detect_noise_kind(image) for image in noisy)
        ratios = [binned / full if full > 0 else float("nan") for full, binned in map(whiteness, noisy)]
        shares = "".join(f"{kinds[kind] / len(noisy):>{w}.0%}" for kind, w in ((GAUSSIAN, 9), (CAMERA, 8),
                                                                            (SALT_AND_PEPPER, 6)))
        low, middle, high = np.nanpercentile(ratios, [0, 50, 100])
        print(f"{name:<22}{shares}   {low:.2f} / {middle:.2f} / {high:.2f}", flush=True)


if __name__ == "__main__":
    main()
