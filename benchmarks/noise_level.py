"""The noise level self-supervised training measures (noise/level.py), against the true one, at each brightness.

`denoise train --target self` measures how strong the noise of its noisy training images is at each brightness,
and recorruption adds noise of exactly that strength: too much and the model learns to smooth too much, too little
and it learns to keep part of the noise. This adds seeded noise to clean images (rounded to 8 bits, as files are),
measures it from the noisy images alone, and prints, per brightness group, the measured sigma beside the true one
(the spread of noisy - clean over the unclipped pixels whose clean value lies in that group):

    python benchmarks/noise_level.py --clean ../shared/data/train400 --noise camera:0.5 --noise poisson:30 \\
        --noise gaussian:25

--selected overrides the fraction of the flattest blocks of each brightness group the estimate measures
(level.SELECTED).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from quality import read_folder  # benchmarks/ is on the path when this script runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="folder of clean images")
    parser.add_argument("--noise", action="append", required=True, help="a noise spec (camera:0.5); repeatable")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--crop", type=int, help="cut every image to its centre crop x crop (default: the smallest)")
    parser.add_argument("--selected", type=float, help="the fraction of flattest blocks measured (default: level.py's)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from denoise.api import add_noise
    from denoise.io.images import array_to_uint8
    from denoise.noise import level

    if args.selected is not None:
        level.SELECTED = args.selected
    images = read_folder(args.clean, args.channels).values()
    clean = centre_crops([array_to_uint8(image) for image in images], args.crop)
    print(f"{args.clean.name}: {len(clean)} images of {clean.shape[1]}x{clean.shape[2]}, {args.channels} channel(s), "
          f"flattest {level.SELECTED:.0%} of blocks measured; sigma of 255")
    for spec in args.noise:
        noisy = np.stack([add_noise(image, spec, seed=[args.seed, index]) for index, image in enumerate(clean)])
        measured = level.estimate_noise_level(noisy)
        spread = "white" if measured.kernel is None else "spread"
        print(f"{spec} (measured as {spread})")
        print(f"  {'brightness':<12} {'true':>6} {'measured':>9} {'ratio':>6}")
        for centre in measured.brightness:
            true = true_sigma(clean, noisy, centre)
            estimate = float(measured.sigma_at(centre)) * 255
            print(f"  {centre:<12.2f} {true:6.2f} {estimate:9.2f} {estimate / true:6.2f}")


def centre_crops(images: list[np.ndarray], crop: int | None) -> np.ndarray:
    """The images cut to their centre crop x crop (the smallest image's size by default), stacked."""
    height = crop or min(image.shape[0] for image in images)
    width = crop or min(image.shape[1] for image in images)
    crops = []
    for image in images:
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        if top < 0 or left < 0:
            continue  # smaller than --crop
        crops.append(image[top : top + height, left : left + width])
    return np.stack(crops)


def true_sigma(clean: np.ndarray, noisy: np.ndarray, centre: float, half_width: float = 1 / 16) -> float:
    """The spread (of 255) of noisy - clean over the pixels neither black nor white whose clean value is within
    half_width of centre (0-1)."""
    values = clean.astype(np.float64) / 255
    chosen = (np.abs(values - centre) < half_width) & (noisy > 0) & (noisy < 255)
    return float(np.std(noisy[chosen].astype(np.float64) - clean[chosen]))


if __name__ == "__main__":
    main()
