"""Argument shapes more than one command takes: NAME=VALUE settings, augmentation strengths."""

from __future__ import annotations

import argparse
import json

from cocoseg.pipeline.core import ConfigError


def name_value_pairs(pairs: list[str] | None, field: str) -> dict:
    """``["depth=3", "base_filters=16"]`` -> ``{"depth": 3, "base_filters": 16}`` (values read as JSON
    where they parse, else kept as text); ``field`` names the setting a malformed pair is refused for."""
    settings = {}
    for pair in pairs or []:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError(field, f"write them as NAME=VALUE, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def add_augmentation_argument(parser: argparse.ArgumentParser) -> None:
    """``--augmentation NAME=VALUE`` (repeatable): the strengths the Prepare page's preview tunes."""
    parser.add_argument(
        "--augmentation",
        action="append",
        metavar="NAME=VALUE",
        help="an augmentation strength (repeatable): flip, scale_min, scale_max, rotation_degrees, "
        "brightness, contrast, saturation, e.g. rotation_degrees=20 (default: the Prepare page's "
        "starting values)",
    )
