"""Array in, array out: one Keras model run on float images of any size, any channel count, in bounded memory.

The steps each live in their own module: the colour path (channels.py) turns images into the planes the model
takes, the flip ensemble (orientations.py) averages orientations of them, impulse models keep black and white
content (impulses.py), and large planes go through in tiles (tiling.py). This module batches the rest.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from denoise.errors import ModelError
from denoise.inference.channels import ChannelPath, colour_space_for
from denoise.inference.impulses import run_keeping_content
from denoise.inference.orientations import average_over_orientations
from denoise.inference.settings import RunSettings
from denoise.inference.tiling import pad_to_multiple, round_up, run_tiled
from denoise.nn.architectures import (
    fixed_size,
    is_impulse_model,
    model_channels,
    size_multiple,
    with_bfloat16_compute,
)


class Denoiser:
    """Runs one Keras model on lists of float32 HxWxC images in [0, 1], of any size and 1 or 3 channels."""

    def __init__(self, model, settings: RunSettings | None = None, *, colour_space: str = "rgb"):
        """colour_space="opponent": a gray Gaussian model cleans colour images in an opponent colour space
        (colour.py) instead of channel by channel; only for blind models (channels.colour_space_for)."""
        import tensorflow as tf

        from denoise.runtime import resolve_engine

        self.settings = settings = settings or RunSettings()
        self.precision, self.runtime = resolve_engine(settings.precision, settings.runtime)
        if self.precision == "bfloat16":
            try:
                model = with_bfloat16_compute(model)
            except (ValueError, TypeError, KeyError, NotImplementedError):
                self.precision = "float32"  # a model Keras cannot rebuild from its config runs as it is
        self.model = model
        self.impulse = is_impulse_model(model)
        self.fixed_size = fixed_size(model)
        self.multiple = size_multiple(model)
        self.channel_path = ChannelPath(model_channels(model), self.impulse, colour_space)
        self.tile = round_up(max(settings.tile_for(self.precision, self.runtime), self.multiple), self.multiple)
        self.margin = round_up(settings.margin, self.multiple)
        # One traced graph per input shape; reduce_retracing keeps the number of traces small for mixed sizes.
        self._predict = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
        self._lite = self._lite_model(model) if self.runtime == "litert" else None

    @property
    def opponent(self) -> bool:
        """Whether colour images go through this (gray, blind Gaussian) model as opponent planes."""
        return self.channel_path.opponent

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Denoise each image; images of the same shape are run together in batches."""
        reuse = self.settings.reuse_input
        if reuse and len(images) == 1 and self.channel_path.cleans_in_place(images[0]):
            return [self.channel_path.clean_in_place(images[0], self._run_planes)]
        planes, owners = self.channel_path.split(images)
        results = self._run_planes(planes, in_place=reuse and len(images) == 1)
        return [self.channel_path.merge(image, [results[i] for i in owners[k]]) for k, image in enumerate(images)]

    def _run_planes(self, planes: list[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
        """The model's output for each plane, averaged over the ensemble's orientations of it."""
        if self.impulse:
            return run_keeping_content(planes, self._run_oriented, in_place)
        return self._run_oriented(planes, in_place)

    def _run_oriented(self, planes: list[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
        return average_over_orientations(planes, self._run_once, self.settings.ensemble, in_place)

    def _run_once(self, planes: list[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
        """One model run over the planes: large ones tiled, the others batched with those of the same shape."""
        results: list[np.ndarray | None] = [None] * len(planes)
        groups = defaultdict(list)
        for index, plane in enumerate(planes):
            groups[plane.shape].append(index)
        for shape, indices in groups.items():
            if self.fixed_size is None and max(shape[:2]) > self.tile + 2 * self.margin:
                for index in indices:
                    results[index] = run_tiled(planes[index], self._predict_batch, tile=self.tile, margin=self.margin,
                                               multiple=self.multiple,
                                               max_batch_pixels=self.settings.max_batch_pixels, in_place=in_place)
            else:
                for index, output in zip(indices, self._run_same_size([planes[i] for i in indices])):
                    results[index] = output
        return results

    def _run_same_size(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Pad a group of equally sized images to the model's grid, run them in memory-bounded batches, crop."""
        height, width = images[0].shape[:2]
        self._check_size(height, width)
        padded = [pad_to_multiple(image, self.multiple) for image in images]
        per_batch = max(1, self.settings.max_batch_pixels // padded[0][..., 0].size)
        outputs = []
        for start in range(0, len(padded), per_batch):
            outputs.extend(self._predict_batch(np.stack(padded[start : start + per_batch]))[:, :height, :width, :])
        return outputs

    def _predict_batch(self, batch: np.ndarray) -> np.ndarray:
        return self._lite(batch) if self._lite else np.asarray(self._predict(batch))

    def _lite_model(self, model):
        """The model converted for LiteRT; None, and TensorFlow runs it, if the converter cannot take it."""
        import tensorflow as tf

        from denoise.inference.litert import LiteModel
        from denoise.runtime import usable_cores

        try:
            threads = tf.config.threading.get_intra_op_parallelism_threads() or usable_cores()
            return LiteModel(model, threads, self._example_shape(model))
        except Exception as exc:  # noqa: BLE001 - the converter raises many types; TensorFlow runs every model
            if self.settings.runtime == "litert":
                raise ModelError(f"LiteRT cannot run this model ({exc}). Use --runtime auto or tensorflow, which "
                                 "run every model.") from exc
            self.runtime = "tensorflow"
            return None

    def _example_shape(self, model) -> tuple[int, ...]:
        """The smallest HxWxC image the model takes."""
        height, width = self.fixed_size or (self.multiple, self.multiple)
        return height, width, model_channels(model)

    def _check_size(self, height: int, width: int) -> None:
        if self.fixed_size and (height, width) != self.fixed_size:
            raise ModelError(
                f"This model only takes {self.fixed_size[0]}x{self.fixed_size[1]} images (a dense autoencoder), "
                f"not {height}x{width}. Use a convolutional model (--arch unet) for other sizes."
            )


def load_denoiser(path, settings: RunSettings | None = None) -> Denoiser:
    """A Denoiser over a model file, cleaning colour images in the colour space that suits the model."""
    from denoise.nn.saving import load_model

    model, metadata = load_model(path)
    return Denoiser(model, settings, colour_space=colour_space_for(metadata))
