"""How far tiled cleaning is from cleaning the whole image at once, per shipped model and tile margin.

Each model cleans a noisy crop of a sample image whole, then in small tiles (so that seams cross the whole crop)
with each margin; the script prints how many pixels of the tiled output differ from the whole one and by how many
8-bit levels at most. A margin wider than the model's receptive field gives 0 / 0.

    python benchmarks/tile_seams.py --tile 32 --margins 64,80,96
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import denoise
from denoise.inference.settings import RunSettings

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "clean"
CASES = (("gaussian", "camera.png", "gaussian:20"), ("gaussian", "astronaut.png", "gaussian:20"),
         ("camera-colour", "astronaut.png", "camera:0.5"), ("impulse-gray", "camera.png", "salt-and-pepper:0.1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=32, help="tile core side (small, so seams cross the crop)")
    parser.add_argument("--margins", default="64,80,96", help="comma-separated margins to try")
    parser.add_argument("--size", type=int, default=300, help="side of the crop of each sample")
    args = parser.parse_args()
    print(f"{args.size}x{args.size} crops, tiles of {args.tile} px; pixels that differ from the whole-image output "
          "(share, and the largest difference in 8-bit levels); margins are rounded up to the model's grid")
    for name, sample, noise in CASES:
        clean = np.asarray(Image.open(SAMPLES / sample).crop((0, 0, args.size, args.size)))
        noisy = denoise.add_noise(clean, noise, seed=0)
        whole = denoise.load_model(name, precision="float32").clean(noisy).astype(int)
        for margin in (int(text) for text in args.margins.split(",")):
            settings = RunSettings(tile=args.tile, margin=margin, precision="float32", reuse_input=True)
            tiled = denoise.load_model(name, settings=settings).clean(noisy).astype(int)
            difference = np.abs(tiled - whole)
            print(f"  {name:<16} {noise:<20} margin {margin:>3}: {np.mean(difference > 0):7.3%} of pixels differ, "
                  f"by at most {difference.max()}")


if __name__ == "__main__":
    main()
