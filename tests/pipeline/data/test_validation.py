"""COCO validator and loader: one case per check code, plus file-level errors.

Policy under test (cocoseg/pipeline/data/validation.py): an ERROR finding leaves the item out of the
loaded ``CocoDataset``; a WARNING keeps it. Unreadable annotation files raise
``CocoFileError`` with one line. Cases follow RELIABILITY.md section C (items 30-50).
"""

from __future__ import annotations

import copy
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from cocoseg.pipeline.core.settings import Settings
from cocoseg.pipeline.data.coco import (
    CocoFileError,
    check_annotation_file,
    load_coco,
    parse_annotation_text,
    read_annotation_text,
    read_coco_json,
    save_coco,
    validate_coco,
)
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.masks import instance_mask
from cocoseg.pipeline.data.validation import (
    CHECKS,
    ERROR,
    EXAMPLES_PER_CHECK,
    WARNING,
    ValidationReport,
    decode_rle_string,
    polygon_area,
)
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON, tiny_coco, write_json

MAX_BYTES = 64 * 1024 * 1024


class _Delete:
    """Marks a key to remove in ``annotation(...)``; its fixed repr keeps test ids the same in every
    process (pytest-xdist's workers must collect identical ids)."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()

# ---------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------

SQUARE = [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0, 2.0, 6.0]]  # 4x4 square inside the 10x8 image: area 16


def annotation(ann_id: int = 99, image_id: int = 1, category_id: int = 1, **changes) -> dict:
    """A valid annotation on the 10x8 image 1; ``changes`` override keys (DELETE removes)."""
    item = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "iscrowd": 0,
        "area": 16.0,
        "bbox": [2.0, 2.0, 4.0, 4.0],
        "segmentation": copy.deepcopy(SQUARE),
    }
    for key, value in changes.items():
        if value is DELETE:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def base_coco() -> dict:
    """Two images (10x8, 12x9), two categories, two valid annotations (ids 1 and 2)."""
    return tiny_coco(
        images=[
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 8},
            {"id": 2, "file_name": "b.jpg", "width": 12, "height": 9},
        ],
        annotations=[annotation(1, 1, 1), annotation(2, 2, 3)],
    )


def ids(items: list[dict]) -> list:
    return [item["id"] for item in items]


def assert_code(report: ValidationReport, code: str, severity: str, count: int = 1) -> None:
    assert code in CHECKS
    assert CHECKS[code][0] == severity
    assert report.counts[code] == count, dict(report.counts)
    assert len(report.examples[code]) == min(count, EXAMPLES_PER_CHECK)


def locations(report: ValidationReport, code: str) -> list[str]:
    return [example["location"] for example in report.examples[code]]


def messages(report: ValidationReport, code: str) -> list[str]:
    return [example["message"] for example in report.examples[code]]


def write_image(path: Path, width: int, height: int, exif_orientation: int | None = None) -> Path:
    """A real small image file of the given size (JPEG or PNG by suffix)."""
    image = Image.new("RGB", (width, height), (120, 30, 200))
    path.parent.mkdir(parents=True, exist_ok=True)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif.tobytes())
    else:
        image.save(path)
    return path


def images_folder(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, (width, height) in sizes.items():
        write_image(folder / name, width, height)
    return folder


def assert_one_line_error(excinfo, *fragments: str, path: Path | None = None) -> str:
    """The error is one CocoFileError line holding ``fragments`` (and naming ``path``).

    Returns the message with the path cut out, so callers can test words that a
    pytest tmp folder name might also contain.
    """
    message = str(excinfo.value)
    assert isinstance(excinfo.value, CocoFileError)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert message.strip() == message and message
    if path is not None:
        assert str(path) in message, f"{str(path)!r} not in {message!r}"
        message = message.replace(str(path), "<path>")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (no pixel data: enough for Image.open)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def string_rle(mask: np.ndarray) -> dict:
    """COCO JSON form of compressed RLE: counts as str, size [h, w]."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(side) for side in rle["size"]], "counts": rle["counts"].decode("ascii")}


def list_rle(mask: np.ndarray) -> dict:
    """Uncompressed RLE (list counts, column-major, starting with a run of zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts: list[int] = []
    current, run = 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def square_mask(height: int = 8, width: int = 10) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[2:6, 3:7] = 1
    mask[7, 0] = 1
    return mask


# ---------------------------------------------------------------------------
# sanity: the builders are valid, and the real demo data is clean
# ---------------------------------------------------------------------------


def test_base_coco_is_clean():
    dataset = validate_coco(base_coco())
    assert dict(dataset.report.counts) == {}
    assert ids(dataset.images) == [1, 2]
    assert ids(dataset.annotations) == [1, 2]
    assert ids(dataset.categories) == [1, 3]
    assert dataset.report.totals == {
        "images": 2,
        "images_valid": 2,
        "annotations": 2,
        "annotations_valid": 2,
        "categories": 2,
        "crowd": 0,
    }


def test_demo_val_loads_completely_with_its_images(demo_val_data):
    dataset = load_coco(DEMO_VAL_JSON, DEMO_VAL_IMAGES, MAX_BYTES)
    assert dataset.report.errors == 0
    assert len(dataset.images) == len(demo_val_data["images"]) == 80
    assert len(dataset.annotations) == len(demo_val_data["annotations"])
    assert ids(dataset.categories) == ids(demo_val_data["categories"])
    assert dataset.report.totals["crowd"] == sum(a["iscrowd"] for a in demo_val_data["annotations"]) > 0
    assert dataset.source == DEMO_VAL_JSON


def test_every_check_code_is_covered_here():
    """Each code in CHECKS appears in a case of this file (keeps the table and the tests in step)."""
    source = Path(__file__).read_text()
    missing = [code for code in CHECKS if f'"{code}"' not in source]
    assert missing == []


# ---------------------------------------------------------------------------
# top level (30) and items that are not objects
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key_is_named(key):
    data = base_coco()
    del data[key]
    dataset = validate_coco(data)
    report = dataset.report
    assert_code(report, "missing-key", ERROR)
    assert locations(report, "missing-key") == [key]
    assert (
        f"'{key}'" in messages(report, "missing-key")[0] and "missing" in messages(report, "missing-key")[0]
    )
    kept = {"images": dataset.images, "annotations": dataset.annotations, "categories": dataset.categories}
    assert kept[key] == []
    assert report.totals[key] == 0
    if key == "annotations":
        assert ids(dataset.images) == [1, 2] and ids(dataset.categories) == [1, 3]
    if key == "categories":
        # no categories: every annotation's category is unknown, the images still load
        assert_code(report, "unknown-category", ERROR, 2)
        assert ids(dataset.images) == [1, 2]
    if key == "images":
        assert_code(report, "annotation-image-missing", WARNING, 2)
        assert ids(dataset.categories) == [1, 3]


@pytest.mark.parametrize(
    "value, shown", [({}, "a dict, not a list"), ("x", "a str, not a list"), (None, "a NoneType, not a list")]
)
def test_top_level_key_that_is_not_a_list(value, shown):
    data = base_coco()
    data["categories"] = value
    report = validate_coco(data).report
    assert_code(report, "missing-key", ERROR)
    assert shown in messages(report, "missing-key")[0]


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
@pytest.mark.parametrize("item", [5, "x", None, [1, 2], True])
def test_item_not_object_is_left_out(key, item):
    data = base_coco()
    data[key].insert(1, item)
    dataset = validate_coco(data)
    assert_code(dataset.report, "item-not-object", ERROR)
    assert locations(dataset.report, "item-not-object") == [f"{key}[1]"]
    assert set(dataset.report.counts) == {"item-not-object"}
    assert ids(dataset.images) == [1, 2]
    assert ids(dataset.annotations) == [1, 2]
    assert ids(dataset.categories) == [1, 3]
    assert dataset.report.totals[key] == 3


# ---------------------------------------------------------------------------
# ids (31-34)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "image_id", "category_id"])
def test_annotation_missing_required_field_names_its_index(demo_val_copy, field):
    index = 7
    removed = demo_val_copy["annotations"][index]
    del removed[field]
    total = len(demo_val_copy["annotations"])
    dataset = validate_coco(demo_val_copy)
    report = dataset.report
    assert_code(report, "missing-field", ERROR)
    assert set(report.counts) == {"missing-field"}
    assert locations(report, "missing-field")[0].startswith(f"annotations[{index}]")
    assert f"'{field}'" in messages(report, "missing-field")[0]
    assert len(dataset.annotations) == total - 1
    assert removed not in dataset.annotations
    assert len(dataset.images) == 80


@pytest.mark.parametrize(
    "where, field",
    [
        ("annotations", "id"),
        ("annotations", "image_id"),
        ("annotations", "category_id"),
        ("images", "id"),
        ("categories", "id"),
    ],
)
@pytest.mark.parametrize("bad_id", ["12", 12.0, True, None, [12]])
def test_non_integer_ids_are_refused(where, field, bad_id):
    data = base_coco()
    if where == "annotations":
        data["annotations"].append(annotation(99))
        data["annotations"][-1][field] = bad_id
    elif where == "images":
        data["images"].append({"id": bad_id, "file_name": "c.jpg", "width": 10, "height": 8})
    else:
        data["categories"].append({"id": bad_id, "name": "dog"})
    dataset = validate_coco(data)
    report = dataset.report
    assert_code(report, "id-not-integer", ERROR)
    assert set(report.counts) == {"id-not-integer"}
    assert repr(bad_id) in messages(report, "id-not-integer")[0]
    assert locations(report, "id-not-integer")[0].startswith(f"{where}[2]")
    assert ids(dataset.images) == [1, 2]
    assert ids(dataset.annotations) == [1, 2]
    assert ids(dataset.categories) == [1, 3]
    # nothing with a non-integer id reaches pycocotools; its index builds and works
    coco = dataset.pycocotools
    assert sorted(coco.getAnnIds()) == [1, 2]


def test_string_id_in_real_data_never_reaches_pycocotools(demo_val_copy):
    target = demo_val_copy["annotations"][3]
    target["id"] = str(target["id"])
    dataset = validate_coco(demo_val_copy)
    assert_code(dataset.report, "id-not-integer", ERROR)
    assert all(type(item["id"]) is int for item in dataset.annotations)
    assert len(dataset.pycocotools.getAnnIds()) == len(demo_val_copy["annotations"]) - 1


def test_duplicate_annotation_ids_are_listed(demo_val_copy):
    anns = demo_val_copy["annotations"]
    first_ids = [anns[0]["id"], anns[1]["id"]]
    anns[10]["id"] = first_ids[0]
    anns[20]["id"] = first_ids[1]
    anns[30]["id"] = first_ids[1]
    later = [anns[10], anns[20], anns[30]]
    dataset = validate_coco(demo_val_copy)
    report = dataset.report
    assert_code(report, "duplicate-annotation-id", ERROR, 3)
    assert set(report.counts) == {"duplicate-annotation-id"}
    shown = " ".join(
        messages(report, "duplicate-annotation-id") + locations(report, "duplicate-annotation-id")
    )
    for repeated in first_ids:
        assert str(repeated) in shown
    assert locations(report, "duplicate-annotation-id") == [
        f"annotations[10] id={first_ids[0]}",
        f"annotations[20] id={first_ids[1]}",
        f"annotations[30] id={first_ids[1]}",
    ]
    # the first of each id is kept, the later ones are left out
    assert anns[0] in dataset.annotations and anns[1] in dataset.annotations
    assert all(item not in dataset.annotations for item in later)
    assert len(dataset.annotations) == len(anns) - 3
    assert len(set(ids(dataset.annotations))) == len(dataset.annotations)


def test_duplicate_image_id_leaves_the_later_image_out():
    data = base_coco()
    data["images"].append({"id": 1, "file_name": "c.jpg", "width": 50, "height": 50})
    dataset = validate_coco(data)
    assert_code(dataset.report, "duplicate-image-id", ERROR)
    assert set(dataset.report.counts) == {"duplicate-image-id"}
    assert locations(dataset.report, "duplicate-image-id") == ["images[2]"]
    assert [image["file_name"] for image in dataset.images] == ["a.jpg", "b.jpg"]
    assert ids(dataset.annotations) == [1, 2]


def test_duplicate_file_name_leaves_the_later_image_out():
    data = base_coco()
    data["images"].append({"id": 3, "file_name": "a.jpg", "width": 10, "height": 8})
    data["annotations"].append(annotation(3, image_id=3))
    dataset = validate_coco(data)
    report = dataset.report
    assert_code(report, "duplicate-file-name", ERROR)
    assert "'a.jpg'" in messages(report, "duplicate-file-name")[0]
    assert ids(dataset.images) == [1, 2]
    # the annotation of the left-out image is counted, not silently dropped
    assert_code(report, "annotation-image-missing", WARNING)
    assert ids(dataset.annotations) == [1, 2]


@pytest.mark.parametrize("first, second", [("sub/a.jpg", "sub\\a.jpg"), ("a.jpg", "./a.jpg")])
def test_duplicate_file_name_spelled_differently(tmp_path, first, second):
    """Two spellings that the loader resolves to the same file are the same file_name."""
    folder = images_folder(tmp_path, {"sub/a.jpg" if "sub" in first else "a.jpg": (10, 8)})
    data = tiny_coco(
        images=[
            {"id": 1, "file_name": first, "width": 10, "height": 8},
            {"id": 2, "file_name": second, "width": 10, "height": 8},
        ],
        annotations=[annotation(1, 1), annotation(2, 2)],
    )
    dataset = validate_coco(data, folder)
    assert dataset.image_path(dataset.images[0]) == (folder / first.replace("\\", "/")).resolve()
    assert_code(dataset.report, "duplicate-file-name", ERROR)
    assert ids(dataset.images) == [1]


def test_duplicate_category_id_and_name():
    data = base_coco()
    data["categories"].append({"id": 3, "name": "truck"})
    data["categories"].append({"id": 4, "name": "person"})
    dataset = validate_coco(data)
    report = dataset.report
    assert_code(report, "duplicate-category-id", ERROR)
    assert_code(report, "duplicate-category-name", WARNING)
    assert locations(report, "duplicate-category-id") == ["categories[2]"]
    assert locations(report, "duplicate-category-name") == ["categories[3]"]
    assert [(c["id"], c["name"]) for c in dataset.categories] == [(1, "person"), (3, "car"), (4, "person")]


@pytest.mark.parametrize(
    "field, value", [("name", {"nested": "object"}), ("name", 7), ("supercategory", ["a"])]
)
def test_a_category_whose_name_is_not_text_is_left_out(field, value):
    """Found by the fuzz replay (test_fuzz_inputs): a dict name raised TypeError (unhashable)."""
    data = base_coco()
    data["categories"][1][field] = value
    dataset = validate_coco(data)
    assert_code(dataset.report, "name-not-text", ERROR)
    assert locations(dataset.report, "name-not-text") == ["categories[1]"]
    assert [c["id"] for c in dataset.categories] == [1]


def test_category_missing_name_is_left_out():
    data = base_coco()
    data["categories"].append({"id": 4})
    dataset = validate_coco(data)
    assert_code(dataset.report, "missing-field", ERROR)
    assert locations(dataset.report, "missing-field") == ["categories[2]"]
    assert ids(dataset.categories) == [1, 3]


# ---------------------------------------------------------------------------
# references (35, 36)
# ---------------------------------------------------------------------------


def test_annotation_image_missing_is_a_counted_warning_and_left_out(demo_val_copy):
    anns = demo_val_copy["annotations"]
    for index in (4, 5, 6):
        anns[index]["image_id"] = 999_999_999
    orphans = anns[4:7]
    dataset = validate_coco(demo_val_copy)
    report = dataset.report
    assert_code(report, "annotation-image-missing", WARNING, 3)
    assert report.errors == 0 and report.warnings == 3
    assert "999999999" in messages(report, "annotation-image-missing")[0]
    assert locations(report, "annotation-image-missing")[0].startswith("annotations[4]")
    assert all(item not in dataset.annotations for item in orphans)
    assert report.totals["annotations_valid"] == len(anns) - 3
    assert report.totals["annotations"] == len(anns)


def test_unknown_category_is_an_error(demo_val_copy):
    anns = demo_val_copy["annotations"]
    anns[2]["category_id"] = 12  # COCO's gap: not a category in 2017
    dataset = validate_coco(demo_val_copy)
    assert_code(dataset.report, "unknown-category", ERROR)
    assert set(dataset.report.counts) == {"unknown-category"}
    assert "12" in messages(dataset.report, "unknown-category")[0]
    assert anns[2] not in dataset.annotations
    assert len(dataset.annotations) == len(anns) - 1


@pytest.mark.parametrize("category_ids", [[0, 1, 2], [3, 5, 7, 10]])
def test_category_ids_are_kept_and_survive_saving(tmp_path, category_ids):
    categories = [{"id": cid, "name": f"class{cid}"} for cid in category_ids]
    anns = [annotation(100 + index, category_id=cid) for index, cid in enumerate(category_ids)]
    data = tiny_coco(annotations=anns, categories=categories)
    dataset = validate_coco(data)
    assert dict(dataset.report.counts) == {}
    assert ids(dataset.categories) == category_ids
    assert [item["category_id"] for item in dataset.annotations] == category_ids
    label_map = build_label_map("all", dataset.categories)
    assert dict(label_map.category_to_class) == {cid: index + 1 for index, cid in enumerate(category_ids)}
    assert {index: cids for index, cids in label_map.class_to_categories.items()} == {
        index + 1: (cid,) for index, cid in enumerate(category_ids)
    }
    path = tmp_path / "saved.json"
    save_coco(path, dataset)
    reloaded = load_coco(path, None, MAX_BYTES)
    assert reloaded.categories == dataset.categories
    assert [item["category_id"] for item in reloaded.annotations] == category_ids
    assert json.loads(path.read_text())["categories"] == categories


# ---------------------------------------------------------------------------
# annotation content (38-46): one case per code
# ---------------------------------------------------------------------------

nan, inf = float("nan"), float("inf")
# (case id, changes to a valid annotation, expected codes with severity, kept?)
ANNOTATION_CASES = [
    ("no segmentation", {"segmentation": DELETE}, {"segmentation-missing": ERROR}, False),
    ("segmentation null", {"segmentation": None}, {"segmentation-missing": ERROR}, False),
    ("empty polygon list", {"segmentation": []}, {"segmentation-missing": ERROR}, False),
    ("segmentation string", {"segmentation": "2 2 6 6"}, {"segmentation-type": ERROR}, False),
    ("segmentation number", {"segmentation": 5}, {"segmentation-type": ERROR}, False),
    ("flat polygon not nested", {"segmentation": [2, 2, 6, 2, 6, 6]}, {"polygon-not-list": ERROR}, False),
    ("polygon is a dict", {"segmentation": [{"x": 1}]}, {"polygon-not-list": ERROR}, False),
    ("4 numbers", {"segmentation": [[2.0, 2.0, 6.0, 6.0]]}, {"polygon-four-numbers": ERROR}, False),
    (
        "4 numbers after a good polygon",
        {"segmentation": SQUARE + [[2, 2, 6, 6]]},
        {"polygon-four-numbers": ERROR},
        False,
    ),
    ("2 numbers", {"segmentation": [[2.0, 2.0]]}, {"polygon-too-short": ERROR}, False),
    ("0 numbers", {"segmentation": [[]]}, {"polygon-too-short": ERROR}, False),
    ("5 numbers", {"segmentation": [[1, 1, 5, 1, 5]]}, {"polygon-too-short": ERROR}, False),
    ("odd length 7", {"segmentation": [[1, 1, 5, 1, 5, 5, 1]]}, {"polygon-odd-length": ERROR}, False),
    (
        "nested pairs [[x,y],[x,y]]",
        {"segmentation": [[2, 2], [6, 2], [6, 6]]},
        {"polygon-too-short": ERROR},
        False,
    ),
    (
        "pairs inside one polygon",
        {"segmentation": [[[2, 2], [6, 2], [6, 6], [2, 6], [2, 4], [4, 4]]]},
        {"coordinate-not-number": ERROR},
        False,
    ),
    ("string coordinate", {"segmentation": [[2, 2, "6", 2, 6, 6]]}, {"coordinate-not-number": ERROR}, False),
    ("null coordinate", {"segmentation": [[2, 2, None, 2, 6, 6]]}, {"coordinate-not-number": ERROR}, False),
    ("bool coordinate", {"segmentation": [[2, 2, True, 2, 6, 6]]}, {"coordinate-not-number": ERROR}, False),
    ("NaN", {"segmentation": [[2, 2, nan, 2, 6, 6]]}, {"coordinate-not-finite": ERROR}, False),
    ("Infinity", {"segmentation": [[2, 2, inf, 2, 6, 6]]}, {"coordinate-not-finite": ERROR}, False),
    ("-Infinity", {"segmentation": [[2, 2, 6, -inf, 6, 6]]}, {"coordinate-not-finite": ERROR}, False),
    ("inf and -inf", {"segmentation": [[inf, -inf, 6, 2, 6, 6]]}, {"coordinate-not-finite": ERROR}, False),
    ("1e308", {"segmentation": [[2, 2, 1e308, 2, 6, 6]]}, {"coordinate-not-finite": ERROR}, False),
    (
        "1e308 and -1e308 cancel",
        {"segmentation": [[1e308, -1e308, 6, 2, 6, 6]]},
        {"coordinate-not-finite": ERROR},
        False,
    ),
    ("huge int", {"segmentation": [[2, 2, 10**30, 2, 6, 6]]}, {"coordinate-not-finite": ERROR}, False),
    (
        "NaN in second polygon",
        {"segmentation": SQUARE + [[2, 2, 6, 2, 6, nan]]},
        {"coordinate-not-finite": ERROR},
        False,
    ),
    (
        "vertex far outside (rasteriser memory)",
        {"segmentation": [[2, 2, 6, 2, 90000, 6]]},
        {"coordinate-far-outside": ERROR},
        False,
    ),
    ("vertex far left", {"segmentation": [[2, 2, -57, 2, 6, 6]]}, {"coordinate-far-outside": ERROR}, False),
    (
        "bow-tie crossing itself",
        {"segmentation": [[2, 2, 6, 6, 6, 2, 2, 6]], "area": 8.0},
        {"polygon-self-intersecting": WARNING},
        True,
    ),
    (
        "polygon right of image",
        {"segmentation": [[20, 2, 30, 2, 30, 6]], "bbox": [20, 2, 10, 4], "area": 20.0},
        {"polygon-outside-image": WARNING, "bbox-outside-image": WARNING},
        True,
    ),
    (
        "polygon at negative coords",
        {"segmentation": [[-9, -9, -1, -9, -1, -1]], "bbox": [-9, -9, 8, 8], "area": 32.0},
        {"polygon-outside-image": WARNING, "bbox-outside-image": WARNING},
        True,
    ),
    (
        "collinear polygon",
        {"segmentation": [[1, 1, 3, 3, 5, 5]], "area": 0.0},
        {"polygon-zero-area": WARNING},
        True,
    ),
    (
        "repeated point polygon",
        {"segmentation": [[4, 4, 4, 4, 4, 4, 4, 4]], "area": 0.0},
        {"polygon-zero-area": WARNING},
        True,
    ),
    (
        "collinear polygon, decimal coordinates",
        {"segmentation": [[0.1, 0.3, 0.7, 2.1, 1.3, 3.9]], "area": 0.0},
        {"polygon-zero-area": WARNING},
        True,
    ),
    ("rle without counts", {"segmentation": {"size": [8, 10]}}, {"rle-malformed": ERROR}, False),
    ("rle without size", {"segmentation": {"counts": [80]}}, {"rle-malformed": ERROR}, False),
    (
        "rle size strings",
        {"segmentation": {"size": ["8", "10"], "counts": [80]}},
        {"rle-malformed": ERROR},
        False,
    ),
    (
        "rle size of 3",
        {"segmentation": {"size": [8, 10, 1], "counts": [80]}},
        {"rle-malformed": ERROR},
        False,
    ),
    (
        "rle negative count",
        {"segmentation": {"size": [8, 10], "counts": [90, -10]}},
        {"rle-malformed": ERROR},
        False,
    ),
    (
        "rle float count",
        {"segmentation": {"size": [8, 10], "counts": [40.0, 40]}},
        {"rle-malformed": ERROR},
        False,
    ),
    ("rle counts number", {"segmentation": {"size": [8, 10], "counts": 80}}, {"rle-malformed": ERROR}, False),
    (
        "rle string bad character",
        {"segmentation": {"size": [8, 10], "counts": "0 1"}},
        {"rle-malformed": ERROR},
        False,
    ),
    (
        "rle string cut in a value",
        {"segmentation": {"size": [8, 10], "counts": "P"}},
        {"rle-malformed": ERROR},
        False,
    ),
    (
        "rle string negative run",
        {"segmentation": {"size": [8, 10], "counts": "@"}},
        {"rle-malformed": ERROR},
        False,
    ),
    (
        "rle size transposed",
        {"segmentation": {"size": [10, 8], "counts": [80]}},
        {"rle-size-mismatch": ERROR},
        False,
    ),
    (
        "rle size larger",
        {"segmentation": {"size": [9, 10], "counts": [90]}},
        {"rle-size-mismatch": ERROR},
        False,
    ),
    (
        "rle list counts short",
        {"segmentation": {"size": [8, 10], "counts": [30, 10, 30]}},
        {"rle-counts-sum": ERROR},
        False,
    ),
    (
        "rle list counts long",
        {"segmentation": {"size": [8, 10], "counts": [30, 10, 41]}},
        {"rle-counts-sum": ERROR},
        False,
    ),
    (
        "rle string counts wrong sum",
        {"segmentation": string_rle(np.ones((5, 20), np.uint8)) | {"size": [8, 10]}},
        {"rle-counts-sum": ERROR},
        False,
    ),
    ("bbox empty", {"bbox": []}, {"bad-bbox": WARNING}, True),
    ("bbox missing", {"bbox": DELETE}, {"bad-bbox": WARNING}, True),
    ("bbox 3 numbers", {"bbox": [1, 1, 2]}, {"bad-bbox": WARNING}, True),
    ("bbox negative width", {"bbox": [6, 2, -4, 4]}, {"bad-bbox": WARNING}, True),
    ("bbox negative height", {"bbox": [2, 6, 4, -4]}, {"bad-bbox": WARNING}, True),
    ("bbox zero width", {"bbox": [2, 2, 0, 4]}, {"bad-bbox": WARNING}, True),
    ("bbox NaN", {"bbox": [2, 2, nan, 4]}, {"bad-bbox": WARNING}, True),
    ("bbox strings", {"bbox": ["2", "2", "4", "4"]}, {"bad-bbox": WARNING}, True),
    ("bbox outside right", {"bbox": [10, 2, 4, 4]}, {"bbox-outside-image": WARNING}, True),
    ("bbox outside above", {"bbox": [2, -10, 4, 4]}, {"bbox-outside-image": WARNING}, True),
    ("iscrowd missing", {"iscrowd": DELETE}, {}, True),
    ("iscrowd 2", {"iscrowd": 2}, {"bad-iscrowd": ERROR}, False),
    ("iscrowd -1", {"iscrowd": -1}, {"bad-iscrowd": ERROR}, False),
    ("iscrowd string", {"iscrowd": "1"}, {"bad-iscrowd": ERROR}, False),
    ("iscrowd true", {"iscrowd": True}, {"bad-iscrowd": ERROR}, False),
    ("iscrowd null", {"iscrowd": None}, {"bad-iscrowd": ERROR}, False),
    ("iscrowd 1 with polygon", {"iscrowd": 1}, {"crowd-polygon": WARNING}, True),
    ("ignore 1", {"ignore": 1}, {"ignore-flag": WARNING}, True),
    ("ignore 0", {"ignore": 0}, {}, True),
    ("area missing", {"area": DELETE}, {"area-missing": WARNING}, True),
    ("area NaN", {"area": nan}, {"area-missing": WARNING}, True),
    ("area negative", {"area": -5}, {"area-missing": WARNING}, True),
    ("area string", {"area": "16"}, {"area-missing": WARNING}, True),
]


@pytest.mark.parametrize(
    "changes, expected, kept",
    [case[1:] for case in ANNOTATION_CASES],
    ids=[case[0] for case in ANNOTATION_CASES],
)
def test_annotation_case(changes, expected, kept):
    data = base_coco()
    bad = annotation(99, **changes)
    data["annotations"].insert(1, bad)
    dataset = validate_coco(data)
    report = dataset.report
    assert dict(report.counts) == {code: 1 for code in expected}
    for code, severity in expected.items():
        assert_code(report, code, severity)
        assert locations(report, code) == ["annotations[1] id=99"]
        assert messages(report, code)[0]
    assert report.errors == sum(1 for severity in expected.values() if severity == ERROR)
    assert report.warnings == sum(1 for severity in expected.values() if severity == WARNING)
    assert ids(dataset.annotations) == ([1, 99, 2] if kept else [1, 2])
    assert ids(dataset.images) == [1, 2] and ids(dataset.categories) == [1, 3]
    assert report.totals["annotations"] == 3
    assert report.totals["annotations_valid"] == (3 if kept else 2)
    if kept:
        kept_item = dataset.annotations[1]
        # a kept annotation is unchanged except for a recomputed area, and rasterises
        assert {k: v for k, v in kept_item.items() if k != "area"} == {
            k: v for k, v in bad.items() if k != "area"
        }
        mask = instance_mask(kept_item["segmentation"], 8, 10)
        assert mask.shape == (8, 10)


def test_four_number_polygon_never_reaches_pycocotools_as_a_box():
    """cocoapi #369: [x, y, x, y] would be rasterised as a box; it must not be loaded at all."""
    data = base_coco()
    data["annotations"].append(annotation(99, segmentation=[[0, 0, 10, 8]]))
    dataset = validate_coco(data)
    assert 99 not in ids(dataset.annotations)
    assert 99 not in dataset.pycocotools.anns


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "1e308"])
def test_non_finite_coordinates_from_json_text(tmp_path, literal):
    """The JSON parser accepts NaN/Infinity and turns 1e400 into inf: all refused before pycocotools."""
    data = base_coco()
    data["annotations"].append(annotation(99, segmentation=[[2.0, 2.0, 12345.5, 2.0, 6.0, 6.0]]))
    text = json.dumps(data).replace("12345.5", literal)
    assert literal in text
    path = tmp_path / "nan.json"
    path.write_text(text)
    parsed = read_coco_json(path, MAX_BYTES)
    value = parsed["annotations"][2]["segmentation"][0][2]
    parsed_as = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf", "1e400": "inf", "1e308": "1e+308"}
    assert isinstance(value, float) and repr(value) == parsed_as[literal]
    dataset = load_coco(path, None, MAX_BYTES)
    assert_code(dataset.report, "coordinate-not-finite", ERROR)
    assert ids(dataset.annotations) == [1, 2]


def test_area_missing_is_recomputed_from_the_polygon():
    polygon = [1.0, 1.0, 9.0, 1.0, 9.0, 7.0, 5.0, 4.0, 1.0, 7.0]  # concave pentagon
    data = base_coco()
    data["annotations"].append(annotation(99, segmentation=[polygon], bbox=[1, 1, 8, 6], area=DELETE))
    data["annotations"].append(
        annotation(98, segmentation=[polygon, [1, 7.5, 2, 7.5, 2, 7.9]], bbox=[1, 1, 8, 6.9], area=nan)
    )
    dataset = validate_coco(data)
    assert_code(dataset.report, "area-missing", WARNING, 2)
    by_id = {item["id"]: item for item in dataset.annotations}
    assert by_id[99]["area"] == pytest.approx(36.0)  # 8*6 rectangle minus the 8*3/2 notch
    assert by_id[99]["area"] == pytest.approx(polygon_area(polygon))
    assert by_id[98]["area"] == pytest.approx(36.0 + 0.2)
    bow_tie = [2.0, 2.0, 6.0, 6.0, 6.0, 2.0, 2.0, 6.0]  # shoelace cancels to 0, pixels do not
    data["annotations"].append(annotation(97, segmentation=[bow_tie], area=DELETE))
    by_id = {item["id"]: item for item in validate_coco(data).annotations}
    assert polygon_area(bow_tie) == 0.0 and 4.0 <= by_id[97]["area"] <= 12.0
    # the input dict is not changed; area is not a filter: both are loaded
    assert "area" not in data["annotations"][2]
    assert by_id[1]["area"] == 16.0


def test_area_missing_is_recomputed_for_rle():
    mask = square_mask()
    data = base_coco()
    data["annotations"].append(annotation(98, segmentation=string_rle(mask), iscrowd=1, area=DELETE))
    data["annotations"].append(annotation(99, segmentation=list_rle(mask), iscrowd=1, area=DELETE))
    dataset = validate_coco(data)
    assert_code(dataset.report, "area-missing", WARNING, 2)
    areas = {item["id"]: item["area"] for item in dataset.annotations}
    assert areas[98] == areas[99] == float(mask.sum()) == 17.0


@pytest.mark.parametrize("encode", [string_rle, list_rle], ids=["string counts", "list counts"])
@pytest.mark.parametrize("crowd", [1, 0])
def test_valid_rle_loads_and_decodes(encode, crowd):
    mask = square_mask()
    segmentation = encode(mask)
    if encode is string_rle:
        assert isinstance(segmentation["counts"], str)
    else:
        assert segmentation["counts"] == list_rle(mask)["counts"] and sum(segmentation["counts"]) == 80
    data = base_coco()
    data["annotations"].append(
        annotation(99, segmentation=segmentation, iscrowd=crowd, area=17.0, bbox=[0, 2, 7, 6])
    )
    dataset = validate_coco(data)
    assert dict(dataset.report.counts) == {}
    assert ids(dataset.annotations) == [1, 2, 99]
    assert dataset.report.totals["crowd"] == crowd
    np.testing.assert_array_equal(instance_mask(dataset.annotations[2]["segmentation"], 8, 10), mask)
    coco = dataset.pycocotools
    np.testing.assert_array_equal(coco.annToMask(coco.anns[99]), mask)


def test_demo_crowd_rle_decodes_like_the_pure_python_decoder(demo_val_data):
    crowds = [a for a in demo_val_data["annotations"] if isinstance(a["segmentation"], dict)]
    assert crowds
    for crowd in crowds:
        segmentation = crowd["segmentation"]
        height, width = segmentation["size"]
        mask = instance_mask(segmentation, height, width)
        counts = segmentation["counts"]
        expected = list_rle(mask)["counts"]
        if isinstance(counts, str):
            assert decode_rle_string(counts) == expected
        else:
            assert expected == counts


def test_rle_size_mismatch_in_real_data(demo_val_copy):
    crowd = next(a for a in demo_val_copy["annotations"] if isinstance(a["segmentation"], dict))
    crowd["segmentation"]["size"] = [crowd["segmentation"]["size"][0] + 1, crowd["segmentation"]["size"][1]]
    dataset = validate_coco(demo_val_copy)
    assert_code(dataset.report, "rle-size-mismatch", ERROR)
    assert crowd["id"] not in ids(dataset.annotations)
    assert len(dataset.annotations) == len(demo_val_copy["annotations"]) - 1


def test_iscrowd_missing_defaults_to_zero_in_masks():
    from cocoseg.pipeline.data.labels import build_label_map as build
    from cocoseg.pipeline.data.masks import semantic_mask

    data = base_coco()
    del data["annotations"][0]["iscrowd"]
    dataset = validate_coco(data)
    assert dict(dataset.report.counts) == {}
    assert dataset.report.totals["crowd"] == 0
    label_map = build("all", dataset.categories)
    mask = semantic_mask(dataset.annotations_by_image[1], 8, 10, label_map)
    assert mask[3, 3] == label_map.class_of(1) == 1  # painted as a normal instance, not 255
    assert int((mask == 1).sum()) == 16


def test_ignore_flag_is_treated_like_a_crowd_region():
    from cocoseg.pipeline.data.masks import semantic_mask

    data = base_coco()
    data["annotations"][0]["ignore"] = 1
    dataset = validate_coco(data)
    assert_code(dataset.report, "ignore-flag", WARNING)
    mask = semantic_mask(dataset.annotations_by_image[1], 8, 10, build_label_map("all", dataset.categories))
    assert int((mask == 255).sum()) == 16


def test_examples_are_capped_but_counts_are_not(demo_val_copy):
    for item in demo_val_copy["annotations"][:12]:
        item["iscrowd"] = 7
    report = validate_coco(demo_val_copy).report
    assert_code(report, "bad-iscrowd", ERROR, 12)
    assert len(report.examples["bad-iscrowd"]) == EXAMPLES_PER_CHECK
    assert report.errors == 12
    again = ValidationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.counts == report.counts and again.errors == 12 and again.totals == report.totals


# ---------------------------------------------------------------------------
# images: sizes, file names, files (47-49)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"width": 0},
        {"height": -3},
        {"width": "10"},
        {"width": 10.0},
        {"height": None},
        {"width": True},
        {"width": 100_001},
        {"width": DELETE},
        {"height": DELETE},
    ],
    ids=lambda c: repr(c),
)
def test_bad_image_size(changes):
    image = {"id": 9, "file_name": "c.jpg", "width": 10, "height": 8}
    for key, value in changes.items():
        if value is DELETE:
            del image[key]
        else:
            image[key] = value
    data = base_coco()
    data["images"].append(image)
    data["annotations"].append(annotation(99, image_id=9))
    dataset = validate_coco(data)
    assert_code(dataset.report, "bad-image-size", ERROR)
    assert locations(dataset.report, "bad-image-size") == ["images[2]"]
    assert ids(dataset.images) == [1, 2]
    assert_code(dataset.report, "annotation-image-missing", WARNING)
    assert ids(dataset.annotations) == [1, 2]


@pytest.mark.parametrize("file_name", [None, "", 5])
def test_image_file_name_missing_or_not_text(file_name):
    data = base_coco()
    image = {"id": 9, "width": 10, "height": 8}
    if file_name is not None:
        image["file_name"] = file_name
    data["images"].append(image)
    dataset = validate_coco(data)
    assert_code(dataset.report, "missing-field", ERROR)
    assert ids(dataset.images) == [1, 2]


@pytest.mark.parametrize(
    "file_name",
    [
        "../x.jpg",
        "a/../../x.jpg",
        "sub/..",
        "..\\x.jpg",
        "/abs/x.jpg",
        "/etc/passwd",
        "C:\\x.jpg",
        "c:x.jpg",
        "\\\\server\\share\\x.jpg",
        "x\x00.jpg",
    ],
)
@pytest.mark.parametrize("with_folder", [False, True])
def test_unsafe_file_name_is_refused(tmp_path, file_name, with_folder):
    folder = images_folder(tmp_path, {"a.jpg": (10, 8), "b.jpg": (12, 9)}) if with_folder else None
    data = base_coco()
    data["images"].append({"id": 9, "file_name": file_name, "width": 10, "height": 8})
    data["annotations"].append(annotation(99, image_id=9))
    dataset = validate_coco(data, folder)
    report = dataset.report
    assert_code(report, "unsafe-file-name", ERROR)
    assert locations(report, "unsafe-file-name") == ["images[2]"]
    assert ids(dataset.images) == [1, 2]
    assert ids(dataset.annotations) == [1, 2]
    assert report.errors == 1


def test_symlink_escaping_the_image_folder_is_refused(tmp_path):
    folder = images_folder(tmp_path, {"a.jpg": (10, 8), "b.jpg": (12, 9)})
    outside = write_image(tmp_path / "outside" / "secret.jpg", 10, 8)
    (folder / "evil.jpg").symlink_to(outside)
    (folder / "sub").symlink_to(outside.parent, target_is_directory=True)
    (folder / "alias.jpg").symlink_to(folder / "a.jpg")  # stays inside: allowed
    data = base_coco()
    data["images"] += [
        {"id": 9, "file_name": "evil.jpg", "width": 10, "height": 8},
        {"id": 10, "file_name": "sub/secret.jpg", "width": 10, "height": 8},
        {"id": 11, "file_name": "alias.jpg", "width": 10, "height": 8},
    ]
    data["annotations"] += [annotation(99, image_id=9), annotation(100, image_id=11)]
    # without the folder the name looks harmless
    assert ids(validate_coco(data).images) == [1, 2, 9, 10, 11]
    dataset = validate_coco(data, folder)
    report = dataset.report
    assert_code(report, "unsafe-file-name", ERROR, 2)
    assert "'evil.jpg'" in locations(report, "unsafe-file-name")[0]
    assert "'sub/secret.jpg'" in locations(report, "unsafe-file-name")[1]
    assert ids(dataset.images) == [1, 2, 11]
    assert ids(dataset.annotations) == [1, 2, 100]
    with pytest.raises(ValueError):
        dataset.image_path({"file_name": "evil.jpg"})


def test_missing_image_file_other_images_still_load(tmp_path, demo_val_copy):
    images = demo_val_copy["images"][:4]
    folder = tmp_path / "val"
    folder.mkdir()
    for image in images[:3]:
        shutil.copy(DEMO_VAL_IMAGES / image["file_name"], folder / image["file_name"])
    kept_ids = {image["id"] for image in images}
    demo_val_copy["images"] = images
    demo_val_copy["annotations"] = [a for a in demo_val_copy["annotations"] if a["image_id"] in kept_ids]
    missing = images[3]
    orphans = [a for a in demo_val_copy["annotations"] if a["image_id"] == missing["id"]]
    assert orphans
    progress = []
    dataset = validate_coco(
        demo_val_copy, folder, progress=lambda done, total: progress.append((done, total))
    )
    report = dataset.report
    assert_code(report, "missing-image-file", ERROR)
    assert missing["file_name"] in messages(report, "missing-image-file")[0]
    assert ids(dataset.images) == [image["id"] for image in images[:3]]
    assert_code(report, "annotation-image-missing", WARNING, len(orphans))
    assert len(dataset.annotations) == len(demo_val_copy["annotations"]) - len(orphans)
    assert progress[-1] == (4, 4)
    assert dataset.image_path(dataset.images[0]) == (folder / images[0]["file_name"]).resolve()


def test_image_size_mismatch(tmp_path, demo_val_copy):
    images = demo_val_copy["images"][:3]
    folder = tmp_path / "val"
    folder.mkdir()
    for image in images:
        shutil.copy(DEMO_VAL_IMAGES / image["file_name"], folder / image["file_name"])
    wrong = images[1]
    true_size = (wrong["width"], wrong["height"])
    wrong["width"], wrong["height"] = wrong["height"], wrong["width"]  # transposed, as EXIF tools do
    demo_val_copy["images"] = images
    dataset = validate_coco(demo_val_copy, folder)
    report = dataset.report
    assert_code(report, "image-size-mismatch", ERROR)
    assert f"file is {true_size[0]}x{true_size[1]}" in messages(report, "image-size-mismatch")[0]
    assert ids(dataset.images) == [images[0]["id"], images[2]["id"]]


@pytest.mark.parametrize(
    "content", [b"this is text, not a JPEG\n", b"", b"\xff\xd8\xff"], ids=["text", "empty", "jpeg-magic-only"]
)
def test_unreadable_image_file(tmp_path, content):
    folder = images_folder(tmp_path, {"a.jpg": (10, 8)})
    (folder / "b.jpg").write_bytes(content)
    dataset = validate_coco(base_coco(), folder)
    assert_code(dataset.report, "unreadable-image-file", ERROR)
    assert "b.jpg" in messages(dataset.report, "unreadable-image-file")[0]
    assert ids(dataset.images) == [1]
    assert ids(dataset.annotations) == [1]
    assert_code(dataset.report, "annotation-image-missing", WARNING)


def test_image_file_that_is_a_folder_is_missing(tmp_path):
    folder = images_folder(tmp_path, {"a.jpg": (10, 8)})
    (folder / "b.jpg").mkdir()
    dataset = validate_coco(base_coco(), folder)
    assert_code(dataset.report, "missing-image-file", ERROR)
    assert ids(dataset.images) == [1]


def test_exif_rotated_image_is_a_warning_and_kept(tmp_path):
    folder = images_folder(tmp_path, {"a.jpg": (10, 8)})
    write_image(folder / "b.jpg", 12, 9, exif_orientation=6)
    with Image.open(folder / "b.jpg") as handle:
        assert handle.getexif().get(0x0112) == 6
    dataset = validate_coco(base_coco(), folder)
    assert dict(dataset.report.counts) == {"exif-rotated": 1}
    assert_code(dataset.report, "exif-rotated", WARNING)
    assert "9x12" in messages(dataset.report, "exif-rotated")[0]
    assert ids(dataset.images) == [1, 2]
    assert ids(dataset.annotations) == [1, 2]


def test_very_large_image_header_does_not_crash_validation(tmp_path):
    """A legal 20000x20000 image (above Pillow's decompression-bomb limit, which dataset decoding
    keeps in force, data/images.py) is an ``unreadable-image-file`` ERROR and left out here,
    not an uncaught PIL exception out of validate_coco, nor a failure later in a worker
    (only the header is read)."""
    folder = images_folder(tmp_path, {"a.jpg": (10, 8), "b.jpg": (12, 9)})
    (folder / "big.png").write_bytes(png_header_only(20000, 20000))
    assert 20000 * 20000 > 2 * Image.MAX_IMAGE_PIXELS  # Pillow refuses it (not only warns)
    data = base_coco()
    data["images"].append({"id": 9, "file_name": "big.png", "width": 20000, "height": 20000})
    dataset = validate_coco(data, folder)
    assert dict(dataset.report.counts) == {"unreadable-image-file": 1}
    assert_code(dataset.report, "unreadable-image-file", ERROR)
    (message,) = messages(dataset.report, "unreadable-image-file")
    assert "big.png" in message and "safety limit" in message, message
    assert ids(dataset.images) == [1, 2]
    assert ids(dataset.annotations) == [1, 2]


# ---------------------------------------------------------------------------
# file level (50): one clean line, size limit before reading
# ---------------------------------------------------------------------------


@pytest.fixture
def good_text() -> str:
    return json.dumps(base_coco())


@pytest.mark.parametrize(
    "reader",
    [read_coco_json, lambda path, limit: load_coco(path, None, limit)],
    ids=["read_coco_json", "load_coco"],
)
@pytest.mark.parametrize(
    "payload, fragment",
    [
        ("[]", "JSON list"),
        ("[1, 2]", "JSON list"),
        ('"images"', "JSON str"),
        ("3", "JSON int"),
        ("null", "JSON NoneType"),
    ],
)
def test_json_that_is_not_an_object(tmp_path, reader, payload, fragment):
    path = tmp_path / "ann.json"
    path.write_text(payload)
    with pytest.raises(CocoFileError) as excinfo:
        reader(path, MAX_BYTES)
    assert_one_line_error(excinfo, fragment, "object", path=path)


def test_truncated_real_file(tmp_path):
    text = DEMO_VAL_JSON.read_text()
    path = tmp_path / "half.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, MAX_BYTES)
    message = assert_one_line_error(excinfo, "not valid JSON", "line ", "column ", "truncated", path=path)
    line = int(message.split("(line ")[1].split()[0])
    cut = text[: len(text) // 2]
    assert cut.rstrip().count("\n") + 1 <= line <= cut.count("\n") + 1


@pytest.mark.parametrize(
    "marker, extra",
    [
        ('"file_name": "', 4),
        ('"date_captured": "', 6),
        ('"name": "', 2),
        ('"supercategory"', -5),
    ],
)
def test_truncated_inside_a_string_says_truncated(tmp_path, marker, extra):
    """A file cut inside a string (file_name, date, key...) is truncated too: the hint must say so."""
    text = DEMO_VAL_JSON.read_text()
    cut = text.index(marker) + len(marker) + extra
    path = tmp_path / "cut.json"
    path.write_text(text[:cut])
    with pytest.raises(CocoFileError) as excinfo:
        read_coco_json(path, MAX_BYTES)
    assert_one_line_error(excinfo, "not valid JSON", "truncated", path=path)


@pytest.mark.parametrize(
    "cut_text", ['{"images": [', '{"images": [1, 2', '{"images": [1, 2,', '{"a": -', "{", '{"a"']
)
def test_truncated_small_texts_say_truncated(cut_text):
    with pytest.raises(CocoFileError) as excinfo:
        parse_annotation_text(cut_text, Path("x.json"))
    assert_one_line_error(excinfo, "truncated", "x.json")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.json"
    path.write_bytes(b"")
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, MAX_BYTES)
    assert_one_line_error(excinfo, "empty", path=path)


def test_whitespace_only_file(tmp_path):
    path = tmp_path / "blank.json"
    path.write_text("  \n\n  ")
    with pytest.raises(CocoFileError) as excinfo:
        read_coco_json(path, MAX_BYTES)
    assert_one_line_error(excinfo, "not valid JSON")


def test_utf8_bom_is_accepted(tmp_path, good_text):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + good_text.replace('"person"', '"persön"', 1).encode("utf-8"))
    dataset = load_coco(path, None, MAX_BYTES)
    assert ids(dataset.images) == [1, 2] and ids(dataset.annotations) == [1, 2]
    assert dataset.categories[0]["name"] == "persön"
    assert dict(dataset.report.counts) == {}


@pytest.mark.parametrize("garbage", [" xyz", "\n{}", "]]] ", "\x00\x00"])
def test_trailing_garbage(tmp_path, good_text, garbage):
    path = tmp_path / "garbage.json"
    path.write_text(good_text + garbage)
    with pytest.raises(CocoFileError) as excinfo:
        read_coco_json(path, MAX_BYTES)
    message = assert_one_line_error(excinfo, "not valid JSON", "Extra data", "line ", path=path)
    assert "truncated" not in message


@pytest.mark.parametrize("garbage", ["}", "]", "x", ","])
def test_single_trailing_character_is_not_called_truncated(tmp_path, good_text, garbage):
    """An extra closing brace is "Extra data", the opposite of a truncated file."""
    path = tmp_path / "extra.json"
    path.write_text(good_text + garbage)
    with pytest.raises(CocoFileError) as excinfo:
        read_coco_json(path, MAX_BYTES)
    message = assert_one_line_error(excinfo, "Extra data", path=path)
    assert "truncated" not in message


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"images": ' + "[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000]
)
def test_deeply_nested_json(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, MAX_BYTES)
    assert_one_line_error(excinfo, "nested too deeply", path=path)


def test_huge_integer_literal_is_a_clean_error(tmp_path):
    """Python refuses int literals above 4300 digits with a bare ValueError; it must become a
    CocoFileError.
    """
    data = base_coco()
    data["annotations"][0]["id"] = 424242
    path = tmp_path / "bigint.json"
    path.write_text(json.dumps(data).replace("424242", "9" * 5000))
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, MAX_BYTES)
    assert_one_line_error(excinfo, path=path)


@pytest.mark.parametrize(
    "content, byte",
    [
        (b'{"images": [], "categories": [{"id": 1, "name": "caf\xe9"}], "annotations": []}', 52),
        (b"\xff\xfe{\x00}\x00", 0),
        (b'{"a": "\xc3"}', 7),
    ],
)
def test_non_utf8_bytes(tmp_path, content, byte):
    assert content[byte] >= 0x80
    path = tmp_path / "latin1.json"
    path.write_bytes(content)
    with pytest.raises(CocoFileError) as excinfo:
        read_annotation_text(path, MAX_BYTES)
    assert_one_line_error(excinfo, "not UTF-8", f"byte {byte}", path=path)
    with pytest.raises(CocoFileError):
        load_coco(path, None, MAX_BYTES)


def test_two_gigabyte_file_is_refused_by_size_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.json"
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used
    assert path.stat().st_size == 2 * 1024**3
    limit = Settings(home=tmp_path).max_annotation_bytes
    assert limit == 1024 * 1024 * 1024

    reads: list[str] = []  # recorded, not only raised: a broad ``except`` in the code cannot hide a read

    def forbidden(name):
        def reader(*args, **kwargs):
            reads.append(name)
            raise AssertionError(f"{name}: the file was read although it is over the limit")

        return reader

    with monkeypatch.context() as patch:  # scoped: pytest itself may open files after the call
        for name in ("read_bytes", "read_text", "open"):
            patch.setattr(Path, name, forbidden(f"Path.{name}"))
        patch.setattr("builtins.open", forbidden("open"))
        with pytest.raises(CocoFileError) as excinfo:
            load_coco(path, None, limit)
    assert reads == []
    assert_one_line_error(excinfo, "2,048 MB", "1,024 MB limit", "COCOSEG_MAX_ANNOTATION_MB", path=path)


def test_size_limit_is_exact(tmp_path, good_text):
    path = tmp_path / "ann.json"
    path.write_text(good_text)
    size = path.stat().st_size
    assert check_annotation_file(path, size) == size
    assert ids(load_coco(path, None, size).images) == [1, 2]
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, size - 1)
    assert_one_line_error(excinfo, "limit", path=path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(tmp_path, None, MAX_BYTES)
    assert_one_line_error(excinfo, "is a folder", path=tmp_path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, MAX_BYTES)
    assert_one_line_error(excinfo, "not found", path=path)


def test_path_below_a_regular_file(tmp_path, good_text):
    """'ann.json/x.json' (a file used as a folder) is a missing file, not a raw NotADirectoryError."""
    parent = tmp_path / "ann.json"
    parent.write_text(good_text)
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(parent / "x.json", None, MAX_BYTES)
    assert_one_line_error(excinfo, path=parent / "x.json")


def test_file_name_too_long(tmp_path):
    path = tmp_path / ("a" * 300 + ".json")
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(path, None, MAX_BYTES)
    assert_one_line_error(excinfo, path=path)


def test_error_for_a_path_with_a_newline_is_still_one_line(tmp_path):
    with pytest.raises(CocoFileError) as excinfo:
        load_coco(tmp_path / "two\nlines.json", None, MAX_BYTES)
    assert_one_line_error(excinfo, "not found")


def test_load_coco_keeps_extra_keys_and_source(tmp_path):
    data = base_coco()
    data["info"] = {"year": 2017}
    data["licenses"] = [{"id": 1, "name": "x"}]
    path = write_json(tmp_path / "ann.json", data)
    dataset = load_coco(path, None, MAX_BYTES)
    assert dataset.extra == {"info": {"year": 2017}, "licenses": [{"id": 1, "name": "x"}]}
    assert dataset.source == path
    assert dataset.to_dict() == data
