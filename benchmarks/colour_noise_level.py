"""Colour photos through a gray model: the noise level read off the model's residual, against the true one.

The opponent colour path (denoise/inference/channels.py) undoes the clipping bias with a sigma it measures itself,
since the user gives none. This prints, per --noise level, the sigma it measured on each image and the mean PSNR
with that sigma beside the PSNR with the true sigma, on the same noisy images (seeded, rounded to 8 bits like files):

    python benchmarks/colour_noise_level.py --clean ../shared/data/cset5 --noise 5 --noise 15 --noise 25 --noise 50

--model defaults to the shipped model for colour photos.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from unittest import mock

import numpy as np
from quality import read_folder  # benchmarks/ is on the path when this script runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="folder of clean colour images")
    parser.add_argument(
        "--noise", type=float, action="append", required=True, help="Gaussian sigma (0-255); repeatable"
    )
    parser.add_argument("--model", type=Path, help="a blind gray Gaussian .keras model (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import denoise.inference.channels as channels
    from denoise.evaluation import noisy_copies, psnr
    from denoise.inference.denoiser import load_denoiser
    from denoise.inference.settings import RunSettings
    from denoise.inference.shipped import default_model_path
    from denoise.noise.specs import parse_noise

    denoiser = load_denoiser(args.model or default_model_path(3, "gaussian"), RunSettings(precision="auto"))
    if not denoiser.opponent:
        parser.error(f"{args.model} does not clean colour images in the opponent space (a blind gray model does)")
    clean = list(read_folder(args.clean).values())  # the same images, in the same order, as quality.py reads
    measure = channels.noise_sigma
    print(f"{len(clean)} images from {args.clean}; PSNR dB")
    for sigma in args.noise:
        noisy = [np.round(n * 255) / 255 for n in noisy_copies(clean, parse_noise(f"gaussian:{sigma:g}"), args.seed)]
        measured: list[float] = []

        def spy(before, after):  # called within this loop turn only
            measured.append(measure(before, after))  # noqa: B023
            return measured[-1]  # noqa: B023

        with mock.patch.object(channels, "noise_sigma", spy):
            estimated = [psnr(c, denoiser([n.astype(np.float32)])[0]) for c, n in zip(clean, noisy)]
        with mock.patch.object(channels, "noise_sigma", lambda before, after: sigma / 255):  # noqa: B023
            true = [psnr(c, denoiser([n.astype(np.float32)])[0]) for c, n in zip(clean, noisy)]
        worst = np.abs(np.array(estimated) - np.array(true)).max()
        print(
            f"sigma {sigma:g}: measured {' '.join(f'{m * 255:.1f}' for m in measured)} "
            f"| with it {np.mean(estimated):.3f}"
            f" | with the true sigma {np.mean(true):.3f} | difference {np.mean(estimated) - np.mean(true):+.3f}"
            f" (largest per image {worst:.3f})"
        )


if __name__ == "__main__":
    main()
