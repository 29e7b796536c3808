"""tf.data pipelines and augmentation: alignment, determinism, re-sampling, preview."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.data.labels import IGNORE_INDEX, palette_colour
from cocoseg.pipeline.prepare.sampling import SamplingConfig
from cocoseg.pipeline.training.augment import augment
from cocoseg.pipeline.training.config import NO_AUGMENTATION, AugmentConfig
from cocoseg.pipeline.training.input import (
    InputConfig,
    class_counts_in_epoch,
    evaluation_dataset,
    training_dataset,
)
from cocoseg.pipeline.training.preview import augmented_examples, preview_grid
from tests.pipeline.conftest import LIMIT, PREPARED_CONFIG

GEOMETRY_ONLY = AugmentConfig(
    brightness=0.0, contrast=0.0, saturation=0.0, scale_min=0.6, scale_max=1.8, rotation_degrees=15.0
)
COLOURS = np.array([palette_colour(index) for index in range(256)], dtype=np.int32)


def _encoded_example(size: int = 96):
    """A mask of 16 class blocks and an image painted with each class's palette colour."""
    rows = np.arange(size)[:, None] * 4 // size
    cols = np.arange(size)[None, :] * 4 // size
    mask = (rows * 4 + cols + 1).astype(np.uint8)
    return COLOURS[mask].astype(np.uint8), mask


def _uniform_neighbourhood(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels whose (2r+1)^2 neighbourhood has one mask value and lies inside the frame:
    away from edges, where bilinear image interpolation (zoomed up to 1.8x) blends two
    colours, or a colour with the black beyond the source image's border."""
    padded = np.pad(mask, radius, mode="constant", constant_values=254)
    same = np.ones(mask.shape, dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            same &= (
                padded[radius + dy : radius + dy + mask.shape[0], radius + dx : radius + dx + mask.shape[1]]
                == mask
            )
    return same


@pytest.mark.parametrize("seed", range(12))
def test_geometry_keeps_image_and_mask_aligned(seed):
    tf = tensorflow()
    image, mask = _encoded_example()
    out_image, out_mask = augment(
        tf.constant(image), tf.constant(mask), tf.constant([7, seed], tf.int64), GEOMETRY_ONLY
    )
    out_image, out_mask = out_image.numpy().astype(np.int32), out_mask.numpy()
    labelled = (out_mask != IGNORE_INDEX) & _uniform_neighbourhood(out_mask)
    assert labelled.sum() > 0.3 * out_mask.size
    error = np.abs(out_image[labelled] - COLOURS[out_mask[labelled]]).max(axis=1)
    assert (error <= 2).mean() > 0.99, f"image colours disagree with the mask at {(error > 2).sum()} pixels"
    assert set(np.unique(out_mask)) <= set(np.unique(mask)) | {IGNORE_INDEX}  # nearest-neighbour only
    padded = (out_mask == IGNORE_INDEX) & _uniform_neighbourhood(out_mask)
    assert (out_image[padded] == 0).all()  # out-of-image pixels: black image, ignored mask


def test_colour_jitter_leaves_the_mask_alone():
    tf = tensorflow()
    image, mask = _encoded_example()
    jitter_only = dataclasses.replace(NO_AUGMENTATION, brightness=0.3, contrast=0.3, saturation=0.3)
    out_image, out_mask = augment(
        tf.constant(image), tf.constant(mask), tf.constant([1, 2], tf.int64), jitter_only
    )
    np.testing.assert_array_equal(out_mask.numpy(), mask)
    assert np.abs(out_image.numpy().astype(int) - image.astype(int)).mean() > 3


def test_augmentation_is_deterministic_per_seed():
    tf = tensorflow()
    image, mask = _encoded_example()
    first = augment(tf.constant(image), tf.constant(mask), tf.constant([5, 9], tf.int64), AugmentConfig())
    again = augment(tf.constant(image), tf.constant(mask), tf.constant([5, 9], tf.int64), AugmentConfig())
    other = augment(tf.constant(image), tf.constant(mask), tf.constant([5, 10], tf.int64), AugmentConfig())
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def _batches(prepared, seed, epoch=0, take=3):
    config = InputConfig(batch_size=8, seed=seed, sampling=SamplingConfig("repeat-factor", 0.2))
    return [
        (images.numpy(), masks.numpy())
        for images, masks in training_dataset(prepared, "train", config, epoch).take(take)
    ]


def test_training_batches_are_reproducible(prepared_demo):
    first, again, other_seed, next_epoch = (
        _batches(prepared_demo, 3),
        _batches(prepared_demo, 3),
        _batches(prepared_demo, 4),
        _batches(prepared_demo, 3, 1),
    )
    for (images, masks), (images_again, masks_again) in zip(first, again):
        np.testing.assert_array_equal(images, images_again)
        np.testing.assert_array_equal(masks, masks_again)
    assert not np.array_equal(first[0][0], other_seed[0][0]) and not np.array_equal(
        first[0][0], next_epoch[0][0]
    )
    assert (
        first[0][0].shape == (8, 128, 128, 3)
        and first[0][0].dtype == np.uint8
        and first[0][1].shape == (8, 128, 128)
    )


def test_repeat_factor_sampling_raises_rare_class_share(prepared_demo):
    plain = class_counts_in_epoch(prepared_demo, "train", InputConfig(sampling=SamplingConfig("none")))
    balanced = class_counts_in_epoch(
        prepared_demo, "train", InputConfig(sampling=SamplingConfig("repeat-factor", 0.2))
    )
    manifest = prepared_demo.manifest["splits"]["train"]
    assert (
        plain[1:21].tolist() == manifest["class_images"][1:21]
    )  # one epoch without sampling sees each image once
    rare = [index for index in range(1, 21) if 0 < plain[index] <= 3]
    person = 15
    share = lambda counts, classes: counts[classes].sum() / counts[1:21].sum()  # noqa: E731
    assert rare and share(balanced, rare) > 1.3 * share(plain, rare)
    assert share(balanced, [person]) < share(plain, [person])


def test_evaluation_dataset_keeps_file_order_and_everything(prepared_demo):
    batches = list(evaluation_dataset(prepared_demo, "val", batch_size=16))
    assert sum(images.shape[0] for images, _masks in batches) == 80
    again = list(evaluation_dataset(prepared_demo, "val", batch_size=16))
    np.testing.assert_array_equal(batches[0][1].numpy(), again[0][1].numpy())


def test_preview_returns_augmented_versions_of_one_image(prepared_workspace):
    pairs, label_map, file_name = augmented_examples(
        prepared_workspace, PREPARED_CONFIG, "train", 2, 5, LIMIT, seed=1
    )
    assert len(pairs) == 5 and file_name.endswith(".jpg") and label_map.name == "voc21"
    assert all(image.shape == (128, 128, 3) and mask.shape == (128, 128) for image, mask in pairs)
    assert not np.array_equal(pairs[0][0], pairs[1][0])
    grid = preview_grid(pairs, label_map, columns=3)
    assert grid.shape == (2 * 128 + 4, 3 * (2 * 128 + 4) + 2 * 4, 3)
