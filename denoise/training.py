"""Training: fit a model on noisy batches (noisy_batches.py), validate every epoch, keep the best, checkpoint, resume.

Each epoch ends with a validation pass on a fixed, seeded noisy copy of the validation images; the best model so
far is saved atomically to the output path and a resumable checkpoint (model + optimizer state) beside it, so an
interrupted run (Ctrl-C, a crash, a killed job) always leaves a usable model and can go on with --resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from denoise import __version__
from denoise.datasets import Dataset, LoadRequest, load_dataset
from denoise.errors import DatasetError, TrainingError, UsageError
from denoise.evaluation import noisy_copies, psnr
from denoise.inference import Denoiser
from denoise.losses import LOSSES, loss_function
from denoise.model_files import check_model_file_name, read_metadata
from denoise.models import (
    build_model,
    fine_block_count,
    is_impulse_model,
    load_model,
    model_channels,
    remove_unfinished_saves,
    save_model,
    transfer_weights,
    with_bfloat16_compute,
    with_weights_in,
)
from denoise.noise import SALT_AND_PEPPER, NoiseSpec
from denoise.noisy_batches import make_pipeline

LR_SCHEDULES = ("cosine", "constant")
TRAIN_PRECISIONS = ("float32", "bfloat16")


@dataclass
class TrainConfig:
    """Everything `denoise train` needs; stored in the model's metadata so a run can be reproduced."""

    dataset: str
    noise: NoiseSpec
    out: Path
    data_path: Path | None = None
    arch: str | None = None  # None: the --init-from model's architecture, else "unet"
    width: int = 32
    depth: int = 3
    fine_blocks: int | None = None  # residual blocks at a U-Net's finest scale; None: the --init-from model's, else 0
    channels: int | None = None
    epochs: int = 20
    batch_size: int = 32
    patch_size: int = 64
    crop_size: int | None = None  # train on random crops of this size from each patch (new positions every step)
    steps_per_epoch: int | None = None
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    clean_fraction: float = 0.0  # this share of patches gets no noise: the model learns to leave clean images be
    loss: str = "mse"  # or "psnr": each patch's error in dB, so light noise weighs as much as heavy (losses.py)
    validation_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None
    resume: bool = False
    init_from: Path | None = None  # start from this model's weights (fine-tuning) with a fresh optimizer
    precision: str = "float32"  # or "bfloat16": convolutions compute in bfloat16 (weights stay float32), as `run` does
    freeze_core: bool = False  # train only the U-Net's first and last convolutions (the "edge" layers)
    distribute: bool = False  # mirror the model over every GPU (or every logical device) of this machine


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    loss: float
    noisy_psnr: float
    denoised_psnr: float
    best: bool
    seconds: float


@dataclass
class TrainResult:
    out: Path
    epochs_done: int
    best_psnr: float | None
    interrupted: bool = False
    history: list[EpochReport] = field(default_factory=list)
    dataset_notes: dict = field(default_factory=dict)  # what the loader reported, e.g. files it skipped


def checkpoint_path(out: Path) -> Path:
    """Where the resumable checkpoint of a run writing `out` lives (beside it)."""
    out = Path(out)
    return out.with_name(out.stem + ".resume.keras")


def train(config: TrainConfig, on_epoch: Callable[[EpochReport], None] | None = None) -> TrainResult:
    """Train (or resume) a model as configured; the best model is at config.out whenever this returns or raises."""
    _check_config(config)
    config = _inherit_architecture(config) if config.init_from is not None else config
    config = dataclasses.replace(config, arch=config.arch or "unet", fine_blocks=config.fine_blocks or 0)
    keras.utils.set_random_seed(config.seed)
    data = _load_training_data(config)
    train_images = np.stack(data.train)
    channels = train_images.shape[-1]
    if config.crop_size is not None and config.crop_size > min(train_images.shape[1:3]):
        raise UsageError(f"--crop-size {config.crop_size} is larger than the training images "
                         f"({train_images.shape[1]}x{train_images.shape[2]}); give a smaller one.")
    steps = config.steps_per_epoch or max(1, len(train_images) // config.batch_size)

    # Variables made inside a MirroredStrategy's scope are copied to every device and kept in step by fit().
    with (tf.distribute.MirroredStrategy() if config.distribute else tf.distribute.get_strategy()).scope():
        model, start_epoch, best = _model_to_train(config, channels, train_images.shape[1], steps)

    remove_unfinished_saves(config.out)  # a killed run's half-written saves (the checkpoint's temps match too)
    validation = _validation_set(data.validation, config)
    pipeline = make_pipeline(train_images, config.noise, config.batch_size, config.seed, start_epoch * steps,
                             crop_size=config.crop_size, clean_fraction=config.clean_fraction)
    saver = _EpochEnd(config, validation, data.notes, channels, best, on_epoch)
    result = TrainResult(config.out, start_epoch, best, dataset_notes=data.notes)
    try:
        with _stop_on_ctrl_c(saver):
            model.fit(pipeline, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=steps,
                      callbacks=[saver], shuffle=False, verbose=0)
    except KeyboardInterrupt:
        saver.stop_requested = True
    if saver.stop_requested:
        result.interrupted = True
        if saver.best is None:  # nothing saved yet: keep what there is rather than nothing
            saver.save(model, config.out, saver.last_epoch, None)
    result.epochs_done, result.best_psnr, result.history = saver.last_epoch, saver.best, saver.history
    if saver.diverged:
        raise TrainingError(
            f"The loss became NaN in epoch {saver.last_epoch + 1}; training stopped. The best model so far is at "
            f"{config.out}. Try a lower --learning-rate or a smaller --batch-size."
        )
    return result


@contextlib.contextmanager
def _stop_on_ctrl_c(saver: "_EpochEnd"):
    """The first Ctrl-C asks training to stop after the current step; a second one interrupts at once.

    A KeyboardInterrupt raised while TensorFlow runs C++ code can surface as an unrelated error (seen: SystemError
    in the middle of a model call), so the first one only sets a flag that the callback reads between steps.
    """
    def request_stop(signum, frame):
        saver.stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():  # signal handlers live on the main thread
        yield
        return
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _model_to_train(config: TrainConfig, channels: int, size: int, steps: int):
    """A compiled model with the epoch it starts at and the best PSNR so far: resumed, or built new."""
    resume_from = checkpoint_path(config.out)
    if config.resume and resume_from.exists():
        model, state = load_model(resume_from, compile=True)
        return model, int(state["epochs"]), _best_so_far(state, config.out)
    if config.resume:
        raise UsageError(f"--resume found no checkpoint at {resume_from}; start without --resume.")
    # Salt-and-pepper models fill in and replace only pure black and white values (see layers.FillImpulses).
    impulse = config.noise.kind == SALT_AND_PEPPER
    start = _starting_model(config, channels) if config.init_from is not None else None
    if start is not None and is_impulse_model(start) == impulse and model_channels(start) == channels \
            and fine_block_count(start) == config.fine_blocks:
        model = start
    else:
        model = build_model(config.arch, channels, width=config.width, depth=config.depth,
                            fine_blocks=config.fine_blocks, image_size=size, impulse=impulse)
        if start is not None:  # e.g. an impulse model fine-tuned from a Gaussian one, or grown by fine blocks
            _copy_weights(start, model, config.init_from)
    if config.precision == "bfloat16":
        model = with_bfloat16_compute(model)
    _set_trainable(model, config.freeze_core)
    model.compile(optimizer=_optimizer(config, steps), loss=loss_function(config.loss), jit_compile=False)
    return model, 0, None


# The convolutions that read the (folded) input and write the noise; everything between them is the "core".
EDGE_LAYERS = ("down0_conv1", "noise_folded")


def _set_trainable(model, freeze_core: bool) -> None:
    """Every layer trainable, or with freeze_core only EDGE_LAYERS: a guided-unet grown from a gray model then learns
    to use the other channels without unlearning, on other images, what the gray model's training taught it."""
    if freeze_core and not all(name in {layer.name for layer in model.layers} for name in EDGE_LAYERS):
        raise UsageError("--freeze-core needs a unet or guided-unet model.")
    for layer in model.layers:
        layer.trainable = not freeze_core or layer.name in EDGE_LAYERS


def _best_so_far(checkpoint_state: dict, out: Path) -> float | None:
    """The validation PSNR a resumed run must beat to replace the best model.

    Each epoch saves the best model before the checkpoint, so a run killed between the two saves leaves a best model
    one epoch newer (and better) than the checkpoint knows; its own metadata says how good it is.
    """
    scores = [checkpoint_state.get("best_validation_psnr")]
    if Path(out).exists():
        scores.append(read_metadata(out).get("validation_psnr"))
    scores = [score for score in scores if score is not None]
    return max(scores) if scores else None


def _inherit_architecture(config: TrainConfig) -> TrainConfig:
    """A fine-tuned model keeps the size of the model it starts from, and its architecture unless --arch names one
    (a gray unet can start a guided-unet colour model); the starting model's metadata says what it is."""
    earlier = read_metadata(config.init_from).get("train_config") or {}
    keep = {key: earlier[key] for key in ("width", "depth") if key in earlier}
    start_blocks = earlier.get("fine_blocks") or 0
    if config.fine_blocks is None:
        keep["fine_blocks"] = start_blocks
    elif config.fine_blocks < start_blocks:
        raise UsageError(f"--fine-blocks {config.fine_blocks} cannot start from {config.init_from}, which has "
                         f"{start_blocks}: a model can gain fine blocks but not lose them.")
    start_arch = earlier.get("arch")
    if config.arch is None:
        keep["arch"] = start_arch
    elif start_arch and config.arch != start_arch and (start_arch, config.arch) != ("unet", "guided-unet"):
        raise UsageError(f"--arch {config.arch} cannot start from {config.init_from}, a {start_arch} model; "
                         "leave out --arch to keep its architecture.")
    return dataclasses.replace(config, **keep)


def _starting_model(config: TrainConfig, channels: int):
    """The model to fine-tune: its architecture and weights, checked against the data's channel count."""
    model, _ = load_model(config.init_from)
    grows_into_colour = config.arch == "guided-unet" and model_channels(model) == 1
    if model_channels(model) != channels and not grows_into_colour:
        raise UsageError(f"{config.init_from} takes {model_channels(model)}-channel images but the data has "
                         f"{channels}; pass --channels or start from a matching model.")
    return model


def _copy_weights(source, target, path: Path) -> None:
    """Weights of `source` into `target`: the same architecture with the impulse layers added or left out, or a
    gray unet growing into a guided-unet (models.transfer_weights)."""
    try:
        transfer_weights(source, target)
    except ValueError as exc:
        raise UsageError(f"{path} is not a {target.name} model and cannot start one: its layers do not fit "
                         f"({exc}).") from None


def _check_config(config: TrainConfig) -> None:
    if config.loss not in LOSSES:
        raise UsageError(f"Unknown --loss {config.loss!r}. Choose one of: {', '.join(LOSSES)}.")
    if config.precision not in TRAIN_PRECISIONS:
        raise UsageError(f"Unknown --precision {config.precision!r}. Choose one of: {', '.join(TRAIN_PRECISIONS)}.")
    if config.lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"Unknown --lr-schedule {config.lr_schedule!r}. Choose one of: {', '.join(LR_SCHEDULES)}.")
    if not 0 <= config.clean_fraction < 1:
        raise UsageError(f"--clean-fraction must lie in 0..1 (below 1), not {config.clean_fraction}.")
    for name in ("epochs", "batch_size", "patch_size"):
        if getattr(config, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1.")
    if config.crop_size is not None and not 1 <= config.crop_size <= config.patch_size:
        raise UsageError(f"--crop-size ({config.crop_size}) must lie between 1 and --patch-size ({config.patch_size}).")
    check_model_file_name(config.out)


def _load_training_data(config: TrainConfig) -> Dataset:
    request = LoadRequest(
        path=config.data_path,
        patch_size=config.patch_size,
        validation_fraction=config.validation_fraction,
        channels=config.channels,
        seed=config.seed,
        limit=config.limit,
    )
    data = load_dataset(config.dataset, request)
    if len(data.train) == 0:
        raise DatasetError(f"The dataset {config.dataset!r} gave no training images. Check --path and --limit.")
    return data


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    rate = config.learning_rate
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.02)
    return keras.optimizers.Adam(rate)


def _validation_set(images, config: TrainConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Clean validation images and one fixed, seeded noisy copy of each, the same every epoch."""
    clean = [np.asarray(image, dtype=np.float32) / 255.0 for image in images]
    return clean, noisy_copies(clean, config.noise, seed=config.seed + 1)


class _EpochEnd(keras.callbacks.Callback):
    """Keras callback: validates, saves the best model and a resumable checkpoint, reports, watches for NaN."""

    def __init__(self, config, validation, notes, channels, best, on_epoch):
        super().__init__()
        self.config, self.validation, self.notes, self.channels = config, validation, notes, channels
        self.best, self.on_epoch, self.history = best, on_epoch, []
        self.last_epoch, self.diverged, self.started = 0, False, time.monotonic()
        self.stop_requested = False  # set by Ctrl-C (see _stop_on_ctrl_c)
        self._denoiser = None

    def on_train_batch_end(self, batch, logs=None):
        if logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.diverged = True
        if self.diverged or self.stop_requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged or self.stop_requested:  # a stopped epoch is unfinished: its checkpoint is not written
            return
        noisy_psnr, denoised_psnr = self._validate()
        improved = self.best is None or denoised_psnr > self.best
        self.last_epoch = epoch + 1
        if improved:
            self.best = denoised_psnr
            self.save(self.model, self.config.out, self.last_epoch, denoised_psnr)
        self.save(self.model, checkpoint_path(self.config.out), self.last_epoch, denoised_psnr, include_optimizer=True)
        report = EpochReport(self.last_epoch, self.config.epochs, float((logs or {}).get("loss", float("nan"))),
                             noisy_psnr, denoised_psnr, improved, time.monotonic() - self.started)
        self.history.append(report)
        self.started = time.monotonic()
        if self.on_epoch:
            self.on_epoch(report)

    def _validate(self) -> tuple[float, float]:
        clean, noisy = self.validation
        if not clean:
            return float("nan"), float("nan")
        if self._denoiser is None:  # one Denoiser for the whole run, so its traced graphs are reused every epoch
            self._denoiser = Denoiser(self.model)
        denoised = self._denoiser(noisy)
        return float(np.mean([psnr(c, n) for c, n in zip(clean, noisy)])), float(
            np.mean([psnr(c, d) for c, d in zip(clean, denoised)])
        )

    def save(self, model, path, epochs, validation_psnr, include_optimizer=False):
        if not include_optimizer and self.config.precision != "float32":
            # The model itself computes in float32 wherever it is loaded; `run --precision` chooses bfloat16 there.
            # The resumable checkpoint keeps the training arithmetic, so --resume goes on as the run started.
            model = with_weights_in(model, "float32")
        save_model(model, path, self.metadata(epochs, validation_psnr), include_optimizer)

    def metadata(self, epochs: int, validation_psnr: float | None) -> dict:
        config = {k: str(v) if isinstance(v, (Path, NoiseSpec)) else v for k, v in asdict(self.config).items()}
        config["noise"] = str(self.config.noise)
        return {
            "format": 1,
            "denoise_version": __version__,
            "architecture": self.config.arch,
            "channels": self.channels,
            "noise": str(self.config.noise),
            "dataset": self.config.dataset,
            "dataset_notes": self.notes,
            "epochs": epochs,
            "validation_psnr": validation_psnr,
            "best_validation_psnr": self.best,
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_config": config,
        }
