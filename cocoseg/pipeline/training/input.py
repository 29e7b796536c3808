"""tf.data input pipelines over a prepared set: decode -> train parse / eval parse.

Training reads interleave the shards in parallel, apply repeat-factor sampling
(stochastic rounding of each image's repeat factor, seeded), shuffle, augment in
parallel and prefetch, so the accelerator never waits. Evaluation reads decode only.
Everything random is seeded: the same seed and epoch give the same batches.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.prepare.examples import (
    FEATURE_CLASSES,
    FEATURE_FORMAT,
    FEATURE_ID,
    FEATURE_IMAGE,
    FEATURE_MASK,
)
from cocoseg.pipeline.prepare.records import feature_spec
from cocoseg.pipeline.prepare.sampling import SamplingConfig, class_repeat_factors, image_repeat_factors
from cocoseg.pipeline.prepare.sets import PreparedSet
from cocoseg.pipeline.prepare.tfrecord import list_shards
from cocoseg.pipeline.training.augment import augment
from cocoseg.pipeline.training.config import NO_AUGMENTATION, AugmentConfig

CACHE_LIMIT_BYTES = 2 * 1024**3


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """How training batches are read.

    Attributes:
        batch_size: examples per batch.
        augment: augmentation strengths (``NO_AUGMENTATION`` to switch off).
        sampling: class-balanced sampling; None uses the one recorded in the manifest.
        shuffle_buffer: examples held for shuffling.
        cache: keep decoded examples in memory: ``auto`` (when they fit in
            ``CACHE_LIMIT_BYTES``), ``always`` or ``never``.
        seed: seeds shard order, sampling, shuffling and augmentation.
    """

    batch_size: int = 8
    augment: AugmentConfig = AugmentConfig()
    sampling: SamplingConfig | None = None
    shuffle_buffer: int = 512
    cache: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.cache not in ("auto", "always", "never"):
            raise ValueError(f"cache: must be auto, always or never, got {self.cache!r}")


def decode_record(serialized):
    """Parse one record into ``{"image", "mask", "classes", "id"}`` (uint8 image/mask)."""
    tf = tensorflow()
    features = tf.io.parse_single_example(serialized, feature_spec())
    image = tf.cond(
        tf.equal(features[FEATURE_FORMAT], b"jpeg"),
        lambda: tf.io.decode_jpeg(features[FEATURE_IMAGE], channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_png(features[FEATURE_IMAGE], channels=3),
    )
    mask = tf.io.decode_png(features[FEATURE_MASK], channels=1)[..., 0]
    return {
        "image": image,
        "mask": mask,
        "classes": tf.sparse.to_dense(features[FEATURE_CLASSES]),
        "id": features[FEATURE_ID],
    }


def _records(prepared: PreparedSet, split: str, shuffle_seed: int | None):
    tf = tensorflow()
    shards = [str(path) for path in list_shards(prepared.folder, split)]
    files = tf.data.Dataset.from_tensor_slices(shards)
    if shuffle_seed is not None:
        files = files.shuffle(len(shards), seed=shuffle_seed)
    return files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(shards), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _with_static_shape(size: int):
    tf = tensorflow()

    def shape(example):
        return {
            **example,
            "image": tf.ensure_shape(example["image"], [size, size, 3]),
            "mask": tf.ensure_shape(example["mask"], [size, size]),
        }

    return shape


def _should_cache(prepared: PreparedSet, split: str, mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    manifest = prepared.manifest
    size = manifest["config"]["size"]
    return manifest["splits"][split]["examples"] * size * size * 4 <= CACHE_LIMIT_BYTES


def evaluation_dataset(prepared: PreparedSet, split: str, batch_size: int = 8):
    """Batches of ``(image uint8 [B,S,S,3], mask uint8 [B,S,S])`` in file order, no augmentation."""
    tf = tensorflow()
    size = prepared.manifest["config"]["size"]
    examples = _records(prepared, split, None).map(
        decode_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    examples = examples.map(_with_static_shape(size))
    return (
        examples.map(lambda example: (example["image"], example["mask"]))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def _repeat_table(prepared: PreparedSet, split: str, sampling: SamplingConfig):
    """Per-class repeat factors as a tensor, from the manifest's class counts."""
    tf = tensorflow()
    summary = prepared.manifest["splits"][split]
    factors = class_repeat_factors(summary["class_images"], summary["examples"], sampling)
    return tf.constant(np.asarray(factors, dtype=np.float32))


def split_image_classes(prepared: PreparedSet, split: str) -> list[list[int]]:
    """The classes present in each example of a split, read from the shards' class lists only."""
    tf = tensorflow()
    features = {FEATURE_CLASSES: tf.io.VarLenFeature(tf.int64)}
    classes = _records(prepared, split, None).map(
        lambda serialized: tf.sparse.to_dense(
            tf.io.parse_single_example(serialized, features)[FEATURE_CLASSES]
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return [row.tolist() for row in classes.as_numpy_iterator()]


def expected_epoch_images(prepared: PreparedSet, split: str, sampling: SamplingConfig) -> float:
    """Examples one epoch reads on average with ``sampling`` (the sum of the images' repeat factors).

    The manifest records the figure for the sampling chosen at preparation; another method or
    threshold is counted from the shards' class lists, so the steps per epoch, the learning-rate
    schedule and the ETA match what training actually reads.
    """
    summary = prepared.manifest["splits"][split]
    if sampling.method == "none":
        return float(summary["examples"])
    recorded = summary.get("sampling") or {}
    if recorded.get("method") == sampling.method and recorded.get("threshold") == sampling.threshold:
        return float(recorded["after"]["epoch_images"])
    factors = class_repeat_factors(summary["class_images"], summary["examples"], sampling)
    return float(image_repeat_factors(split_image_classes(prepared, split), factors).sum())


def training_dataset(
    prepared: PreparedSet, split: str = "train", config: InputConfig = InputConfig(), epoch: int = 0
):
    """One epoch of augmented, re-sampled, shuffled training batches.

    Each example appears floor(r) or ceil(r) times (mean r, its repeat factor);
    augmentation seeds are (seed + epoch, position in the epoch).

    Returns:
        tf.data.Dataset of ``(image uint8 [B,S,S,3], mask uint8 [B,S,S])``.
    """
    tf = tensorflow()
    manifest = prepared.manifest
    size = manifest["config"]["size"]
    sampling = config.sampling or SamplingConfig(**manifest["config"]["sampling"])
    seed = config.seed + epoch
    examples = _records(prepared, split, seed).map(
        decode_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    examples = examples.map(_with_static_shape(size))
    if _should_cache(prepared, split, config.cache):
        examples = examples.cache()
    if sampling.method != "none":
        table = _repeat_table(prepared, split, sampling)

        def repeat_example(position, example):
            factors = tf.gather(table, example["classes"])
            factor = tf.reduce_max(tf.concat([factors, [1.0]], axis=0))
            draw = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), position]))
            copies = tf.cast(tf.floor(factor), tf.int64) + tf.cast(draw < factor - tf.floor(factor), tf.int64)
            return tf.data.Dataset.from_tensors(example).repeat(copies)

        examples = examples.enumerate().flat_map(repeat_example)
    examples = examples.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    augment_config = config.augment

    def augmented(position, example):
        image, mask = augment(
            example["image"], example["mask"], tf.stack([tf.cast(seed, tf.int64), position]), augment_config
        )
        return image, mask

    if augment_config == NO_AUGMENTATION:
        batches = examples.map(lambda example: (example["image"], example["mask"]))
    else:
        batches = examples.enumerate().map(augmented, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.batch(config.batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def class_counts_in_epoch(
    prepared: PreparedSet, split: str, config: InputConfig, epoch: int = 0
) -> np.ndarray:
    """Images per class seen in one training epoch (decodes masks; for tests and reports)."""
    counts = np.zeros(prepared.label_map().num_classes, dtype=np.int64)
    for _images, masks in training_dataset(
        prepared, split, dataclasses.replace(config, augment=NO_AUGMENTATION), epoch
    ):
        for mask in masks.numpy():
            present = np.unique(mask)
            counts[present[present < counts.size]] += 1
    return counts
