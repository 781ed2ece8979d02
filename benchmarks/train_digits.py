"""Train each architecture on 28x28 digits and print what it learnt: validation PSNR against the noisy input.

Without --mnist it writes MNIST-format files of generated digit-like images (white strokes on black, the generator
the tests use: tests/factories.py), so it runs offline; with --mnist DIR it reads the real IDX or .npz files there.

    python benchmarks/train_digits.py --arch conv --arch unet --sigma 25 --sigma 50 --epochs 12 --batch-size 8

Prints one row per (architecture, sigma): noisy and denoised validation PSNR, and whether the output collapsed to a
constant image. Trained models are written to --work (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_digits(folder: Path, train: int, test: int) -> None:
    """MNIST-format IDX files of generated digit-like images."""
    sys.path.insert(0, str(REPO / "tests"))
    from factories import digit_like_images

    folder.mkdir(parents=True, exist_ok=True)
    for stem, images in (("train-images-idx3-ubyte", digit_like_images(train, seed=1)[..., 0]),
                         ("t10k-images-idx3-ubyte", digit_like_images(test, seed=2)[..., 0])):
        header = struct.pack(">IIII", 0x803, *images.shape)
        (folder / f"{stem}.gz").write_bytes(gzip.compress(header + images.tobytes()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, help="a folder with the real MNIST (or Fashion-MNIST) files")
    parser.add_argument("--arch", action="append", help="architectures (default: unet and conv)")
    parser.add_argument("--sigma", action="append", type=float, help="Gaussian sigmas (default: 25 and 50)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--train-images", type=int, default=2000, help="generated digits to train on")
    parser.add_argument("--work", type=Path, default=None, help="where data and models go (default: a temp folder)")
    args = parser.parse_args()

    from denoise.noise.specs import parse_noise
    from denoise.runtime import start_tensorflow

    start_tensorflow()
    from denoise.training.trainer import TrainConfig, train

    work = args.work or Path(tempfile.mkdtemp(prefix="denoise-digits-"))
    data = args.mnist
    if data is None:
        data = work / "digits"
        write_digits(data, args.train_images, 200)
    print(f"{'arch':<6} {'sigma':>5} {'epochs':>6} {'noisy dB':>9} {'denoised dB':>12}  collapsed")
    for arch in args.arch or ["unet", "conv"]:
        for sigma in args.sigma or [25.0, 50.0]:
            config = TrainConfig(dataset="mnist", data_path=data, noise=parse_noise(f"gaussian:{sigma:g}"),
                                 out=work / f"{arch}-{sigma:g}.keras", arch=arch, epochs=args.epochs,
                                 batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch, overwrite=True)
            result = train(config)
            best = max(result.history, key=lambda report: report.denoised_psnr)
            print(f"{arch:<6} {sigma:>5g} {result.epochs_done:>6} {best.noisy_psnr:>9.2f} {best.denoised_psnr:>12.2f}  "
                  f"{'yes' if best.collapsed else 'no'}", flush=True)


if __name__ == "__main__":
    main()
