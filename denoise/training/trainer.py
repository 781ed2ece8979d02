"""Training: fit a model on noisy batches (batches.py), validate every epoch, keep the best, checkpoint, resume.

Each epoch ends with a validation pass on a fixed, seeded noisy copy of the validation images (epochs.py); the best
model so far is saved atomically to the output path and a resumable checkpoint (model + optimizer state) beside it,
so an interrupted run (Ctrl-C, a crash, a killed job) always leaves a usable model and can go on with --resume.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from denoise.datasets import Dataset, LoadRequest, load_dataset
from denoise.errors import DatasetError, TrainingError, UsageError
from denoise.interrupts import stop_on_ctrl_c
from denoise.nn.architectures import (
    build_model,
    is_impulse_model,
    model_channels,
    size_multiple,
    transfer_weights,
    with_bfloat16_compute,
)
from denoise.nn.losses import loss_function
from denoise.nn.model_files import read_metadata
from denoise.nn.saving import load_model, remove_unfinished_saves
from denoise.noise.level import NoiseLevel, estimate_noise_level
from denoise.noise.specs import SALT_AND_PEPPER
from denoise.runtime import resolve_precision
from denoise.training.batches import make_pipeline
from denoise.training.config import TrainConfig, check_config, checkpoint_path
from denoise.training.epochs import SELF_SUPERVISED_NOISE, EpochEnd, EpochReport, is_collapsed, validation_set
from denoise.training.recorrupt import make_recorrupted_pipeline, recorruption_loss
from denoise.training.self_supervised import (
    RampUp,
    check_noisy_images,
    make_self_supervised_pipeline,
    neighbour_training_model,
)

__all__ = ["SELF_SUPERVISED_NOISE", "EpochReport", "TrainConfig", "TrainResult", "checkpoint_path", "is_collapsed",
           "train"]
FINE_TUNE_WARMUP_STEPS = 200  # at most; a quarter of the run when it is shorter

@dataclass
class TrainResult:
    """What a training run did: where the best model is, how many epochs ran, and each validation."""

    out: Path
    epochs_done: int
    best_psnr: float | None
    interrupted: bool = False
    history: list[EpochReport] = field(default_factory=list)
    dataset_notes: dict = field(default_factory=dict)  # what the loader reported, e.g. files it skipped


def train(config: TrainConfig, on_epoch: Callable[[EpochReport], None] | None = None,
          on_start: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or resume) a model as configured; the best model is at config.out whenever this returns or raises.

    Nothing is written to config.out before a model worth keeping exists: a finished epoch that beats every earlier
    one, or with init_from the starting model itself, validated before the first step.
    """
    check_config(config)
    config = _inherit_architecture(config) if config.init_from is not None else config
    config = dataclasses.replace(config, arch=config.arch or "unet", precision=resolve_precision(config.precision))
    keras.utils.set_random_seed(config.seed)
    data = _load_training_data(config)
    train_images = np.stack(data.train)
    channels = train_images.shape[-1]
    if config.crop_size is not None and config.crop_size > min(train_images.shape[1:3]):
        raise UsageError(f"--crop-size {config.crop_size} is larger than the training images "
                         f"({train_images.shape[1]}x{train_images.shape[2]}); give a smaller one.")
    steps = config.steps_per_epoch or max(1, len(train_images) // config.batch_size)
    warning = check_noisy_images(train_images) if config.target == "self" else None
    if warning and on_start is not None:
        on_start(f"warning: {warning}")
    level = _measured_noise(config, train_images, data.notes, on_start)

    # Variables made inside a MirroredStrategy's scope are copied to every device and kept in step by fit().
    with (tf.distribute.MirroredStrategy() if config.distribute else tf.distribute.get_strategy()).scope():
        model, start_epoch, best = _model_to_train(config, channels, train_images.shape[1], steps, level)
        fitted = model if config.fits_network else _self_supervised(model, config, steps)

    if not config.fits_network:
        _check_halves_fit(config, train_images.shape, size_multiple(model))
    remove_unfinished_saves(config.out)  # a killed run's half-written saves (the checkpoint's temps match too)
    validation = validation_set(data.validation, config, model, level)
    pipeline = _pipeline(train_images, config, steps, start_epoch, size_multiple(model), level)
    saver = EpochEnd(config, validation, data.notes, channels, best, on_epoch, start_epoch, network=model,
                      level=level)
    result = TrainResult(config.out, start_epoch, best, dataset_notes=data.notes)
    if on_start is not None:
        on_start(_start_line(config, model, train_images.shape, steps, len(validation[0]), start_epoch))
    try:
        with stop_on_ctrl_c(saver.stop):  # the callback reads it between steps
            if config.init_from is not None and start_epoch == 0:
                saver.validate_starting_model(model)
            if not saver.stop_requested:
                callbacks = [saver] if fitted is model else [saver, RampUp(fitted, config.epochs * steps)]
                fitted.fit(pipeline, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=steps,
                           callbacks=callbacks, shuffle=False, verbose=0)
    except KeyboardInterrupt:
        saver.stop.set()
    result.interrupted = saver.stop_requested
    result.epochs_done, result.best_psnr, result.history = saver.last_epoch, saver.best, saver.history
    if saver.diverged:
        raise TrainingError(
            f"The loss became NaN in epoch {saver.last_epoch + 1}; training stopped. "
            + (f"The best model so far is at {config.out}. " if saver.saved else "No model was written. ")
            + "Train again with a lower --learning-rate (say a third of this run's) or a smaller --batch-size."
        )
    return result


def _start_line(config: TrainConfig, model, patches: tuple, steps: int, validation: int, start_epoch: int) -> str:
    """What is about to be trained on what, in one line, so a wrong option shows before the first epoch."""
    count, height, width, channels = patches
    return (f"training {config.arch} ({model.count_params():,} parameters, {config.precision}) on {count:,} patches "
            f"of {height}x{width}x{channels}, {steps} steps of {config.batch_size} per epoch, learning rate "
            f"{config.rate:g}; validating on {validation} images"
            + (f"; resuming after epoch {start_epoch}" if start_epoch else ""))


def _model_to_train(config: TrainConfig, channels: int, size: int, steps: int, level: NoiseLevel | None = None):
    """A compiled model with the epoch it starts at and the best PSNR so far: resumed, or built new. With a
    measured noise `level` (recorruption) it learns with recorruption's loss."""
    resume_from = checkpoint_path(config.out)
    if config.resume:
        model, state = load_model(resume_from, compile=True)
        return model, int(state["epochs"]), _best_so_far(state, config.out)
    # Salt-and-pepper models fill in and replace only pure black and white values (see layers.FillImpulses).
    impulse = config.noise is not None and config.noise.specs[0].kind == SALT_AND_PEPPER  # never in a NoiseMix
    start = _starting_model(config, channels) if config.init_from is not None else None
    if start is not None and is_impulse_model(start) == impulse:
        model = start
    else:
        model = build_model(config.arch, channels, width=config.width, depth=config.depth,
                            image_size=size, impulse=impulse)
        if start is not None:  # an impulse model fine-tuned from a Gaussian one, or the other way round
            _copy_weights(start, model, config.init_from)
    if config.precision == "bfloat16":
        model = with_bfloat16_compute(model)
    loss = loss_function(config.loss) if level is None else recorruption_loss(level)
    model.compile(optimizer=_optimizer(config, steps), loss=loss, jit_compile=False)
    return model, 0, None


def _check_halves_fit(config: TrainConfig, patches: tuple, multiple: int) -> None:
    """UsageError unless the half-size images of --target self still fit the network's grid."""
    side, cell = min(config.crop_size or patches[1], patches[2]), 2 * multiple
    if side < cell:
        raise UsageError(f"--target self halves the patches, and this model needs halves of at least {cell // 2} "
                         f"pixels a side: give --patch-size (or --crop-size) of at least {cell}, not {side}.")


def _self_supervised(network, config: TrainConfig, steps: int):
    """The Neighbor2Neighbor graph around the network, compiled: its two errors, the second ramped up (RampUp)."""
    fitted = neighbour_training_model(network)
    fitted.compile(optimizer=_optimizer(config, steps), loss=["mse", "mse"], jit_compile=False)
    return fitted


def _measured_noise(config: TrainConfig, images: np.ndarray, notes: dict, on_start) -> NoiseLevel | None:
    """The noise level of the training images, which recorruption needs, recorded in the dataset notes and told."""
    if config.target != "self" or config.self_method != "recorrupt":
        return None
    level = estimate_noise_level(images)
    notes["measured_noise"] = level.as_dict()
    if on_start is not None:
        on_start(f"measured in the training images: {level.describe()}")
    return level


def _pipeline(images: np.ndarray, config: TrainConfig, steps: int, start_epoch: int, multiple: int,
              level: NoiseLevel | None):
    first_step = start_epoch * steps
    if level is not None:
        return make_recorrupted_pipeline(images, level, config.batch_size, config.seed, config.epochs * steps,
                                         first_step, crop_size=config.crop_size, size_multiple=multiple)
    if config.target == "self":
        return make_self_supervised_pipeline(images, config.batch_size, config.seed, first_step,
                                             crop_size=config.crop_size, size_multiple=multiple)
    return make_pipeline(images, config.noise, config.batch_size, config.seed, first_step, crop_size=config.crop_size,
                         clean_fraction=config.clean_fraction, size_multiple=multiple)


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
    """A fine-tuned model keeps the architecture and size of the model it starts from; its metadata says what
    that is."""
    earlier = read_metadata(config.init_from).get("train_config") or {}
    keep = {key: earlier[key] for key in ("width", "depth") if key in earlier}
    start_arch = earlier.get("arch")
    if config.arch is None:
        keep["arch"] = start_arch
    elif start_arch and config.arch != start_arch:
        raise UsageError(f"--arch {config.arch} cannot start from {config.init_from}, a {start_arch} model; "
                         "leave out --arch to keep its architecture.")
    return dataclasses.replace(config, **keep)


def _starting_model(config: TrainConfig, channels: int):
    """The model to fine-tune: its architecture and weights, checked against the data's channel count."""
    model, _ = load_model(config.init_from)
    if model_channels(model) != channels:
        raise UsageError(f"{config.init_from} takes {model_channels(model)}-channel images but the data has "
                         f"{channels}; pass --channels or start from a matching model.")
    return model


def _copy_weights(source, target, path: Path) -> None:
    """Weights of `source` into `target`: the same architecture with the impulse layers added or left out."""
    try:
        transfer_weights(source, target)
    except ValueError as exc:
        raise UsageError(f"{path} is not a {target.name} model and cannot start one: its layers do not fit "
                         f"({exc}).") from None


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
    return keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch))


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """The configured rate or schedule. Fine-tuning warms the rate up from 0 over its first steps, because Adam's
    first steps move every weight by about the full rate whatever its gradient, which undoes a trained model
    (the shipped gray model lost 0.2 dB in its first 100 steps at 1e-4 without it: docs/training.md)."""
    total = config.epochs * steps_per_epoch
    warmup = min(FINE_TUNE_WARMUP_STEPS, total // 4) if config.init_from is not None else 0
    alpha = 0.02 if config.lr_schedule == "cosine" else 1.0  # 1.0: no decay, a constant rate
    if warmup == 0 and config.lr_schedule == "constant":
        return config.rate
    return keras.optimizers.schedules.CosineDecay(0.0 if warmup else config.rate, decay_steps=max(1, total - warmup),
                                                  alpha=alpha, warmup_target=config.rate if warmup else None,
                                                  warmup_steps=warmup)
