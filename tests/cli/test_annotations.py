"""``cocoseg annotations list|export|register`` on a real saved correction of a demo val picture."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from cocoseg import cli
from cocoseg.pipeline.annotation.store import load_saved, save_image
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.registry import get_dataset
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.plan import plan
from tests.cli.test_cli import run_cocoseg
from tests.conftest import DEMO_VAL_IMAGES, LIMIT
from tests.pipeline.annotation.test_annotation_store import demo_image

VOC = build_label_map("voc21")
FILE_NAME = "000000184324.jpg"


@pytest.fixture
def saved(isolated_home) -> Workspace:
    """The home workspace with one real correction: the demo val picture's voc21 mask plus a painted dog."""
    workspace = Workspace(isolated_home)
    image, mask = demo_image(FILE_NAME)
    mask = mask.copy()
    mask[10:60, 10:90] = 12
    save_image(workspace, "demo", image, mask, VOC, "", LIMIT)
    return workspace


def test_list_before_and_after_a_save(isolated_home, capsys):
    assert cli.main(["annotations", "list", "demo"]) == cli.EXIT_OK
    assert "no annotations saved for demo yet" in capsys.readouterr().out
    workspace = Workspace(isolated_home)
    image, mask = demo_image(FILE_NAME)
    save_image(workspace, "demo", image, mask, VOC, "", LIMIT)
    assert cli.main(["annotations", "list", "demo"]) == cli.EXIT_OK
    output = capsys.readouterr().out
    assert "1 saved images in" in output and FILE_NAME in output and "bicycle, bus, car, person" in output
    assert cli.main(["annotations", "list", "demo", "--json"]) == cli.EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["file_name"] == FILE_NAME and rows[0]["source"] == str(DEMO_VAL_IMAGES / FILE_NAME)


def test_export_both_formats(saved, tmp_path, capsys):
    assert (
        cli.main(["annotations", "export", "demo", "--format", "coco", "--out", str(tmp_path / "coco")])
        == cli.EXIT_OK
    )
    assert f"wrote {tmp_path / 'coco' / 'demo.json'}" in capsys.readouterr().out
    exported = json.loads((tmp_path / "coco" / "demo.json").read_text())
    assert [image["file_name"] for image in exported["images"]] == [FILE_NAME]
    assert (
        cli.main(["annotations", "export", "demo", "--format", "png-masks", "--out", str(tmp_path / "masks")])
        == cli.EXIT_OK
    )
    assert "wrote 1 class-index PNG masks and classes.json" in capsys.readouterr().out
    decoded = cv2.imread(str(tmp_path / "masks" / "000000184324.png"), cv2.IMREAD_UNCHANGED)
    assert (
        np.array_equal(decoded, load_saved(saved, "demo", FILE_NAME, VOC))
        and (decoded[10:60, 10:90] == 12).all()
    )


def test_register_as_dataset_and_as_overlay_then_prepare_plans_them(saved, capsys):
    assert cli.main(["annotations", "register", "demo", "--name", "demo-fixed"]) == cli.EXIT_OK
    output = capsys.readouterr().out
    assert "registered demo-fixed (dataset, 1 corrected images)" in output
    assert "prepare it with: cocoseg prepare demo-fixed --splits train" in output
    assert plan(saved, PrepareConfig("demo-fixed", splits=("train",), labels="voc21"), LIMIT).splits[0].tasks
    assert cli.main(["annotations", "register", "demo", "--name", "demo-overlay", "--overlay"]) == cli.EXIT_OK
    output = capsys.readouterr().out
    assert "registered demo-overlay (overlay, 1 corrected images)" in output
    assert "prepare it with: cocoseg prepare demo-overlay\n" in output
    assert set(get_dataset(saved, "demo-overlay").splits) == {"train", "val"}
    assert [
        len(split.tasks) for split in plan(saved, PrepareConfig("demo-overlay", labels="voc21"), LIMIT).splits
    ] == [80, 80]
    assert cli.main(["data", "list"]) == cli.EXIT_OK
    listing = capsys.readouterr().out
    assert "demo-fixed" in listing and "demo-overlay" in listing


def test_prepare_dry_run_accepts_the_registered_corrections(saved):
    assert cli.main(["annotations", "register", "demo", "--name", "demo-fixed"]) == cli.EXIT_OK
    completed = run_cocoseg(
        "prepare", "demo-fixed", "--splits", "train", "--labels", "voc21", "--dry-run", home=saved.root
    )
    assert completed.returncode == cli.EXIT_OK, completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "arguments, code, message",
    [
        (
            ("annotations", "export", "demo", "--format", "coco", "--out", "OUT"),
            cli.EXIT_INPUT,
            "cocoseg: error: no saved annotations for demo yet",
        ),
        (
            ("annotations", "register", "demo", "--name", "fresh"),
            cli.EXIT_INPUT,
            "cocoseg: error: no saved annotations for demo yet",
        ),
        (
            ("annotations", "list", "../demo"),
            cli.EXIT_INPUT,
            "cocoseg: error: dataset name '../demo' is not allowed",
        ),
        (
            ("annotations", "export", "demo", "--format", "yolo", "--out", "OUT"),
            cli.EXIT_USAGE,
            "invalid choice: 'yolo'",
        ),
        (("annotations", "frobnicate"), cli.EXIT_USAGE, "invalid choice"),
    ],
)
def test_errors_are_one_line_with_the_project_exit_codes(isolated_home, tmp_path, arguments, code, message):
    arguments = [str(tmp_path / "out") if argument == "OUT" else argument for argument in arguments]
    completed = run_cocoseg(*arguments, home=isolated_home)
    assert completed.returncode == code
    assert message in completed.stderr and "Traceback" not in completed.stderr
    if code == cli.EXIT_INPUT:
        assert completed.stderr.count("\n") == 1 and completed.stdout == ""


def test_register_errors_after_a_save(saved, capsys):
    assert cli.main(["annotations", "register", "demo", "--name", "demo"]) == cli.EXIT_INPUT
    assert (
        capsys.readouterr().err
        == "cocoseg: error: a dataset called 'demo' exists already; choose another name\n"
    )
    assert cli.main(["annotations", "register", "uploads", "--name", "fresh", "--overlay"]) == cli.EXIT_INPUT
    assert "no saved annotations for uploads yet" in capsys.readouterr().err
