"""Write the 50 MP test photo of docs/performance.md's Memory section, as PNG and as JPEG.

samples/clean/astronaut.png enlarged to 8660x5774 (bicubic), with Gaussian noise of sigma 15 (seeded), rounded to 8
bits: OUT/png/huge.png (compress level 1) and OUT/jpg/huge.jpg (quality 92). Then, for example:

    python benchmarks/huge_photo.py /tmp/huge
    /usr/bin/time -v denoise run /tmp/huge/png -o /tmp/huge-out --noise gaussian -q   # "Maximum resident set size"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "clean" / "astronaut.png"
SIZE = (8660, 5774)  # width, height: 50 MP, a 3:2 sensor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write png/huge.png and jpg/huge.jpg into")
    parser.add_argument("--sigma", type=float, default=15.0, help="Gaussian noise, 0-255 scale")
    args = parser.parse_args()
    pixels = np.asarray(Image.open(SAMPLE).convert("RGB").resize(SIZE, Image.BICUBIC), np.float32)
    rng = np.random.default_rng(0)
    for top in range(0, pixels.shape[0], 512):  # in bands: a full-size noise array would double the memory
        band = pixels[top : top + 512]
        band += rng.normal(0, args.sigma, band.shape).astype(np.float32)
    photo = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    for kind, options in (("png", {"compress_level": 1}), ("jpg", {"quality": 92})):
        (args.out / kind).mkdir(parents=True, exist_ok=True)
        photo.save(args.out / kind / f"huge.{kind}", **options)
        print(args.out / kind / f"huge.{kind}")


if __name__ == "__main__":
    main()
