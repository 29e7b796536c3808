"""The training form's values as a config, and its architecture checked against a prepared set (no TF)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.training import (
    AS_PREPARED,
    NO_AUGMENTATION,
    AugmentConfig,
    TrainConfig,
    augment_strengths,
    check_model_choice,
    config_from_form,
    describe_strengths,
    model_options,
    whole_number,
)


def _form(**changes) -> dict:
    values = dict(
        prepared="demo-voc21-128",
        model="unet",
        base_filters=4,
        depth=2,
        epochs=2,
        batch_size=8,
        learning_rate=0.001,
        seed=0,
        optimizer="adam",
        schedule="cosine",
        loss="cross_entropy",
        sampling="none",
        threshold=None,
        augment=True,
        init_from=None,
        freeze_encoder_epochs=0,
        encoder="mobilenet_v2",
        encoder_weights="imagenet",
        precision="auto",
    )
    values.update(changes)
    return values


def _prepared(workspace, name: str, size: int, classes: int = 3) -> str:
    """A prepared set as far as the form reads it: its manifest."""
    folder = workspace.prepared_dir / name
    folder.mkdir(parents=True)
    manifest = {
        "config": {"size": size, "sampling": {"method": "none"}},
        "label_map": {"classes": [{"index": index, "name": f"class {index}"} for index in range(classes)]},
        "splits": {"train": {"examples": 10}, "val": {"examples": 2}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return name


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (3.0, 3), ("7", 7), (0, 0), (-2, -2)])
def test_whole_numbers_pass_as_ints(value, expected):
    number = whole_number(value, "epochs")
    assert number == expected and isinstance(number, int)


@pytest.mark.parametrize("value", [None, 2.5, "two", "", float("inf"), float("nan")])
def test_anything_else_is_refused_naming_the_field(value):
    with pytest.raises(ConfigError) as raised:
        whole_number(value, "seed")
    assert raised.value.field == "seed" and raised.value.message == "enter a whole number"


def test_model_options_keep_only_what_the_architecture_takes():
    assert model_options("unet", 16, 3) == {"base_filters": 16, "depth": 3}
    assert model_options("unet", None, 3) == {"depth": 3}  # an empty field keeps the default
    assert model_options("pretrained_unet", 16, 3) == {}  # no encoder levels to set
    assert model_options("no-such-model", 16, 3) == {} and model_options(None, 16, 3) == {}


def test_a_valid_form_is_a_config():
    config = config_from_form(**_form(epochs=3.0, augment=None))
    assert config == TrainConfig(
        "demo-voc21-128",
        model="unet",
        model_options={"base_filters": 4, "depth": 2},
        epochs=3,
        batch_size=8,
        learning_rate=0.001,
        sampling="none",
        augment=False,
        seed=0,
        precision="auto",  # the form's default; the job resolves it on its device
    )


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"epochs": None}, "epochs", "enter a whole number"),
        ({"batch_size": 2.5}, "batch_size", "enter a whole number"),
        ({"seed": None}, "seed", "enter a whole number"),
        ({"learning_rate": None}, "learning_rate", "enter a positive number such as 0.001"),
        ({"learning_rate": -1}, "learning_rate", "must be a positive number"),
        ({"epochs": 0}, "epochs", "from 1 to 1000"),
        ({"depth": 7}, "model_options", "between 2 and 6"),
        ({"model": None}, "model", ""),
        ({"optimizer": "rmsprop"}, "optimizer", "adam"),
        ({"sampling": "oversample"}, "sampling", "repeat-factor"),
        ({"sampling": "repeat-factor", "threshold": 0}, "threshold", "must be in (0, 1]"),
        ({"threshold": 1.5}, "threshold", "must be in (0, 1]"),
        ({"threshold": "0.2"}, "threshold", "or leave it empty"),
    ],
)
def test_a_bad_field_is_named_with_its_message(changes, field, text):
    with pytest.raises(ConfigError) as raised:
        config_from_form(**_form(**changes))
    assert raised.value.field == field and text in raised.value.message


def test_sampling_as_prepared_is_left_open_until_the_run_is_created():
    config = config_from_form(**_form(sampling=AS_PREPARED, threshold=None))
    assert config.sampling is None and config.threshold is None
    recorded = {"method": "repeat-factor", "threshold": 0.3}
    strengths = dataclasses.asdict(AugmentConfig())  # resolving also writes every augmentation strength out
    assert config.resolved(recorded) == dataclasses.replace(
        config, sampling="repeat-factor", threshold=0.3, augmentation=strengths
    )
    override = config_from_form(**_form(sampling="none", threshold=0.5)).resolved(recorded)
    assert (override.sampling, override.threshold) == ("none", 0.5)
    only_threshold = config_from_form(**_form(sampling=AS_PREPARED, threshold=0.05)).resolved(recorded)
    assert (only_threshold.sampling, only_threshold.threshold) == ("repeat-factor", 0.05)
    assert TrainConfig.from_dict(override.to_dict()) == override  # a run folder's config round-trips


def test_no_choice_until_an_architecture_and_a_set_are_chosen(workspace):
    assert check_model_choice(workspace, None, 32, 4, "demo") is None
    assert check_model_choice(workspace, "no-such-model", 32, 4, "demo") is None
    assert check_model_choice(workspace, "unet", 32, 4, None) is None


def test_a_choice_that_fits_the_set_asks_for_its_summary(workspace):
    name = _prepared(workspace, "set-128", 128, classes=21)
    choice = check_model_choice(workspace, "unet", 8, 6, name)
    assert choice.problem == "" and choice.takes_depth and (choice.size, choice.classes) == (128, 21)
    assert choice.description.startswith("UNet")
    assert choice.summary_request() == {
        "model": "unet",
        "options": {"base_filters": 8, "depth": 6},
        "size": 128,
        "classes": 21,
    }
    assert not check_model_choice(workspace, "pretrained_unet", 8, 6, name).takes_depth


def test_a_depth_the_set_size_cannot_halve_is_a_problem_and_asks_for_nothing(workspace):
    name = _prepared(workspace, "set-96", 96)
    choice = check_model_choice(workspace, "unet", 8, 6, name)
    assert "96 px is not a multiple of 64" in choice.problem and "nearest: 64 or 128" in choice.problem
    assert choice.summary_request() is None
    assert check_model_choice(workspace, "unet", 8, 5, name).problem == ""  # 32 divides 96


def test_an_unknown_or_unsafe_set_is_a_problem(workspace):
    assert (
        "no prepared set called 'missing'" in check_model_choice(workspace, "unet", 8, 2, "missing").problem
    )
    assert check_model_choice(workspace, "unet", 8, 2, "../etc").problem


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"zoom": 2}, "unknown strength 'zoom'; known: flip, scale_min"),
        ({"rotation_degrees": "a lot"}, "rotation_degrees must be a number"),
        ({"brightness": float("nan")}, "brightness must be a number"),
        ({"contrast": True}, "contrast must be a number"),
        ({"flip": 1}, "flip must be true or false"),
        ({"rotation_degrees": 90}, "rotation_degrees: must be 0-45"),
        ({"scale_min": 2.0, "scale_max": 1.0}, "scale_min: need 0.1 <= min <= max <= 4"),
    ],
)
def test_augmentation_strengths_are_refused_by_name(changes, text):
    with pytest.raises(ConfigError) as raised:
        augment_strengths(changes)
    assert raised.value.field == "augmentation" and text in raised.value.message
    with pytest.raises(ConfigError, match="augmentation"):
        TrainConfig("any", augmentation=changes, augment=False)  # refused even when switched off


def test_augmentation_strengths_change_the_defaults_and_read_as_a_line():
    assert augment_strengths({}) == AugmentConfig()
    changed = augment_strengths({"rotation_degrees": 20, "flip": False, "saturation": 0})
    assert changed == dataclasses.replace(AugmentConfig(), rotation_degrees=20, flip=False, saturation=0)
    assert describe_strengths(changed) == "scale 0.75–1.5 · rotation ±20° · brightness ±0.15 · contrast ±0.2"
    assert describe_strengths(AugmentConfig()).startswith("flip · scale 0.75–1.5 · rotation ±10°")
    assert describe_strengths(NO_AUGMENTATION) == "none"


def test_the_form_passes_stored_strengths_and_a_saved_config_keeps_them():
    config = config_from_form(**_form(), augmentation={"rotation_degrees": 20})
    assert config.augment_config().rotation_degrees == 20
    with pytest.raises(ConfigError, match="augmentation: must be NAME: VALUE pairs"):  # a forged Store
        config_from_form(**_form(), augmentation="garbage")
    assert config_from_form(
        **_form(augment=False), augmentation={"rotation_degrees": 20}
    ).augment_config() == (NO_AUGMENTATION)
    saved = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert saved == config and saved.augmentation == {"rotation_degrees": 20}
    resolved = config.resolved({"method": "none"})
    assert resolved.augmentation == dataclasses.asdict(config.augment_config())  # every strength written out
    old = {key: value for key, value in config.to_dict().items() if key != "augmentation"}
    assert TrainConfig.from_dict(old).augment_config() == AugmentConfig()  # a config saved before strengths
