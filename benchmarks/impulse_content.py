"""Salt-and-pepper noise on mostly black and white content: noisy input, adaptive median and `denoise run`'s path.

Generated digits (MNIST-like white strokes on black), scanned-like line art (black text and lines on white paper,
gray rims) and bilevel text (pure black and white), and optionally a folder of clean images (--clean), each at
10/20/30/50% salt-and-pepper, rounded to 8 bits. Rows: the noisy input, the adaptive median filter (up to 7x7,
benchmarks/quality.py), the shipped models with the noise detected per image (as `denoise run`) and with
`--noise salt-and-pepper` forced; the share of images detected as salt-and-pepper. PSNR dB, mean over images.

    python benchmarks/impulse_content.py                               # generated content only
    python benchmarks/impulse_content.py --clean ../shared/data/set12  # and a folder of photos
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from quality import adaptive_median, read_folder  # noqa: E402

from denoise.evaluation import psnr  # noqa: E402
from denoise.inference.settings import RunSettings  # noqa: E402
from denoise.noise.detection import detect_noise_kind  # noqa: E402
from denoise.noise.specs import SALT_AND_PEPPER, add_noise, parse_noise  # noqa: E402
from tests.factories import digit_like_images, line_art_images  # noqa: E402

DENSITIES = (0.1, 0.2, 0.3, 0.5)


def generated(digits: int, pages: int) -> dict[str, list[np.ndarray]]:
    return {f"digits ({digits} x 28x28)": [d.astype(np.float32) / 255 for d in digit_like_images(digits, seed=1)],
            f"line art ({pages} x 128x128)": line_art_images(pages, size=128, seed=1),
            f"bilevel text ({pages} x 128x128)": line_art_images(pages, size=128, seed=1, binary=True)}


def table(name: str, clean: list[np.ndarray], denoisers: dict) -> None:
    print(f"\n{name}")
    print(f"{'density':<9}{'noisy':>8}{'adaptive median':>17}{'detected':>10}{'forced':>9}  detected as s&p")
    for amount in (0.0,) + DENSITIES:
        rng = np.random.default_rng(0)
        spec = parse_noise(f"salt-and-pepper:{amount}")
        noisy = [np.round(add_noise(c, spec, rng) * 255).astype(np.float32) / 255 for c in clean]
        score = lambda outputs: np.mean([psnr(c, o) for c, o in zip(clean, outputs)])  # noqa: E731
        rows = [score(noisy) if amount else float("inf"), score([adaptive_median(n) for n in noisy])]
        rows += [score(d([n.copy() for n in noisy])) for d in denoisers.values()]
        found = np.mean([detect_noise_kind(n) == SALT_AND_PEPPER for n in noisy])
        cells = "".join(f"{v:>{w}.2f}" for v, w in zip(rows, (8, 17, 10, 9)))
        print(f"{'clean' if not amount else f'{amount:.0%}':<9}{cells}  {found:.0%}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, help="also a folder of clean images (e.g. Set12)")
    parser.add_argument("--digits", type=int, default=300, help="how many generated digits")
    parser.add_argument("--pages", type=int, default=12, help="how many generated line-art and bilevel pages")
    parser.add_argument("--precision", default="auto", help="as denoise run --precision")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from denoise.inference.shipped import DefaultDenoiser

    denoisers = {"detected": DefaultDenoiser(settings=RunSettings(precision=args.precision)),
                 "forced": DefaultDenoiser(settings=RunSettings(precision=args.precision), noise_kind=SALT_AND_PEPPER)}
    sets = generated(args.digits, args.pages)
    if args.clean:
        images = list(read_folder(args.clean).values())
        sets[f"{args.clean.name} ({len(images)} images)"] = images
    print("PSNR dB, mean over images; 'detected': the shipped models picked per image as `denoise run` does; "
          "'forced': `denoise run --noise salt-and-pepper`")
    for name, clean in sets.items():
        table(name, clean, denoisers)


if __name__ == "__main__":
    main()
