"""Denoising autoencoder architectures, and what inference needs to know about a built model.

Every architecture is a Keras functional model built only from Keras layers and the registered ones of layers.py, so
files load with `safe_mode=True` (no `Lambda`, no pickled code). Models take and give float32 NHWC images in [0, 1].
"""

from __future__ import annotations

import keras
from keras import layers

from denoise.errors import ModelError
from denoise.nn.layers import DepthToSpace, FillImpulses, KeepUncorrupted, SpaceToDepth
from denoise.training.config import ARCHITECTURES


def build_model(arch: str, channels: int, *, width: int = 32, depth: int = 3, image_size: int = 28,
                impulse: bool = False) -> keras.Model:
    """Build one of ARCHITECTURES for images with `channels` colour channels.

    impulse=True builds a salt-and-pepper model: pure black and white values are filled in from their neighbours
    before the network (FillImpulses), and the network's output replaces only those values (KeepUncorrupted).
    """
    if arch == "unet":
        return build_unet(channels, width=width, depth=depth, impulse=impulse)
    if arch == "conv":
        return build_conv_autoencoder(channels, width=width, impulse=impulse)
    if arch == "dense":
        return build_dense_autoencoder(channels, image_size=image_size, impulse=impulse)
    raise ModelError(f"Unknown architecture {arch!r}. Choose one of: {', '.join(ARCHITECTURES)}.")


def is_impulse_model(model: keras.Model) -> bool:
    return any(isinstance(layer, KeepUncorrupted) for layer in model.layers)


def _network_input(noisy, impulse: bool):
    return FillImpulses(name="fill_impulses")(noisy) if impulse else noisy


def _model(noisy, output, name: str, impulse: bool) -> keras.Model:
    if impulse:
        output = KeepUncorrupted(name="keep_uncorrupted")([noisy, output])
        name += "_impulse"
    return keras.Model(noisy, output, name=name)


def _conv_block(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    return layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)


def build_unet(channels: int, *, width: int = 32, depth: int = 3, impulse: bool = False) -> keras.Model:
    """U-Net with residual output: folds 2x2 pixels into channels, then `depth` scales with skip connections.

    It predicts the noise and subtracts it from the input, which trains faster and keeps clean images unchanged.
    Height and width must be multiples of `size_multiple(model)` (inference pads to that).
    """
    noisy = keras.Input((None, None, channels), name="noisy")
    start = _network_input(noisy, impulse)
    noise = _unet_noise(start, channels, width, depth)
    clean = layers.Subtract(name="clean")([start, noise])
    return _model(noisy, clean, f"unet_w{width}_d{depth}", impulse)


def _unet_noise(image, out_channels: int, width: int, depth: int):
    """The U-Net body: the noise it estimates in `out_channels` channels, at the input's resolution."""
    x = SpaceToDepth(2, name="fold")(image)
    skips = []
    for level in range(depth):
        x = _conv_block(x, width * 2**level, name=f"down{level}")
        skips.append(x)
        x = layers.Conv2D(width * 2 ** (level + 1), 2, strides=2, name=f"downsample{level}")(x)
    x = _conv_block(x, width * 2**depth, name="bottom")
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(width * 2**level, 2, strides=2, name=f"upsample{level}")(x)
        x = layers.Add(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, width * 2**level, name=f"up{level}")
    x = layers.Conv2D(4 * out_channels, 3, padding="same", name="noise_folded")(x)
    return DepthToSpace(2, name="unfold")(x)


def transfer_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy every weighted layer of `source` into the layer of the same name in `target`.

    The two models share an architecture, give or take the weightless impulse layers (a Gaussian model starting
    an impulse one). ValueError when a layer is missing or its weights do not fit.
    """
    for layer in source.layers:
        if not layer.weights:
            continue
        target.get_layer(layer.name).set_weights(layer.get_weights())


def build_conv_autoencoder(channels: int, *, width: int = 32, impulse: bool = False) -> keras.Model:
    """The classic convolutional autoencoder without skip connections (keras-io's), as a baseline."""
    noisy = keras.Input((None, None, channels), name="noisy")
    x = layers.Conv2D(width, 3, padding="same", activation="relu")(_network_input(noisy, impulse))
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
    # A linear output, not keras-io's sigmoid: under MSE a sigmoid's gradient vanishes as it saturates, and on
    # MNIST (mostly black) every output pixel went to black and stayed there. denoise clips outputs to [0, 1].
    clean = layers.Conv2D(channels, 3, padding="same", name="clean")(x)
    return _model(noisy, clean, f"conv_w{width}", impulse)


def build_dense_autoencoder(channels: int, *, image_size: int = 28, code_size: int = 32,
                            impulse: bool = False) -> keras.Model:
    """The classic undercomplete 784-32-784 autoencoder (for 28x28 images), as a baseline; fixed image size."""
    pixels = image_size * image_size * channels
    noisy = keras.Input((image_size, image_size, channels), name="noisy")
    x = layers.Flatten()(_network_input(noisy, impulse))
    x = layers.Dense(code_size, activation="relu", name="code")(x)
    x = layers.Dense(pixels)(x)  # linear, as build_conv_autoencoder's output and for the same reason
    clean = layers.Reshape((image_size, image_size, channels), name="clean")(x)
    return _model(noisy, clean, f"dense_{pixels}_{code_size}", impulse)


def with_bfloat16_compute(model: keras.Model) -> keras.Model:
    """A copy of the model that computes in bfloat16 (weights stay float32) up to its last convolution.

    The last convolution and everything after it stay float32: bfloat16 keeps 8 significant bits, so a residual
    model's final `noisy - noise` in bfloat16 would round the image itself by up to half an 8-bit level.
    """
    config = model.get_config()
    convolutions = [i for i, layer in enumerate(config["layers"])
                    if layer["class_name"] in ("Conv2D", "Conv2DTranspose", "Dense")]
    if not convolutions:
        return model
    for layer in config["layers"][1 : convolutions[-1]]:
        if layer["class_name"] not in ("InputLayer", "FillImpulses"):  # the fill's values reach the output
            layer["config"]["dtype"] = "mixed_bfloat16"
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def with_weights_in(model: keras.Model, dtype: str) -> keras.Model:
    """A copy of the model whose layers hold their weights (and compute) in `dtype`, e.g. "float16" to store a
    model in half the space, "float32" to run one stored that way."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = dtype
    copy = model.__class__.from_config(config)
    copy.set_weights([weights.astype(dtype) for weights in model.get_weights()])
    return copy


def size_multiple(model: keras.Model) -> int:
    """Height and width of inputs must be multiples of this (1 when any size works)."""
    folds = sum(isinstance(layer, SpaceToDepth) for layer in model.layers)
    strided = sum(
        isinstance(layer, (layers.MaxPooling2D, layers.Conv2D)) and max(getattr(layer, "strides", (1,))) > 1
        for layer in model.layers
    )
    return 2 ** (folds + strided)


def fixed_size(model: keras.Model) -> tuple[int, int] | None:
    """(height, width) for models that only take one image size (the dense baseline), else None."""
    height, width = model.input_shape[1:3]
    return (height, width) if height is not None else None


def model_channels(model: keras.Model) -> int:
    return int(model.input_shape[-1])
