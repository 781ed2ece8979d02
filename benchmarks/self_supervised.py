"""Self-supervised training (`denoise train --target self`) against supervised training, at equal steps.

Two models train for the same steps on the same images: one on the clean images with fresh noise every step
(supervised), one on a single fixed noisy copy of each image, never seeing a clean one (--self-method). Both are
then scored by `denoise eval` on test images with seeded noise of the same kind. From scratch:

    python benchmarks/self_supervised.py --train ../shared/data/train400 --test ../shared/data/set12 \\
        --work /path/to/scratch --noise gaussian:25 --epochs 20 --steps 100

With --init-from MODEL both runs fine-tune that model instead (adapting it to a noise it was not trained for), and
the model as it was is scored too; the share of its gap to the supervised fine-tune that self-supervision recovers
is printed:

    python benchmarks/self_supervised.py --train ../shared/data/train400 --test ../shared/data/set12 \\
        --work /path/to/scratch --noise poisson:30 --init-from gaussian-gray --epochs 10 --steps 100

Add --channels 3 (and colour --train/--test folders, e.g. cbsd432 and cset5) for colour. Everything runs through
the `denoise` command, as a user would run it; finished models in --work are reused, so a rerun only scores them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from denoise.io.images import IMAGE_SUFFIXES


def denoise(*args: str) -> str:
    """Run the denoise command; its stdout, or exit with its stderr."""
    done = subprocess.run(["denoise", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"denoise {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def psnr_of(model: Path, test: Path, noise: str, channels: int) -> tuple[float, float]:
    """(noisy, denoised) mean PSNR from `denoise eval`."""
    out = denoise("eval", str(model), "--path", str(test), "--noise", noise, "--channels", str(channels),
                  "--precision", "float32")
    noisy = float(re.search(r"noisy input\s*:\s*PSNR\s+([\d.]+)", out).group(1))
    denoised = float(re.search(r"denoised\s*:\s*PSNR\s+([\d.]+)", out).group(1))
    return noisy, denoised


def clipping_bias(model: Path, test: Path, noise: str, channels: int) -> tuple[float, float]:
    """The mean signed error (of 255) of the model's outputs where the clean test images are dark (at most DARK)
    and where they are light (at least LIGHT), the same seeded noise as `denoise eval`'s. A model that learnt the
    mean of clipped noisy pixels rather than the true value leaves black too light (+) and white too dark (-)."""
    import numpy as np

    import denoise as api

    images = [np.asarray(Image.open(path).convert("L" if channels == 1 else "RGB"))
              for path in sorted(test.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]
    errors: dict[str, list[np.ndarray]] = {"dark": [], "light": []}

    def collect(score, noisy, denoised):
        clean = images[score.index].reshape(denoised.shape).astype(np.float32)
        error = (denoised * 255.0 - clean)
        errors["dark"].append(error[clean <= DARK])
        errors["light"].append(error[clean >= LIGHT])

    api.evaluate(str(model), images, noise, on_image=collect)
    return tuple(float(np.mean(np.concatenate(errors[side]))) for side in ("dark", "light"))


DARK, LIGHT = 25, 230  # of 255: within one sigma-25 noise's reach of black and white


def lossless(folder: Path, work: Path) -> Path:
    """The clean images to add noise to: `folder` when its images are all PNG, else PNG copies of them under
    `work`. `denoise noise` keeps each file's format, and JPEG would compress the added noise: the
    self-supervised run would learn a different noise from the one it is scored on."""
    files = [path for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]
    if all(path.suffix.lower() == ".png" for path in files):
        return folder
    copies = work / f"{folder.name}-png"
    copies.mkdir(parents=True, exist_ok=True)
    for path in files:
        if not (copies / f"{path.stem}.png").exists():
            with Image.open(path) as image:
                image.save(copies / f"{path.stem}.png")
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="clean training images")
    parser.add_argument("--test", type=Path, required=True, help="clean test images (noise is added by eval)")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder: noisy copies and the models")
    parser.add_argument("--noise", default="gaussian:25", help="one noise spec, as denoise noise takes it")
    parser.add_argument("--init-from", help="fine-tune this model (a file or a shipped model's name)")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed of both runs (weights, patches, noise draws); the noisy copies stay fixed. "
                             "Single runs vary by about 0.2 dB: rerun with a few seeds and quote the median")
    parser.add_argument("--patch-size", type=int, default=64, help="the patches supervised training learns from")
    parser.add_argument("--self-method", default="recorrupt", choices=("recorrupt", "neighbours"),
                        help="how the self-supervised run learns (denoise train --self-method)")
    parser.add_argument("--self-patch-size", type=int,
                        help="the noisy patches of self-supervised training (default: --patch-size, or twice it with "
                             "neighbours, so that its half-size sub-images are as large as the supervised patches)")
    args = parser.parse_args()

    noise = args.noise
    halves = args.self_method == "neighbours"
    self_patch = args.self_patch_size or (2 if halves else 1) * args.patch_size
    args.work.mkdir(parents=True, exist_ok=True)
    noisy_train = args.work / f"noisy-train-{noise.replace(':', '-')}"
    if not noisy_train.exists():  # one fixed noisy copy of each training image: all that self-supervision sees
        denoise("noise", str(lossless(args.train, args.work)), str(noisy_train), "--noise", noise, "--seed", "1", "-q")
    common = ["--dataset", "folder", "--channels", str(args.channels),
              "--batch-size", str(args.batch_size), "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps),
              "--seed", str(args.seed)]
    common += ["--init-from", args.init_from] if args.init_from else ["--arch", "unet", "--width", str(args.width),
                                                                      "--depth", "3"]
    runs = {
        "supervised (clean targets)": (args.train, ["--noise", noise, "--patch-size", str(args.patch_size)]),
        "self-supervised (noisy only)": (noisy_train, ["--target", "self", "--self-method", args.self_method,
                                                       "--patch-size", str(self_patch)]),
    }
    scores, models = {}, {}
    if args.init_from:
        models[f"{args.init_from} as it is"] = args.init_from
        scores[f"{args.init_from} as it is"] = psnr_of(Path(args.init_from), args.test, noise, args.channels)
    start = Path(args.init_from).stem if args.init_from else "scratch"
    for name, (data, options) in runs.items():
        # "self" names the Neighbor2Neighbor models, as before recorruption existed, so earlier runs are reused
        kind = ("self" if halves else "recorrupt") if "self" in name else "supervised"
        patch = self_patch if kind == "self" else args.patch_size
        seeded = f"-seed{args.seed}" if args.seed else ""  # seed 0 keeps the names of runs made before --seed
        model = args.work / f"{kind}-{start}-{noise.replace(':', '-')}-{args.channels}-{patch}{seeded}.keras"
        if not model.exists():
            denoise("train", "--path", str(data), *common, *options, "--out", str(model))
        scores[name], models[name] = psnr_of(model, args.test, noise, args.channels), model
    model = f"fine-tuning {args.init_from}" if args.init_from else f"U-Net width {args.width} from scratch"
    print(f"{args.test.name}, {noise}, {args.epochs} x {args.steps} steps of {args.batch_size} "
          f"{args.patch_size}x{args.patch_size} patches ({self_patch}x{self_patch} noisy ones for self-supervision "
          f"by {args.self_method}{', halved' if halves else ''}), {model}, seed {args.seed}; PSNR dB")
    noisy = next(iter(scores.values()))[0]
    print(f"  {'noisy input':<30} {noisy:6.2f}   mean error where the clean image is dark / light (of 255)")
    for name, (_, denoised) in scores.items():
        dark, light = clipping_bias(models[name], args.test, noise, args.channels)
        print(f"  {name:<30} {denoised:6.2f}   {dark:+.2f} / {light:+.2f}")
    supervised, self_supervised = scores["supervised (clean targets)"][1], scores["self-supervised (noisy only)"][1]
    print(f"  self-supervised trails supervised by {supervised - self_supervised:.2f} dB")
    if args.init_from:
        before = scores[f"{args.init_from} as it is"][1]
        share = (self_supervised - before) / (supervised - before) if supervised != before else float("nan")
        print(f"  self-supervision recovers {share:.0%} of the gap between {args.init_from} and the supervised "
              "fine-tune")


if __name__ == "__main__":
    main()
