"""The Keras-free catalog agrees with the builders it describes."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from cocoseg.models.catalog import CATALOG, check_model_settings


def test_catalog_names_every_builder_option_with_its_default():
    from cocoseg.models.registry import ARCHITECTURES

    assert list(CATALOG) == list(ARCHITECTURES)
    for name, info in CATALOG.items():
        parameters = inspect.signature(ARCHITECTURES[name].build).parameters
        builder_options = {
            key: value.default for key, value in parameters.items() if key not in ("num_classes", "size")
        }
        assert info.defaults() == builder_options, name


def test_catalog_imports_no_keras():
    code = (
        "import sys, cocoseg.models.catalog, cocoseg.pipeline.training.loop; "
        "sys.exit(int('keras' in sys.modules or 'tensorflow' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


@pytest.mark.parametrize(
    ("name", "options", "size", "field"),
    [
        ("unet", {"depth": 4}, 100, "size"),
        ("unet", {"depth": 3}, 100, "size"),
        ("pretrained_unet", {}, 48, "size"),
        ("unet", {"depth": 1}, 64, "depth"),
        ("unet", {"base_filters": "8"}, 64, "base_filters"),
        ("unet", {"base_filters": True}, 64, "base_filters"),
        ("unet", {"width": 3}, 64, "model_options"),
        ("transunet", {"dim": 100, "heads": 3}, 64, "dim"),
        ("pretrained_unet", {"encoder_weights": "coco"}, 64, "encoder_weights"),
        ("deeplabv3_plus", {"encoder": "vgg16"}, 64, "encoder"),
        ("deeplabv3_plus", {"aspp_filters": 8}, 64, "aspp_filters"),
        ("deeplabv3_plus", {}, 80, "size"),
        ("segformer", {}, 64, "model"),
    ],
)
def test_settings_the_builders_refuse_are_refused_with_the_field(name, options, size, field):
    with pytest.raises(ValueError) as error:
        check_model_settings(name, options, size)
    assert str(error.value).startswith(f"{field}: ")


def test_a_size_the_builder_refuses_is_refused_by_the_catalog_too():
    from cocoseg.models.registry import build_model

    for size, accepted in ((96, False), (128, True)):
        catalog_ok = True
        try:
            check_model_settings("unet", {"depth": 6}, size)
        except ValueError:
            catalog_ok = False
        try:
            build_model("unet", 3, size, depth=6, base_filters=4)
            builder_ok = True
        except ValueError:
            builder_ok = False
        assert catalog_ok == builder_ok == accepted


def test_size_message_suggests_the_nearest_sizes():
    with pytest.raises(ValueError, match="nearest: 96 or 112"):
        check_model_settings("unet", {"depth": 4}, 100)
