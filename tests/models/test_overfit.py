"""Every architecture can fit 4 real demo images: training loss falls by half within a few dozen steps."""

from __future__ import annotations

import numpy as np
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.training.input import evaluation_dataset
from cocoseg.pipeline.training.loop import make_train_step

tf = tensorflow()

import keras  # noqa: E402

from cocoseg.models.losses import cross_entropy  # noqa: E402
from cocoseg.models.registry import ARCHITECTURES, build_model  # noqa: E402

OPTIONS = {
    "unet": {"base_filters": 16, "depth": 3},
    "attention_unet": {"base_filters": 16, "depth": 3},
    "residual_unet": {"base_filters": 16, "depth": 3},
    "transunet": {"base_filters": 16, "depth": 3, "layers_count": 2, "heads": 4, "dim": 64},
    "pretrained_unet": {},
    "deeplabv3_plus": {"aspp_filters": 64},
}
STEPS = 40


@pytest.fixture(scope="module")
def four_images(prepared_demo):
    images, masks = next(iter(evaluation_dataset(prepared_demo, "val", batch_size=4)))
    return images, masks


@pytest.mark.slow
@pytest.mark.extended  # make test trains the default UNet on shapes (tests/pipeline/training/test_train.py)
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_architecture_overfits_four_real_images(name, four_images):
    images, masks = four_images
    keras.utils.set_random_seed(0)
    model = build_model(name, num_classes=21, size=int(images.shape[1]), **OPTIONS[name])
    step = make_train_step(model, keras.optimizers.Adam(3e-3), cross_entropy)
    losses = [float(step(images, masks))]
    while len(losses) < STEPS and min(losses) > 0.5 * losses[0]:  # stop once it has halved
        losses.append(float(step(images, masks)))
    assert np.isfinite(losses).all()
    assert min(losses) <= 0.5 * losses[0], f"{name}: {losses[0]:.3f} -> {min(losses):.3f} in {STEPS} steps"
