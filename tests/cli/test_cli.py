"""The cocoseg command line: real subprocesses for exit codes, in-process calls for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cocoseg import cli
from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON

ROOT = Path(__file__).resolve().parents[2]


def run_cocoseg(*arguments: str, home: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "COCOSEG_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "cocoseg", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_validate_and_stats_demo_print_real_figures(isolated_home):
    validated = run_cocoseg("data", "validate", "demo", home=isolated_home)
    assert validated.returncode == 0, validated.stderr
    assert (
        "demo/train: 80/80 images valid, 705/705 annotations valid, 80 categories, 6 crowd regions"
        in validated.stdout
    )
    assert "demo/val: 80/80 images valid, 815/815 annotations valid" in validated.stdout
    stats = run_cocoseg("data", "stats", "demo", "--split", "val", "--top", "3", home=isolated_home)
    assert stats.returncode == 0, stats.stderr
    assert (
        "demo/val: 80 images, 815/815 annotations used, 11 crowd, 80 categories, "
        "label map coco80 (81 classes)"
    ) in stats.stdout
    assert "person                 209" in stats.stdout
    assert "Traceback" not in stats.stderr


@pytest.mark.parametrize(
    "arguments, code, message",
    [
        (("data", "stats", "nope"), cli.EXIT_INPUT, "no dataset called 'nope'"),
        (
            ("data", "add", "x", "--annotations", "/nonexistent.json", "--images", str(DEMO_VAL_IMAGES)),
            cli.EXIT_INPUT,
            "not found",
        ),
        (
            ("data", "add", "../x", "--annotations", str(DEMO_VAL_JSON), "--images", str(DEMO_VAL_IMAGES)),
            cli.EXIT_INPUT,
            "not allowed",
        ),
        (("data", "stats", "demo", "--labels", "custom", "--classes", "unicorn"), cli.EXIT_INPUT, "unicorn"),
        (
            (
                "data",
                "frobnicate",
            ),
            cli.EXIT_USAGE,
            "invalid choice",
        ),
    ],
)
def test_errors_are_one_line_with_reliable_exit_codes(isolated_home, arguments, code, message):
    completed = run_cocoseg(*arguments, home=isolated_home)
    assert completed.returncode == code
    assert message in completed.stderr and "Traceback" not in completed.stderr


def test_validate_exits_1_on_errors_and_lists_them(isolated_home, tmp_path, demo_val_copy, capsys):
    demo_val_copy["annotations"][0]["segmentation"] = [[1, 2, 3, 4]]
    demo_val_copy["annotations"].append(dict(demo_val_copy["annotations"][1]))
    annotations = tmp_path / "broken.json"
    annotations.write_text(json.dumps(demo_val_copy))
    assert (
        cli.main(
            [
                "data",
                "add",
                "broken",
                "--annotations",
                str(annotations),
                "--images",
                str(DEMO_VAL_IMAGES),
                "--split",
                "val",
            ]
        )
        == 0
    )
    assert cli.main(["data", "validate", "broken"]) == cli.EXIT_PROBLEMS
    output = capsys.readouterr().out
    assert "2 errors, 0 warnings" in output
    assert "polygon-four-numbers" in output and "duplicate-annotation-id" in output
    assert cli.main(["data", "validate", "broken", "--json"]) == cli.EXIT_PROBLEMS
    payload = json.loads(capsys.readouterr().out)
    assert payload["val"]["errors"] == 2


def test_data_add_refuses_a_truncated_file_and_registers_nothing(isolated_home, tmp_path, capsys):
    """The issue's file (``{"images": [}``) and a real file cut short: one line, the one
    ``data validate`` gives, exit 3, and the registry unchanged."""
    tiny = tmp_path / "tiny.json"
    tiny.write_text('{"images": [}')
    cut = tmp_path / "cut.json"
    cut.write_text(DEMO_VAL_JSON.read_text()[:5000])
    refusals = {}
    for source in (tiny, cut):
        capsys.readouterr()
        add = ["data", "add", "mine", "--annotations", str(source), "--images", str(DEMO_VAL_IMAGES)]
        assert cli.main(add) == cli.EXIT_INPUT
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("cocoseg: error: annotation file"), errors
        assert "is not valid JSON" in errors[0] and "truncated" in errors[0]
        refusals[source] = errors[0]
    assert not (isolated_home / "datasets.json").exists()
    assert cli.main(["data", "list", "--json"]) == 0
    assert [entry["name"] for entry in json.loads(capsys.readouterr().out)] == ["demo"]
    # --no-check registers it; data validate then gives the very line add refused it with
    unchecked = ["data", "add", "mine", "--annotations", str(tiny), "--images", str(DEMO_VAL_IMAGES)]
    assert cli.main([*unchecked, "--no-check"]) == 0
    capsys.readouterr()
    assert cli.main(["data", "validate", "mine"]) == cli.EXIT_INPUT
    assert capsys.readouterr().err.strip() == refusals[tiny]


def test_data_add_refuses_json_that_is_not_coco_and_nameless_categories(isolated_home, tmp_path, capsys):
    cases = {
        "array.json": ("[1, 2]", "holds a JSON list"),
        "nolists.json": ('{"images": [], "annotations": {}}', "'annotations', 'categories' are missing"),
        "nameless.json": ('{"images": [], "annotations": [], "categories": [{"id": 1}]}', "has no name"),
    }
    for file_name, (text, expected) in cases.items():
        source = tmp_path / file_name
        source.write_text(text)
        add = ["data", "add", "x", "--annotations", str(source), "--images", str(DEMO_VAL_IMAGES)]
        assert cli.main(add) == cli.EXIT_INPUT
        error = capsys.readouterr().err.strip()
        assert expected in error and len(error.splitlines()) == 1, error
    assert not (isolated_home / "datasets.json").exists()


def test_broken_json_is_one_line_not_a_traceback(isolated_home, tmp_path, capsys):
    annotations = tmp_path / "truncated.json"
    annotations.write_text(DEMO_VAL_JSON.read_text()[:5000])
    assert (
        cli.main(
            ["data", "add", "cut", "--annotations", str(annotations), "--images", str(DEMO_VAL_IMAGES)]
            + ["--no-check"]
        )
        == 0
    )
    assert cli.main(["data", "validate", "cut"]) == cli.EXIT_INPUT
    assert cli.main(["data", "stats", "cut"]) == cli.EXIT_INPUT
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(
        line.startswith("cocoseg: error:") and "truncated" in line for line in errors
    )


def test_data_list_json_and_remove(isolated_home, capsys):
    assert (
        cli.main(
            [
                "data",
                "add",
                "mine",
                "--annotations",
                str(DEMO_VAL_JSON),
                "--images",
                str(DEMO_VAL_IMAGES),
                "--split",
                "val",
            ]
        )
        == 0
    )
    assert "registered mine/val" in capsys.readouterr().out
    assert cli.main(["data", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing[0]["name"] == "demo" and set(listing[0]["splits"]) == {"train", "val"}
    assert listing[1]["name"] == "mine" and listing[1]["splits"]["val"]["annotations"] == str(
        DEMO_VAL_JSON.resolve()
    )
    assert cli.main(["data", "remove", "mine"]) == 0
    assert cli.main(["data", "remove", "demo"]) == cli.EXIT_INPUT
    assert cli.main(["data", "list", "--json"]) == 0
    assert [entry["name"] for entry in json.loads(capsys.readouterr().out.split("\n", 1)[1])] == ["demo"]


def test_export_masks_writes_pngs_named_after_images(isolated_home, tmp_path, capsys):
    out = tmp_path / "masks"
    assert (
        cli.main(["data", "export-masks", "demo", "--split", "val", "--labels", "voc21", "--out", str(out)])
        == 0
    )
    assert "wrote 80 masks" in capsys.readouterr().out
    classes = json.loads((out / "classes.json").read_text())
    assert (
        classes["name"] == "voc21"
        and classes["classes"][15]["name"] == "person"
        and classes["ignore_index"] == 255
    )
    dataset = load_coco(DEMO_VAL_JSON, DEMO_VAL_IMAGES, 1024**3)
    label_map = build_label_map("voc21", dataset.categories)
    pngs = sorted(path.name for path in out.glob("*.png"))
    assert pngs == sorted(Path(image["file_name"]).with_suffix(".png").name for image in dataset.images)
    for image in dataset.images[:10]:
        written = cv2.imread(str(out / Path(image["file_name"]).with_suffix(".png")), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8 and written.shape == (image["height"], image["width"])
        expected = semantic_mask(
            dataset.annotations_by_image[image["id"]], image["height"], image["width"], label_map
        )
        np.testing.assert_array_equal(written, expected)
    assert not list(out.glob(".*.tmp"))


def test_export_masks_all_splits_go_to_subfolders(isolated_home, tmp_path):
    out = tmp_path / "both"
    assert cli.main(["data", "export-masks", "demo", "--out", str(out)]) == 0
    assert len(list((out / "train").glob("*.png"))) == 80 and len(list((out / "val").glob("*.png"))) == 80


def test_export_masks_protocol_options(isolated_home, tmp_path, capsys):
    out = tmp_path / "larger"
    assert (
        cli.main(
            [
                "data",
                "export-masks",
                "demo",
                "--split",
                "val",
                "--overlap",
                "larger-first",
                "--crowd",
                "paint",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads((out / "classes.json").read_text())["overlap"] == "larger-first"
    dataset = load_coco(DEMO_VAL_JSON, DEMO_VAL_IMAGES, 1024**3)
    painted = build_label_map("coco80", dataset.categories).with_protocol(
        crowd="paint", overlap="larger-first"
    )
    image = dataset.images[0]
    written = cv2.imread(str(out / Path(image["file_name"]).with_suffix(".png")), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(
        written,
        semantic_mask(dataset.annotations_by_image[image["id"]], image["height"], image["width"], painted),
    )
    assert (
        cli.main(
            [
                "data",
                "export-masks",
                "demo",
                "--labels",
                "voc21",
                "--overlap",
                "larger-first",
                "--out",
                str(tmp_path / "no"),
            ]
        )
        == cli.EXIT_INPUT
    )
    assert "voc21 carries its own mask protocol" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_runs_cancel_goes_through_the_registry(isolated_home, capsys):
    """``cocoseg runs cancel`` works for a run another process trains: it only writes the request."""
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.jobs.registry import create_run, process_identity

    workspace = Workspace(isolated_home).ensure()
    queued = create_run(workspace, {"model": "unet", "epochs": 2}, "unet")
    assert cli.main(["runs", "cancel", queued.name]) == 0
    assert queued.status()["status"] == "cancelled" and queued.cancel_requested()  # nobody had picked it up
    running = create_run(workspace, {"model": "unet", "epochs": 2}, "unet")
    running.set_status("running", **process_identity())  # this process stands in for the trainer: alive
    assert cli.main(["runs", "cancel", running.name]) == 0
    assert running.status()["status"] == "running" and running.cancel_requested()  # the runner stops itself
    assert "stops after the current step" in capsys.readouterr().out
    assert cli.main(["runs", "cancel", queued.name]) == 0
    assert "nothing to cancel" in capsys.readouterr().out
    assert cli.main(["runs", "cancel", "no-such-run"]) == cli.EXIT_INPUT


def test_runs_show_says_what_a_run_applied(isolated_home, capsys):
    """The augmentation a run applied in a line, beside its full config; a hand-broken config still shows."""
    import dataclasses

    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.jobs.registry import create_run
    from cocoseg.pipeline.training import AugmentConfig, TrainConfig

    workspace = Workspace(isolated_home).ensure()
    strengths = dataclasses.asdict(dataclasses.replace(AugmentConfig(), rotation_degrees=20, flip=False))
    config = TrainConfig("some-set", augmentation=strengths).to_dict()
    run = create_run(workspace, config, "unet")
    assert cli.main(["runs", "show", run.name]) == 0
    output = capsys.readouterr().out
    assert "  augmentation scale 0.75–1.5 · rotation ±20° · brightness ±0.15" in output
    assert '"rotation_degrees": 20' in output  # and the config it comes from
    broken = create_run(workspace, {**config, "augmentation": {"zoom": 3}}, "unet")
    assert cli.main(["runs", "show", broken.name]) == 0
    output = capsys.readouterr().out
    assert "  augmentation " not in output and '"zoom": 3' in output


def test_cli_add_validate_stats(isolated_home, photos, capsys):
    arguments = ["data", "add", "photos", "--images", str(photos), "--split", "new"]
    assert cli.main(arguments) == cli.EXIT_OK
    assert "registered photos/new as unlabelled images" in capsys.readouterr().out
    assert cli.main(arguments) == cli.EXIT_INPUT
    error = capsys.readouterr().err
    assert error.startswith("cocoseg: error:") and "--replace" in error and "Traceback" not in error
    assert cli.main([*arguments, "--replace"]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["data", "validate", "photos", "--split", "new"]) == cli.EXIT_PROBLEMS
    output = capsys.readouterr().out
    assert "photos/new: 3/4 images valid, 0/0 annotations valid, 0 categories" in output
    assert "unlabelled: images without annotations" in output and "unreadable-image-file" in output
    assert cli.main(["data", "stats", "photos", "--split", "new"]) == cli.EXIT_OK
    output = capsys.readouterr().out
    assert "photos/new: 4 images, 0/0 annotations used" in output and "label map coco80" in output
    assert "no annotations: nothing to count per class" in output


def test_cli_add_needs_images_but_not_annotations(isolated_home, tmp_path, capsys):
    with pytest.raises(SystemExit) as usage:
        cli.main(["data", "add", "photos"])
    assert usage.value.code == cli.EXIT_USAGE
    assert cli.main(["data", "add", "photos", "--images", str(tmp_path / "gone")]) == cli.EXIT_INPUT
    assert "image folder not found" in capsys.readouterr().err
