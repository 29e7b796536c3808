"""Deep links into Annotate (``/annotate?dataset=D&split=S&image=FILE&model=M``): checking a request.

Another page (Review) sends the user to an image with a model already chosen; the link's
values come from a URL, so they are data: names pass ``check_name`` and the registries,
the image must be one of the split's file names (it never becomes a path here), and the
model must predict classes that a label map the page offers can hold. A refused link
changes nothing; its message names what was not found and what there is instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from cocoseg.pipeline.annotation.session import DEFAULT_CHOICE, DEFAULT_PRESET
from cocoseg.pipeline.core.workspace import UnsafePathError, Workspace, check_name
from cocoseg.pipeline.data.labels import LabelMap, LabelMapError, build_label_map, default_preset
from cocoseg.pipeline.data.registry import cached_split, get_dataset
from cocoseg.pipeline.data.stats import split_categories
from cocoseg.pipeline.inference.model_store import ModelEntry, get_entry

LINK_KEYS = ("dataset", "split", "image", "model")  # the query parameters; any other is ignored
REQUIRED_KEYS = LINK_KEYS[:3]
MAX_SHOWN = 80  # characters of a refused value repeated in a message


@dataclasses.dataclass(frozen=True)
class LinkRequest:
    """A checked deep link, as the page's Store holds it (``to_dict``): names only.

    Attributes:
        dataset, split: a registered dataset and one of its splits.
        image: a file name of that split's images.
        model: a published model or ensemble to pre-fill with; empty for none.
        preset: the label-map preset the page paints with (the model's, when it has one).
    """

    dataset: str
    split: str
    image: str
    model: str = ""
    preset: str = DEFAULT_PRESET

    @property
    def choice(self) -> str:
        """The page's dataset dropdown value (``"dataset/split"``)."""
        return f"{self.dataset}/{self.split}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> LinkRequest:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: str(value) for key, value in data.items() if key in names})


def _value(query: Mapping, key: str) -> str:
    """One text value of the query ("" when absent); a repeated key is refused, not guessed."""
    value = query.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"the link gives {key} more than once; give it once")
    return value.strip()


def _named(value: str, what: str) -> str:
    try:
        return check_name(value, what)
    except UnsafePathError as error:
        raise ValueError(str(error)) from None


def matching_preset(predicted: LabelMap, categories: Sequence[Mapping], presets: Sequence[str]) -> str | None:
    """The first of ``presets`` (the default first, then the model's own) that gives the model's classes."""
    ordered = dict.fromkeys([DEFAULT_PRESET, predicted.name, *presets])
    for preset in (name for name in ordered if name in presets):
        try:
            if build_label_map(preset, categories).same_classes(predicted):
                return preset
        except LabelMapError:
            continue
    return None


def starting_preset(
    workspace: Workspace,
    choice: str | None,
    entries: Sequence[ModelEntry],
    presets: Sequence[str],
    max_bytes: int,
) -> str:
    """The label map a plain visit opens with, for the split ``choice``.

    The model the page preselects for pre-fill (``entries[0]``) decides when one of ``presets``
    gives its classes over the split, so pre-fill works at once; otherwise, or with no model,
    the split's own default (``labels.default_preset``: the rule every page and the CLI follow).
    """
    dataset, _, split = (choice or DEFAULT_CHOICE).partition("/")
    categories = split_categories(workspace, dataset, split, max_bytes)
    if entries:
        preset = matching_preset(entries[0].label_map(), categories, presets)
        if preset is not None:
            return preset
    return default_preset(categories)


def resolve_link(
    workspace: Workspace, query: Mapping, max_bytes: int, presets: Sequence[str]
) -> LinkRequest | None:
    """Check a deep link's query; None when it names none of ``LINK_KEYS`` (a plain visit).

    Args:
        query: the URL's query parameters (a repeated key arrives as a list and is refused).
        max_bytes: the largest annotation file read (the page's ``max_annotation_bytes``).
        presets: the label-map presets the page offers; a model's classes must fit one of them.

    Raises:
        ValueError: the link cannot be opened; the message says what was not found and what exists.
    """
    values = {key: _value(query, key) for key in LINK_KEYS}
    if not any(values.values()):
        return None
    missing = [key for key in REQUIRED_KEYS if not values[key]]
    if missing:
        raise ValueError(
            f"the link lacks {' and '.join(missing)}: "
            "use /annotate?dataset=D&split=S&image=FILE (and &model=M to pre-fill)"
        )
    registered = get_dataset(workspace, _named(values["dataset"], "dataset name"))
    dataset, split = registered.name, _named(values["split"], "split name")
    registered.split(split)  # refuses an unknown split, naming the ones there are
    coco = cached_split(workspace, dataset, split, max_bytes)
    image = values["image"]
    if not any(entry["file_name"] == image for entry in coco.images):
        raise ValueError(
            f"no image {image[:MAX_SHOWN]!r} in {dataset}/{split} ({len(coco.images)} images); "
            "pick one from Annotate's image list"
        )
    if not values["model"]:
        return LinkRequest(dataset, split, image, preset=default_preset(coco.categories))
    entry = get_entry(workspace, values["model"])
    predicted = entry.label_map()
    preset = matching_preset(predicted, coco.categories, presets)
    if preset is None:
        raise ValueError(
            f"{entry.name} predicts the {predicted.name} label map, which no label map offered here "
            f"({', '.join(presets)}) gives for {dataset}/{split}; pre-fill with another model"
        )
    return LinkRequest(dataset, split, image, entry.name, preset)
