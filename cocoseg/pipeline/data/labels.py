"""Label maps: which COCO categories become which class index of a semantic mask.

A label map gives class names (index 0 is background), a stable colour palette, the
COCO-id -> class-index map and its inverse (so annotations saved from a mask get
their original, usually non-contiguous, COCO ids back), and the mask protocol that
decides what crowd regions and overlapping instances become.

Presets:
    coco80: the 80 COCO "thing" categories + background (81 classes), by COCO id.
    voc21: the 20 Pascal VOC classes found in COCO + background, with the protocol
        behind torchvision's published COCO-val numbers.
    supercategory: one class per supercategory of the dataset + background.
    all: every category of the dataset, in id order (for non-COCO datasets).
    custom: a chosen subset of category names; everything else is background.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

# 255 = ignore in every mask; defined beside the losses and metrics that skip it (models/ cannot
# import the pipeline), and imported from here by the rest of the pipeline
from cocoseg.models.metrics import IGNORE_INDEX

BACKGROUND = "background"
PRESETS = ("coco80", "voc21", "supercategory", "all", "custom")
# Presets whose classes are COCO categories, so files saved with them keep COCO names.
COCO_PRESETS = ("coco80", "voc21", "supercategory")

CROWD_POLICIES = ("ignore", "paint")
OVERLAP_POLICIES = ("ignore-different", "ignore-any", "larger-first")

# (COCO id, name, supercategory) of the 80 COCO 2017 thing categories.
COCO_CATEGORIES: tuple[tuple[int, str, str], ...] = (
    (1, "person", "person"),
    (2, "bicycle", "vehicle"),
    (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"),
    (6, "bus", "vehicle"),
    (7, "train", "vehicle"),
    (8, "truck", "vehicle"),
    (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"),
    (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"),
    (15, "bench", "outdoor"),
    (16, "bird", "animal"),
    (17, "cat", "animal"),
    (18, "dog", "animal"),
    (19, "horse", "animal"),
    (20, "sheep", "animal"),
    (21, "cow", "animal"),
    (22, "elephant", "animal"),
    (23, "bear", "animal"),
    (24, "zebra", "animal"),
    (25, "giraffe", "animal"),
    (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"),
    (32, "tie", "accessory"),
    (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"),
    (35, "skis", "sports"),
    (36, "snowboard", "sports"),
    (37, "sports ball", "sports"),
    (38, "kite", "sports"),
    (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"),
    (41, "skateboard", "sports"),
    (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"),
    (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"),
    (48, "fork", "kitchen"),
    (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"),
    (52, "banana", "food"),
    (53, "apple", "food"),
    (54, "sandwich", "food"),
    (55, "orange", "food"),
    (56, "broccoli", "food"),
    (57, "carrot", "food"),
    (58, "hot dog", "food"),
    (59, "pizza", "food"),
    (60, "donut", "food"),
    (61, "cake", "food"),
    (62, "chair", "furniture"),
    (63, "couch", "furniture"),
    (64, "potted plant", "furniture"),
    (65, "bed", "furniture"),
    (67, "dining table", "furniture"),
    (70, "toilet", "furniture"),
    (72, "tv", "electronic"),
    (73, "laptop", "electronic"),
    (74, "mouse", "electronic"),
    (75, "remote", "electronic"),
    (76, "keyboard", "electronic"),
    (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"),
    (79, "oven", "appliance"),
    (80, "toaster", "appliance"),
    (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"),
    (84, "book", "indoor"),
    (85, "clock", "indoor"),
    (86, "vase", "indoor"),
    (87, "scissors", "indoor"),
    (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
)

# COCO ids of the Pascal VOC classes, in VOC class order 1..20, with VOC names.
VOC_COCO_IDS: tuple[int, ...] = (5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)
VOC_NAMES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
# torchvision's COCO training filter: images whose kept annotations sum to <= 1000 px are dropped.
VOC_MIN_TRAIN_AREA = 1000


class LabelMapError(ValueError):
    """The preset cannot be built for this dataset's categories."""


def palette_colour(index: int) -> tuple[int, int, int]:
    """A stable, well-separated colour for class ``index`` (Pascal VOC bit-spreading scheme).

    The bits of the index are spread over the high bits of R, G and B, so neighbouring
    indices get very different colours and the colour of a class never depends on how
    many classes the map has.
    """
    red = green = blue = 0
    value = index
    for shift in range(7, -1, -1):
        red |= ((value >> 0) & 1) << shift
        green |= ((value >> 1) & 1) << shift
        blue |= ((value >> 2) & 1) << shift
        value >>= 3
        if value == 0:
            break
    return red, green, blue


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """A category -> class mapping with its names, palette and mask protocol.

    Attributes:
        name: preset name (``custom`` maps record their chosen names in ``class_names``).
        class_names: index 0 is background.
        category_to_class: COCO category id -> class index (ids absent map to background).
        class_to_categories: class index -> the COCO ids it came from (for saving back).
        crowd: what crowd regions become: ``ignore`` (255) or ``paint`` (their class).
        overlap: pixels covered by several instances: ``ignore-different`` (255 where the
            classes differ), ``ignore-any`` (255 wherever two kept instances overlap) or
            ``larger-first`` (larger instances painted first, smaller ones on top).
        min_train_area: training images whose kept annotations' ``area`` sums to no more
            than this are dropped (0: keep all).
        protocol_fixed: the preset defines its own protocol (voc21) and it wins over options.
    """

    name: str
    class_names: tuple[str, ...]
    category_to_class: Mapping[int, int]
    class_to_categories: Mapping[int, tuple[int, ...]]
    crowd: str = "ignore"
    overlap: str = "ignore-different"
    min_train_area: float = 0.0
    protocol_fixed: bool = False

    def __post_init__(self) -> None:
        if not self.class_names or self.class_names[0] != BACKGROUND:
            raise ValueError("class 0 must be background")
        if len(self.class_names) > IGNORE_INDEX:
            raise ValueError(
                f"at most {IGNORE_INDEX - 1} classes fit a uint8 mask, got {len(self.class_names) - 1}"
            )
        if self.crowd not in CROWD_POLICIES:
            raise ValueError(f"crowd policy must be one of {CROWD_POLICIES}, got {self.crowd!r}")
        if self.overlap not in OVERLAP_POLICIES:
            raise ValueError(f"overlap policy must be one of {OVERLAP_POLICIES}, got {self.overlap!r}")
        for category_id, class_index in self.category_to_class.items():
            if not 1 <= class_index < len(self.class_names):
                raise ValueError(
                    f"category {category_id} maps to class {class_index}, "
                    f"outside 1..{len(self.class_names) - 1}"
                )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        return tuple(palette_colour(index) for index in range(self.num_classes))

    def class_of(self, category_id: int) -> int:
        """Class index of a COCO category id (0 when the map does not keep it)."""
        return self.category_to_class.get(category_id, 0)

    def with_protocol(self, crowd: str | None = None, overlap: str | None = None) -> LabelMap:
        """A copy with another mask protocol (``None`` keeps the current rule).

        Raises:
            LabelMapError: the preset carries its own protocol (voc21) and a change was asked.
        """
        changed = (crowd or self.crowd, overlap or self.overlap) != (self.crowd, self.overlap)
        if changed and self.protocol_fixed:
            raise LabelMapError(
                f"{self.name} carries its own mask protocol (crowd={self.crowd}, overlap={self.overlap}); "
                "it cannot be changed"
            )
        return dataclasses.replace(self, crowd=crowd or self.crowd, overlap=overlap or self.overlap)

    def same_classes(self, other: LabelMap) -> bool:
        """Whether two maps give masks the same meaning: class names in order, and each class's COCO ids.

        The one equality check for label maps (a model against a form, ensemble members, saved
        corrections against the map they are saved with). The map's name is a label, not part
        of the meaning, so a renamed copy still matches.
        """

        def classes(label_map: LabelMap) -> tuple:
            return tuple(
                (name, tuple(sorted(label_map.class_to_categories.get(index, ()))))
                for index, name in enumerate(label_map.class_names)
            )

        return classes(self) == classes(other)

    def cache_key(self) -> str:
        """A short string identifying everything that changes a rasterised mask."""
        pairs = ",".join(f"{key}:{value}" for key, value in sorted(self.category_to_class.items()))
        return f"{self.name}|{len(self.class_names)}|{self.crowd}|{self.overlap}|{pairs}"

    def to_dict(self) -> dict:
        """JSON form (``classes.json`` of mask exports, model cards)."""
        return {
            "name": self.name,
            "classes": [
                {
                    "index": index,
                    "name": class_name,
                    "color": list(palette_colour(index)),
                    "coco_ids": list(self.class_to_categories.get(index, ())),
                }
                for index, class_name in enumerate(self.class_names)
            ],
            "ignore_index": IGNORE_INDEX,
            "crowd": self.crowd,
            "overlap": self.overlap,
            "min_train_area": self.min_train_area,
            "protocol_fixed": self.protocol_fixed,
        }


def label_map_from_dict(payload: dict) -> LabelMap:
    """Rebuild a label map from its ``to_dict`` form (manifests, model cards)."""
    classes = sorted(payload["classes"], key=lambda row: row["index"])
    category_to_class = {int(coco_id): row["index"] for row in classes for coco_id in row["coco_ids"]}
    class_to_categories = {row["index"]: tuple(row["coco_ids"]) for row in classes if row["coco_ids"]}
    return LabelMap(
        payload["name"],
        tuple(row["name"] for row in classes),
        category_to_class,
        class_to_categories,
        crowd=payload["crowd"],
        overlap=payload["overlap"],
        min_train_area=payload.get("min_train_area", 0.0),
        protocol_fixed=payload.get("protocol_fixed", False),
    )


def _from_groups(name: str, groups: Sequence[tuple[str, Sequence[int]]], **protocol) -> LabelMap:
    """Build a map from ordered (class name, COCO ids) groups; class i+1 = groups[i]."""
    category_to_class: dict[int, int] = {}
    class_to_categories: dict[int, tuple[int, ...]] = {}
    for offset, (_class_name, category_ids) in enumerate(groups):
        class_index = offset + 1
        class_to_categories[class_index] = tuple(category_ids)
        for category_id in category_ids:
            category_to_class[int(category_id)] = class_index
    names = (BACKGROUND,) + tuple(class_name for class_name, _ids in groups)
    return LabelMap(name, names, category_to_class, class_to_categories, **protocol)


def _normalise_categories(categories: Iterable[Mapping]) -> list[tuple[int, str, str]]:
    rows = []
    for category in categories:
        rows.append(
            (
                int(category["id"]),
                str(category.get("name", category["id"])),
                str(category.get("supercategory", "")),
            )
        )
    return sorted(rows)


def is_coco_compatible(categories: Iterable[Mapping]) -> bool:
    """True when every category has a COCO id with the COCO name (so coco80/voc21 apply)."""
    known = {category_id: name for category_id, name, _super in COCO_CATEGORIES}
    rows = _normalise_categories(categories)
    return bool(rows) and all(known.get(category_id) == name for category_id, name, _super in rows)


def build_label_map(preset: str, categories: Iterable[Mapping] = (), names: Sequence[str] = ()) -> LabelMap:
    """Build the preset label map for a dataset's categories.

    Args:
        preset: one of ``PRESETS``.
        categories: the dataset's COCO ``categories`` (needed by supercategory/all/custom).
        names: for ``custom``, the category names to keep, in class order.

    Raises:
        LabelMapError: unknown preset, or a preset that does not fit the categories.
    """
    rows = _normalise_categories(categories)
    if preset == "coco80":
        if rows and not is_coco_compatible(categories):
            raise LabelMapError(
                "coco80 needs COCO's category ids and names; "
                "use the 'all' or 'custom' preset for this dataset"
            )
        return _from_groups(
            "coco80", [(name, [category_id]) for category_id, name, _super in COCO_CATEGORIES]
        )
    if preset == "voc21":
        if rows and not is_coco_compatible(categories):
            raise LabelMapError("voc21 maps COCO ids; this dataset's categories are not COCO's")
        groups = [(voc_name, [coco_id]) for voc_name, coco_id in zip(VOC_NAMES, VOC_COCO_IDS)]
        return _from_groups(
            "voc21",
            groups,
            crowd="paint",
            overlap="ignore-any",
            min_train_area=VOC_MIN_TRAIN_AREA,
            protocol_fixed=True,
        )
    if preset == "supercategory":
        if not rows:
            rows = list(COCO_CATEGORIES)
        order: dict[str, list[int]] = {}
        for category_id, _name, supercategory in rows:
            order.setdefault(supercategory or "other", []).append(category_id)
        return _from_groups("supercategory", list(order.items()))
    if preset == "all":
        if not rows:
            raise LabelMapError("the 'all' preset needs the dataset's categories")
        return _from_groups("all", [(name, [category_id]) for category_id, name, _super in rows])
    if preset == "custom":
        by_name: dict[str, list[int]] = {}
        for category_id, name, _super in rows or list(COCO_CATEGORIES):
            by_name.setdefault(name, []).append(category_id)
        missing = [name for name in names if name not in by_name]
        if not names or missing:
            raise LabelMapError(
                f"custom label map needs category names that exist; unknown: {missing or 'none given'}"
            )
        if len(set(names)) != len(names):
            raise LabelMapError("custom label map lists a category twice")
        return _from_groups("custom", [(name, by_name[name]) for name in names])
    raise LabelMapError(f"unknown label map preset {preset!r}; choose one of {', '.join(PRESETS)}")


def default_preset(categories: Iterable[Mapping]) -> str:
    """The label map preset a dataset gets when none is asked for: the one place that decides it.

    ``coco80`` when the categories are COCO's (ids and names), or when there are none at all
    (an unlabelled image folder has no classes of its own, so it gets COCO's, the classes its
    images will be labelled with by default); otherwise ``all``. Every page and the CLI ask here.
    """
    categories = list(categories)
    return "coco80" if not categories or is_coco_compatible(categories) else "all"


def fitting_presets(categories: Iterable[Mapping], with_custom: bool = False) -> list[str]:
    """The presets that build for these categories, in ``PRESETS`` order (the default among them),
    so a page never offers a choice that can only end in an error."""
    categories = list(categories)
    fitting = []
    for preset in PRESETS:
        if preset == "custom" and not with_custom:
            continue
        if preset == "custom":
            fitting.append(preset)  # any category names the dataset has
            continue
        try:
            build_label_map(preset, categories)
        except (LabelMapError, ValueError):
            continue
        fitting.append(preset)
    return fitting


def default_label_map(categories: Iterable[Mapping]) -> LabelMap:
    """The ``default_preset`` map of a dataset's categories."""
    categories = list(categories)
    return build_label_map(default_preset(categories), categories)
