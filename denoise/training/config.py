"""What `denoise train` is asked to do, and the checks it passes before TensorFlow is imported or data is read.

Kept free of TensorFlow (and of NumPy) so that a mistyped option costs a fraction of a second, not the seconds of
TensorFlow's import and the minutes of reading a dataset; trainer.py does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from denoise.errors import UsageError
from denoise.io.files import check_writable_folder
from denoise.nn.model_files import check_model_file_name, read_metadata
from denoise.noise.specs import NoiseMix, NoiseSpec
from denoise.runtime import PRECISIONS

ARCHITECTURES = ("unet", "conv", "dense")
LOSSES = ("mse", "psnr")
LR_SCHEDULES = ("cosine", "constant")
CHANNEL_COUNTS = (1, 3)
# What the model learns to give back: the clean images the loader read (noise added on the fly), or, with "self",
# the images as they are, noisy; no clean image is needed.
TARGETS = ("clean", "self")
# How --target self learns from noisy images alone: recorruption (recorrupt.py; the default, chosen by
# benchmarks/self_supervised.py, docs/training.md) or Neighbor2Neighbor (self_supervised.py).
SELF_METHODS = ("recorrupt", "neighbours")
DEFAULT_NOISE = "gaussian:0-50"
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_PATCH_SIZE = 64
# Neighbor2Neighbor halves each patch (self_supervised.py), so its patches are twice as large: the
# network then learns from 64-pixel images either way. At 64 (32-pixel halves) fine-tuning the shipped gray model on
# Poisson noise lost 0.65 dB on Set12; at 128 it gained 1.26 (benchmarks/self_supervised.py, docs/training.md).
SELF_PATCH_SIZE = 2 * DEFAULT_PATCH_SIZE
# Fine-tuning a trained model at the rate that trains one from scratch undoes what it knew: the shipped gray model
# fell from 30.57 to 27.05 dB in its first epoch at 1e-3. The README's fine-tuning recipe measures this rate.
FINE_TUNE_LEARNING_RATE = 1e-4


@dataclass
class TrainConfig:
    """Everything `denoise train` needs; stored in the model's metadata so a run can be reproduced."""

    dataset: str
    noise: NoiseSpec | NoiseMix | None  # a mix: each batch draws one of its specs; None with target "self"
    out: Path
    data_path: Path | None = None
    arch: str | None = None  # None: the --init-from model's architecture, else "unet"
    width: int = 32
    depth: int = 3
    channels: int | None = None
    epochs: int = 20
    batch_size: int = 32
    patch_size: int = DEFAULT_PATCH_SIZE  # the API and the CLI give SELF_PATCH_SIZE with target "self"
    crop_size: int | None = None  # train on random crops of this size from each patch (new positions every step)
    steps_per_epoch: int | None = None
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE, or FINE_TUNE_LEARNING_RATE with init_from
    lr_schedule: str = "cosine"
    clean_fraction: float = 0.0  # this share of patches gets no noise: the model learns to leave clean images be
    loss: str = "mse"  # or "psnr": each patch's error in dB, so light noise weighs as much as heavy (losses.py)
    validation_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None
    resume: bool = False
    overwrite: bool = False  # replace an existing `out` (once this run has a model to put there)
    init_from: Path | None = None  # start from this model's weights (fine-tuning) with a fresh optimizer
    precision: str = "float32"  # or "bfloat16" / "auto": convolutions compute in bfloat16 (weights stay float32)
    target: str = "clean"  # or "self": learn from the noisy images alone (TARGETS)
    self_method: str = "recorrupt"  # with target "self": SELF_METHODS
    # With target "self": a folder with clean/ and noisy/ twins of a few images (same relative paths), to report
    # PSNR every epoch beside the self-supervised score and keep the best model by it.
    validation_path: Path | None = None
    distribute: bool = False  # mirror the model over every GPU (or every logical device) of this machine

    @property
    def rate(self) -> float:
        """The learning rate this run uses."""
        if self.learning_rate is not None:
            return self.learning_rate
        return FINE_TUNE_LEARNING_RATE if self.init_from is not None else DEFAULT_LEARNING_RATE

    @property
    def fits_network(self) -> bool:
        """Whether Keras fits the network itself on (input, target) pairs, so a checkpoint can resume the run; else
        (Neighbor2Neighbor) it fits a graph around it."""
        return self.target == "clean" or self.self_method == "recorrupt"


def default_patch_size(target: str, self_method: str = "recorrupt") -> int:
    """The --patch-size a run gets when it gives none."""
    return SELF_PATCH_SIZE if target == "self" and self_method == "neighbours" else DEFAULT_PATCH_SIZE


def checkpoint_path(out: Path) -> Path:
    """Where the resumable checkpoint of a run writing `out` lives (beside it)."""
    out = Path(out)
    return out.with_name(out.stem + ".resume.keras")


def check_config(config: TrainConfig) -> None:
    """UsageError naming the option and the fix for anything that cannot work; reads no data, imports no TensorFlow."""
    _check_choices(config)
    _check_sizes(config)
    _check_out(config)
    if config.init_from is not None:
        read_metadata(config.init_from)  # a missing or foreign file fails here, with its own message
    if config.data_path is not None and not Path(config.data_path).exists():
        raise UsageError(f"--path {config.data_path} does not exist. Give the folder (or file) the dataset lies in.")


def _check_choices(config: TrainConfig) -> None:
    for option, value, choices in (("--arch", config.arch, ARCHITECTURES), ("--loss", config.loss, LOSSES),
                                   ("--lr-schedule", config.lr_schedule, LR_SCHEDULES),
                                   ("--precision", config.precision, PRECISIONS), ("--target", config.target, TARGETS),
                                   ("--self-method", config.self_method, SELF_METHODS)):
        if value is not None and value not in choices:
            raise UsageError(f"Unknown {option} {value!r}. Choose one of: {', '.join(choices)}.")
    _check_target(config)
    if config.channels is not None and config.channels not in CHANNEL_COUNTS:
        raise UsageError(f"--channels {config.channels} is not possible: give 1 (grayscale) or 3 (colour).")


def _check_target(config: TrainConfig) -> None:
    if config.target == "clean" and config.noise is None:
        raise UsageError(f"Give --noise, the noise to add to the clean images (e.g. {DEFAULT_NOISE}).")
    if config.target != "self":
        if config.validation_path is not None:
            raise UsageError("--validation-path gives clean and noisy twins for --target self; with clean training "
                             "images, validation uses held-out ones (--validation-fraction).")
        return
    if config.validation_path is not None:
        _check_twins(Path(config.validation_path))
    if config.noise is not None:
        raise UsageError("--noise adds noise to clean images; --target self learns the noise the images already "
                         "carry. Leave out --noise.")
    if config.resume and not config.fits_network:
        raise UsageError("--resume does not continue a --self-method neighbours run; continue from its best model "
                         "with --init-from OUT (a fresh optimizer) and a new --out.")
    if config.clean_fraction or config.loss != "mse" or config.arch in ("dense",):
        raise UsageError("--target self trains a convolutional model (unet or conv) with the mse loss and no "
                         "--clean-fraction; leave those options out.")


def _check_twins(folder: Path) -> None:
    missing = [name for name in ("clean", "noisy") if not (folder / name).is_dir()]
    if missing:
        raise UsageError(f"--validation-path {folder} needs the folders clean/ and noisy/ (a few images and their "
                         f"noisy twins, under the same names); it has no {' or '.join(m + '/' for m in missing)}.")


def _check_sizes(config: TrainConfig) -> None:
    if not 0 <= config.clean_fraction < 1:
        raise UsageError(f"--clean-fraction must lie in 0..1 (below 1), not {config.clean_fraction}.")
    for name in ("epochs", "batch_size", "patch_size"):
        if getattr(config, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1.")
    if config.crop_size is not None and not 1 <= config.crop_size <= config.patch_size:
        raise UsageError(f"--crop-size ({config.crop_size}) must lie between 1 and --patch-size ({config.patch_size}).")
    if config.learning_rate is not None and not config.learning_rate > 0:
        raise UsageError(f"--learning-rate must be above 0, not {config.learning_rate}.")


def _check_out(config: TrainConfig) -> None:
    """The model file may be written, and no finished model is replaced without being asked to."""
    out = Path(config.out)
    check_model_file_name(out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder. Give a file name ending in .keras, e.g. {out / 'model.keras'}.")
    if config.resume and config.overwrite:
        raise UsageError("--resume continues the run that wrote --out and --overwrite starts a new one over it: "
                         "give one of them.")
    if config.resume and not checkpoint_path(out).exists():
        raise UsageError(f"--resume found no checkpoint at {checkpoint_path(out)} (one is written after every "
                         "finished epoch). Leave out --resume to start a new run"
                         f"{' (with --overwrite, since --out exists)' if out.exists() else ''}.")
    if out.exists() and not (config.overwrite or config.resume):
        raise UsageError(f"--out {out} exists. Add --overwrite to replace it once this run has a model to put "
                         "there" + (", or --resume to continue the run that wrote it"
                                    if checkpoint_path(out).exists() else "") + ", or choose another --out.")
    problem = check_writable_folder(out.parent)
    if problem:
        raise UsageError(f"--out {out} cannot be written: {problem}. Choose a path in a folder you may write to.")
