"""A built example <-> ``tf.train.Example``: the record layout preparation writes and training parses."""

from __future__ import annotations

from cocoseg.pipeline.prepare.examples import (
    FEATURE_CLASSES,
    FEATURE_FILE_NAME,
    FEATURE_FORMAT,
    FEATURE_ID,
    FEATURE_IMAGE,
    FEATURE_MASK,
    FEATURE_SOURCE_HEIGHT,
    FEATURE_SOURCE_WIDTH,
    ExampleResult,
)


def to_tf_example(result: ExampleResult, encoding: str, source_height: int, source_width: int) -> bytes:
    """Serialize a built example as a ``tf.train.Example``."""
    from cocoseg.pipeline.core.tf_runtime import tensorflow

    tf = tensorflow()

    def as_bytes(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def as_ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    features = {
        FEATURE_IMAGE: as_bytes(result.image_bytes),
        FEATURE_FORMAT: as_bytes(encoding.encode()),
        FEATURE_MASK: as_bytes(result.mask_bytes),
        FEATURE_ID: as_ints([result.image_id]),
        FEATURE_FILE_NAME: as_bytes(result.file_name.encode("utf-8")),
        FEATURE_SOURCE_HEIGHT: as_ints([source_height]),
        FEATURE_SOURCE_WIDTH: as_ints([source_width]),
        FEATURE_CLASSES: as_ints(result.classes),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def feature_spec():
    """The parsing spec of the records ``to_tf_example`` writes."""
    from cocoseg.pipeline.core.tf_runtime import tensorflow

    tf = tensorflow()
    return {
        FEATURE_IMAGE: tf.io.FixedLenFeature([], tf.string),
        FEATURE_FORMAT: tf.io.FixedLenFeature([], tf.string),
        FEATURE_MASK: tf.io.FixedLenFeature([], tf.string),
        FEATURE_ID: tf.io.FixedLenFeature([], tf.int64),
        FEATURE_FILE_NAME: tf.io.FixedLenFeature([], tf.string),
        FEATURE_SOURCE_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        FEATURE_SOURCE_WIDTH: tf.io.FixedLenFeature([], tf.int64),
        FEATURE_CLASSES: tf.io.VarLenFeature(tf.int64),
    }
