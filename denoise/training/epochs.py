"""The end of each training epoch: validate the model, keep the best one so far, write a resumable checkpoint and
report (EpochEnd, a Keras callback), on a validation set fixed for the whole run (validation_set).

With clean images the measure is PSNR on a seeded noisy copy of each; trained on noisy images alone (target
"self"), it is a self-supervised score (recorrupt.py, self_supervised.py), or PSNR on the clean twins of
--validation-path when given.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import keras
import numpy as np

from denoise import __version__
from denoise.evaluation import noisy_copies, psnr
from denoise.inference.denoiser import Denoiser
from denoise.inference.settings import RunSettings
from denoise.nn.architectures import size_multiple, with_weights_in
from denoise.nn.saving import save_model
from denoise.noise.level import NoiseLevel
from denoise.training.config import TrainConfig, checkpoint_path
from denoise.training.recorrupt import expected_noisy, validation_pairs
from denoise.training.self_supervised import read_twins, self_supervised_scores, validation_halves

# An output whose pixels vary this little, relative to the clean image's, has collapsed to a constant image.
COLLAPSED_CONTRAST = 0.1
SELF_SUPERVISED_NOISE = "self: the noise of the training images"  # a model's "noise" when it learnt from them


@dataclass
class EpochReport:
    """One validation: epoch 0 is the --init-from model before any step."""

    epoch: int
    epochs: int
    loss: float
    noisy_psnr: float
    denoised_psnr: float
    best: bool
    seconds: float
    collapsed: bool = False  # the outputs are (nearly) constant images: the model learnt to ignore its input
    measure: str = "PSNR"  # or, training on noisy images alone, the self-supervised score (self_supervised.py)
    self_scores: tuple[float, float] | None = None  # the identity's and the model's self-supervised scores, when
    # PSNR on clean twins (--validation-path) is the measure


def validation_set(images, config: TrainConfig, model, level: NoiseLevel | None) -> tuple[list, list]:
    """Clean validation images and one fixed, seeded noisy copy of each, the same every epoch; with target "self",
    fixed (input, target) pairs made from the noisy validation images instead (recorrupted with the measured
    noise level, or neighbour sub-images), and the clean and noisy twins of --validation-path.

    A model that takes one size only (dense) is validated on the centre of each image at that size.
    """
    fixed_size = model.input_shape[1:3]
    clean = [np.asarray(image, dtype=np.float32) / 255.0 for image in images]
    if config.target == "self":
        twins = read_twins(config.validation_path, model.input_shape[-1]) if config.validation_path else ([], [])
        pairs = (validation_pairs(clean, level, config.seed + 1) if level is not None
                 else validation_halves(clean, config.seed + 1, size_multiple(model)))
        return pairs, twins
    if fixed_size[0] is not None:
        clean = [_centre(image, *fixed_size) for image in clean if min(image.shape[:2]) >= max(fixed_size)]
    return clean, noisy_copies(clean, config.noise, seed=config.seed + 1)


def is_collapsed(clean: list[np.ndarray], denoised: list[np.ndarray]) -> bool:
    """Whether the outputs have (nearly) no contrast where the clean images have some: a constant image came out.

    A model that learnt to ignore its input (seen: a sigmoid autoencoder gone all black on MNIST) still gets a
    finite PSNR, often the best so far, so the score alone never shows it.
    """
    contrast = [(float(np.std(d)), float(np.std(c))) for c, d in zip(clean, denoised) if np.std(c) > 0.02]
    return bool(contrast) and all(out < COLLAPSED_CONTRAST * ref for out, ref in contrast)


def _mean_psnr(references: list[np.ndarray], images: list[np.ndarray]) -> float:
    return float(np.mean([psnr(reference, image) for reference, image in zip(references, images)]))


def _centre(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


class EpochEnd(keras.callbacks.Callback):
    """Keras callback: validates, saves the best model and a resumable checkpoint, reports, watches for NaN."""

    def __init__(self, config, validation, notes, channels, best, on_epoch, start_epoch: int = 0, network=None,
                 level: NoiseLevel | None = None):
        """network: the model saved and validated, when Keras fits a graph around it (target "self"); level: the
        measured noise that recorruption's validation pairs carry."""
        super().__init__()
        self.network, self.level = network, level
        self.config, self.validation, self.notes, self.channels = config, validation, notes, channels
        self.best, self.on_epoch, self.history = best, on_epoch, []
        self.last_epoch, self.diverged, self.started = start_epoch, False, time.monotonic()
        self.stop = threading.Event()  # set by Ctrl-C (interrupts.stop_on_ctrl_c)
        self.saved = best is not None  # whether config.out holds a model of this run (or the one resumed)
        self._denoiser = None

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def validate_starting_model(self, model) -> None:
        """Score the --init-from model before any step and keep it at --out: training must beat it to replace it."""
        self.network = model
        self._finish_epoch(0, float("nan"), save_checkpoint=False)

    def on_train_batch_end(self, batch, logs=None):
        if logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.diverged = True
        if self.diverged or self.stop_requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged or self.stop_requested:  # a stopped epoch is unfinished: nothing of it is written
            return
        self._finish_epoch(epoch + 1, float((logs or {}).get("loss", float("nan"))))

    def _finish_epoch(self, epoch: int, loss: float, save_checkpoint: bool = True) -> None:
        measure, self_scores, collapsed = "PSNR", None, False
        if self.config.target == "self":  # PSNR on the clean twins if given, else the self-supervised score
            self_scores, twin_psnr = self._self_validate()
            noisy_psnr, denoised_psnr = twin_psnr or self_scores
            if twin_psnr is None:
                measure, self_scores = "self-supervised score", None
        else:
            noisy_psnr, denoised_psnr, collapsed = self._validate()
        # Without validation images there is no "best": the newest model is kept. Nor is there one by
        # Neighbor2Neighbor's self-supervised score, which favours the smoother models of the regulariser's early,
        # light weight (self_supervised.py): without clean twins its newest model is kept too. Recorruption's score
        # ranks as PSNR would (recorrupt.py).
        ranked = self.config.fits_network or self.config.validation_path is not None
        improved = (self.best is None or not math.isfinite(denoised_psnr) or not ranked
                    or denoised_psnr > self.best)
        self.last_epoch = epoch
        if improved:
            self.best = denoised_psnr
            self.save(self.network, self.config.out, epoch, denoised_psnr)
            self.saved = True
        if save_checkpoint and self.config.fits_network:  # a Neighbor2Neighbor graph is not: --init-from goes on
            self.save(self.network, checkpoint_path(self.config.out), epoch, denoised_psnr, include_optimizer=True)
        report = EpochReport(epoch, self.config.epochs, loss, noisy_psnr, denoised_psnr, improved,
                             time.monotonic() - self.started, collapsed, measure, self_scores)
        self.history.append(report)
        self.started = time.monotonic()
        if self.on_epoch:
            self.on_epoch(report)

    def _validate(self) -> tuple[float, float, bool]:
        """Mean PSNR of the noisy and the denoised validation images, and whether the outputs are constant."""
        clean, noisy = self.validation
        if not clean:
            return float("nan"), float("nan"), False
        denoised = self.denoiser(noisy)
        return _mean_psnr(clean, noisy), _mean_psnr(clean, denoised), is_collapsed(clean, denoised)

    def _self_validate(self) -> tuple[tuple[float, float], tuple[float, float] | None]:
        """The self-supervised scores on the neighbour halves of the noisy validation images, and the noisy and
        denoised PSNR of the clean twins of --validation-path, if given."""
        halves, (clean, noisy) = self.validation
        expected = None if self.level is None else partial(expected_noisy, level=self.level)
        scores = self_supervised_scores(self.denoiser, halves, expected) if halves else (float("nan"), float("nan"))
        if not clean:
            return scores, None
        denoised = self.denoiser(noisy)
        return scores, (_mean_psnr(clean, noisy), _mean_psnr(clean, denoised))

    @property
    def denoiser(self) -> Denoiser:
        """One Denoiser for the whole run, so its traced graphs are reused every epoch."""
        if self._denoiser is None:
            # The model's own arithmetic, on TensorFlow: the weights change every epoch, and LiteRT would run the
            # copy of them it converted when the denoiser was made.
            self._denoiser = Denoiser(self.network, RunSettings(precision="float32", runtime="tensorflow"))
        return self._denoiser

    def save(self, model, path, epochs, validation_psnr, include_optimizer=False):
        if not include_optimizer and self.config.precision != "float32":
            # The model itself computes in float32 wherever it is loaded; `run --precision` chooses bfloat16 there.
            # The resumable checkpoint keeps the training arithmetic, so --resume goes on as the run started.
            model = with_weights_in(model, "float32")
        save_model(model, path, self.metadata(epochs, validation_psnr), include_optimizer)

    def metadata(self, epochs: int, validation_psnr: float | None) -> dict:
        config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()}
        # asdict made the spec or mix a dict; its text is what parses back
        config["noise"] = None if self.config.noise is None else str(self.config.noise)
        config["learning_rate"] = self.config.rate  # the default resolved, so the card shows what ran
        return {
            "format": 1,
            "denoise_version": __version__,
            "architecture": self.config.arch,
            "channels": self.channels,
            "noise": str(self.config.noise) if self.config.noise is not None else SELF_SUPERVISED_NOISE,
            "dataset": self.config.dataset,
            "dataset_notes": self.notes,
            "epochs": epochs,
            "validation_psnr": validation_psnr,  # with target "self": the self-supervised score
            "best_validation_psnr": self.best,
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_config": config,
        }
