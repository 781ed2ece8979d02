"""Camera noise: the noise of a real photo, as the camera's own processing shaped it. TensorFlow ops, seeded.

Real photos do not carry white Gaussian noise. A sensor adds noise whose variance grows with the light it
records (shot noise) on top of a floor (read noise), one colour per pixel behind a Bayer filter; the camera then
interpolates the missing colours (which spreads each pixel's noise over its neighbours and across the channels),
applies white balance, a colour matrix and a tone curve (which reshape it by brightness and colour), and often
compresses with JPEG. So a clean sRGB image is unprocessed to the raw values a sensor might have recorded, noise
is added there, and the pipeline is run forward again:

    sRGB -> inverse tone curve -> inverse gamma -> inverse colour matrix -> inverse white balance -> RGGB mosaic
         -> + Poisson-Gaussian noise -> bilinear demosaic -> white balance -> colour matrix -> gamma -> tone curve

Only the noise goes through: the result is clean + (forward(raw + noise) - forward(raw)), so the signal itself is
not blurred by the demosaicing nor clipped by the colour matrix, and a model learns to remove noise, not to undo
a pipeline the clean image never went through.

Parameter ranges, drawn per image, are those of Brooks et al., "Unprocessing Images for Learned Raw Denoising"
(CVPR 2019), section 3 and its released code:
- colour matrix: a random convex combination of four cameras' XYZ-to-camera matrices, times sRGB-to-XYZ, each row
  normalised to sum 1;
- white balance: an overall gain 1 / N(0.8, 0.1), red gain U(1.9, 2.4), blue gain U(1.5, 1.9);
- noise: log(shot) uniform in [log 1e-4, log 1.2e-2], log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26), and the
  noise at a raw value x is Gaussian with variance shot * x + read: the heteroscedastic Gaussian approximation of
  Poisson-Gaussian noise of Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for single-image
  raw-data" (IEEE TIP 2008).
- JPEG (kind camera-jpeg): quality uniform in 60-95 per image, as in-camera compression; CBDNet (Guo et al.,
  "Toward Convolutional Blind Denoising of Real Photographs", CVPR 2019) trains on the same kind of noise followed
  by JPEG.
A spec's level t in [0, 1] (camera:0.5, or a range camera:0-1 drawn per image) places log(shot) at t of the way
through Brooks' range: camera:0 is the cleanest photo of their range, camera:1 the noisiest.
"""

from __future__ import annotations

import math

import tensorflow as tf

XYZ_TO_CAMERAS = tf.constant([  # Brooks et al. 2019: four cameras' XYZ -> camera matrices
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]]], tf.float32)
SRGB_TO_XYZ = tf.constant([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                           [0.0193339, 0.1191920, 0.9503041]], tf.float32)
LOG_SHOT_RANGE = (math.log(1e-4), math.log(1.2e-2))
JPEG_QUALITY_RANGE = (60, 95)
_BILINEAR = tf.constant([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])


def add_camera_noise(clean, low: float, high: float, seed, jpeg: bool = False):
    """Camera noise on a batch of clean NHWC images in [0, 1] (1 or 3 channels; any size), level t in [low, high].

    seed: a shape-[2] int tensor; the same seed and images give the same noise. Gray images are noised as a gray
    photo from a colour sensor: three equal channels through the pipeline, averaged back.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    channels = clean.shape[-1]
    rgb = tf.repeat(clean, 3, axis=-1) if channels == 1 else clean
    camera = _random_camera(tf.shape(rgb)[0], low, high, seeds[0])
    raw = _unprocess(rgb, camera)
    noisy_raw = raw + tf.random.stateless_normal(tf.shape(raw), seeds[1]) * tf.sqrt(
        camera["shot"] * tf.maximum(raw, 0.0) + camera["read"])
    noise = _process(noisy_raw, camera) - _process(raw, camera)
    noisy = tf.clip_by_value(rgb + noise, 0.0, 1.0)
    if jpeg:
        noisy = _jpeg(noisy, seeds[2])
    return tf.reduce_mean(noisy, axis=-1, keepdims=True) if channels == 1 else noisy


def _random_camera(batch, low: float, high: float, seed) -> dict:
    """Per image: noise levels, colour matrices and white-balance gains, drawn as Brooks et al. draw them."""
    seeds = tf.random.experimental.stateless_split(seed, 6)
    level = tf.random.stateless_uniform([batch], seeds[0], low, high + 1e-9)
    log_shot = LOG_SHOT_RANGE[0] + level * (LOG_SHOT_RANGE[1] - LOG_SHOT_RANGE[0])
    log_read = 2.18 * log_shot + 1.20 + 0.26 * tf.random.stateless_normal([batch], seeds[1])
    weights = tf.random.stateless_uniform([batch, 4], seeds[2], 1e-8, 1.0)
    xyz_to_camera = tf.einsum("bk,kij->bij", weights / tf.reduce_sum(weights, -1, keepdims=True), XYZ_TO_CAMERAS)
    rgb_to_camera = tf.einsum("bij,jk->bik", xyz_to_camera, SRGB_TO_XYZ)
    rgb_to_camera /= tf.reduce_sum(rgb_to_camera, axis=-1, keepdims=True)
    overall = 1.0 / (0.8 + 0.1 * tf.random.stateless_normal([batch], seeds[3]))
    red = tf.random.stateless_uniform([batch], seeds[4], 1.9, 2.4)
    blue = tf.random.stateless_uniform([batch], seeds[5], 1.5, 1.9)
    gains = tf.stack([red, tf.ones_like(red), blue], axis=-1) * overall[:, None]
    as_pixels = lambda values: tf.reshape(values, [-1, 1, 1, 1])  # noqa: E731
    return {"shot": as_pixels(tf.exp(log_shot)), "read": as_pixels(tf.exp(log_read)),
            "rgb_to_camera": rgb_to_camera, "camera_to_rgb": tf.linalg.inv(rgb_to_camera),
            "gains": tf.reshape(gains, [-1, 1, 1, 3])}


def _unprocess(rgb, camera):
    """sRGB in [0, 1] to an RGGB mosaic of linear sensor values, (N, H, W, 1) with the colours interleaved."""
    linear = 0.5 - tf.sin(tf.asin(1.0 - 2.0 * tf.clip_by_value(rgb, 0.0, 1.0)) / 3.0)  # inverse smoothstep
    linear = tf.maximum(linear, 1e-8) ** 2.2
    sensor = tf.einsum("bhwc,bdc->bhwd", linear, camera["rgb_to_camera"]) / camera["gains"]
    return tf.reduce_sum(tf.clip_by_value(sensor, 0.0, 1.0) * _bayer_masks(tf.shape(rgb)), axis=-1, keepdims=True)


def _process(mosaic, camera):
    """An RGGB mosaic of linear sensor values back to sRGB: demosaic, white balance, colour matrix, gamma, tone."""
    linear = tf.clip_by_value(_demosaic(mosaic) * camera["gains"], 0.0, 1.0)
    linear = tf.clip_by_value(tf.einsum("bhwc,bdc->bhwd", linear, camera["camera_to_rgb"]), 0.0, 1.0)
    srgb = tf.maximum(linear, 1e-8) ** (1 / 2.2)
    return 3.0 * srgb**2 - 2.0 * srgb**3  # smoothstep, the tone curve Brooks et al. invert


def _bayer_masks(shape):
    """(1, H, W, 3) masks of the RGGB pattern: red at even rows and columns, blue at odd ones, green elsewhere."""
    rows = tf.range(shape[1])[:, None] % 2
    cols = tf.range(shape[2])[None, :] % 2
    red, blue = (rows == 0) & (cols == 0), (rows == 1) & (cols == 1)
    green = ~(red | blue)
    return tf.cast(tf.stack([red, green, blue], axis=-1), tf.float32)[None]


def _demosaic(mosaic):
    """Bilinear demosaicing: each missing colour is the weighted mean of its recorded neighbours (exact at borders,
    by dividing by the weights that fell on recorded pixels of that colour)."""
    masks = _bayer_masks(tf.shape(mosaic))
    kernel = tf.tile(tf.reshape(_BILINEAR, [3, 3, 1, 1]), [1, 1, 3, 1])
    spread = tf.nn.depthwise_conv2d(mosaic * masks, kernel, [1, 1, 1, 1], "SAME")
    weight = tf.nn.depthwise_conv2d(tf.broadcast_to(masks, tf.shape(spread)), kernel, [1, 1, 1, 1], "SAME")
    interpolated = spread / tf.maximum(weight, 1e-8)
    return masks * mosaic + (1.0 - masks) * interpolated  # recorded values stay as they were


def _jpeg(images, seed):
    """Each image through JPEG at a quality drawn uniformly from JPEG_QUALITY_RANGE."""
    seeds = tf.random.experimental.stateless_split(seed, tf.shape(images)[0])

    def one(pair):
        image, image_seed = pair
        return tf.image.stateless_random_jpeg_quality(image, *JPEG_QUALITY_RANGE, image_seed)

    return tf.map_fn(one, (images, seeds), fn_output_signature=tf.float32)
