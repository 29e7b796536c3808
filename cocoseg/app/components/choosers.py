"""The "dataset/split" choice that the Explore, Evaluate and Compare pages offer, written and read
in one place."""

from __future__ import annotations

DEFAULT_SPLIT = "demo/val"


def split_choices(datasets) -> list[str]:
    """``dataset/split`` for every split of the registered datasets (``registry.list_datasets``)."""
    return [f"{entry.name}/{split}" for entry in datasets for split in entry.splits]


def default_split(choices: list[str]) -> str | None:
    """The demo's val split when it is offered, else the first choice (None when there is none)."""
    return DEFAULT_SPLIT if DEFAULT_SPLIT in choices else (choices[0] if choices else None)


def parse_split(choice: str | None) -> tuple[str, str]:
    """(dataset, split) of a choice; no choice reads as the demo's val split."""
    dataset, _, split = (choice or DEFAULT_SPLIT).partition("/")
    return dataset, split
