"""Training augmentations on (image, mask) pairs, in TensorFlow, deterministic per seed.

Every random draw uses stateless ops seeded by the element's own seed pair, so the
same seed and element index give the same result however many parallel calls run.
Geometry moves image and mask together (bilinear for the image, nearest-neighbour
for the mask); pixels that come from outside the image are 0 in the image and 255
(ignore) in the mask. Colour jitter touches the image only.
"""

from __future__ import annotations

import math

from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.data.labels import IGNORE_INDEX
from cocoseg.pipeline.training.config import AugmentConfig


def _uniform(seed, low: float, high: float):
    tf = tensorflow()
    return tf.random.stateless_uniform([], seed=seed, minval=low, maxval=high)


def _scale_and_crop(image, mask, size: int, config: AugmentConfig, seeds):
    """Zoom by a random factor, then pad (image 0, mask 255) and crop back to size x size."""
    tf = tensorflow()
    factor = _uniform(seeds[0], config.scale_min, config.scale_max)
    scaled = tf.maximum(1, tf.cast(tf.round(size * factor), tf.int32))
    image = tf.image.resize(image, [scaled, scaled], method="bilinear")
    mask = tf.image.resize(mask, [scaled, scaled], method="nearest")
    canvas = tf.maximum(scaled, size)
    pad = canvas - scaled
    pad_y = tf.cast(tf.floor(_uniform(seeds[1], 0.0, 1.0) * tf.cast(pad + 1, tf.float32)), tf.int32)
    pad_x = tf.cast(tf.floor(_uniform(seeds[2], 0.0, 1.0) * tf.cast(pad + 1, tf.float32)), tf.int32)
    paddings = [[pad_y, pad - pad_y], [pad_x, pad - pad_x], [0, 0]]
    image = tf.pad(image, paddings, constant_values=0.0)
    mask = tf.pad(mask, paddings, constant_values=float(IGNORE_INDEX))
    spare = canvas - size
    crop_y = tf.cast(tf.floor(_uniform(seeds[3], 0.0, 1.0) * tf.cast(spare + 1, tf.float32)), tf.int32)
    crop_x = tf.cast(tf.floor(_uniform(seeds[4], 0.0, 1.0) * tf.cast(spare + 1, tf.float32)), tf.int32)
    image = tf.slice(image, [crop_y, crop_x, 0], [size, size, 3])
    mask = tf.slice(mask, [crop_y, crop_x, 0], [size, size, 1])
    return image, mask


def _rotation_transform(angle, size: int):
    """Projective transform (output -> input coordinates) rotating about the centre."""
    tf = tensorflow()
    centre = (size - 1) / 2.0
    cosine, sine = tf.cos(angle), tf.sin(angle)
    offset_x = centre - cosine * centre + sine * centre
    offset_y = centre - sine * centre - cosine * centre
    return tf.reshape(tf.stack([cosine, -sine, offset_x, sine, cosine, offset_y, 0.0, 0.0]), [1, 8])


def _rotate(image, mask, size: int, config: AugmentConfig, seed):
    tf = tensorflow()
    limit = math.radians(config.rotation_degrees)
    transform = _rotation_transform(_uniform(seed, -limit, limit), size)

    def apply(values, interpolation: str, fill: float):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=values[None],
            transforms=transform,
            output_shape=[size, size],
            fill_value=fill,
            interpolation=interpolation,
            fill_mode="CONSTANT",
        )[0]

    return apply(image, "BILINEAR", 0.0), apply(mask, "NEAREST", float(IGNORE_INDEX))


def _jitter(image, config: AugmentConfig, seeds):
    """Brightness, contrast and saturation on an image scaled to [0, 1]."""
    tf = tensorflow()
    if config.brightness:
        image = tf.image.adjust_brightness(image, _uniform(seeds[0], -config.brightness, config.brightness))
    if config.contrast:
        image = tf.image.adjust_contrast(image, _uniform(seeds[1], 1 - config.contrast, 1 + config.contrast))
    if config.saturation:
        image = tf.image.adjust_saturation(
            image, _uniform(seeds[2], 1 - config.saturation, 1 + config.saturation)
        )
    return tf.clip_by_value(image, 0.0, 1.0)


def augment(image, mask, seed, config: AugmentConfig):
    """Augment one example.

    Args:
        image: uint8 (S, S, 3).
        mask: uint8 (S, S) class indices.
        seed: int32/int64 tensor of shape [2], unique per element (and epoch).
        config: strengths.

    Returns:
        (image uint8 (S, S, 3), mask uint8 (S, S)).
    """
    tf = tensorflow()
    size = int(image.shape[0])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=10)
    pixels = tf.cast(image, tf.float32) / 255.0
    labels = tf.cast(mask, tf.float32)[..., None]
    if config.flip:
        flip = _uniform(seeds[0], 0.0, 1.0) < 0.5
        pixels = tf.where(flip, tf.reverse(pixels, axis=[1]), pixels)
        labels = tf.where(flip, tf.reverse(labels, axis=[1]), labels)
    if config.scale_min != 1.0 or config.scale_max != 1.0:
        pixels, labels = _scale_and_crop(pixels, labels, size, config, seeds[1:6])
    if config.rotation_degrees:
        pixels, labels = _rotate(pixels, labels, size, config, seeds[6])
    pixels = _jitter(pixels, config, seeds[7:10])
    pixels = tf.cast(tf.round(pixels * 255.0), tf.uint8)
    labels = tf.cast(tf.round(labels[..., 0]), tf.uint8)
    return tf.ensure_shape(pixels, [size, size, 3]), tf.ensure_shape(labels, [size, size])
