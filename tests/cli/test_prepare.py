"""``cocoseg prepare``: shorthand, summary table, dry run, preview, list, config errors."""

from __future__ import annotations

import json

import cv2

from cocoseg import cli
from cocoseg.cli.prepare import expand_shorthand


def test_shorthand_expands_to_run():
    assert expand_shorthand(["prepare", "demo", "--size", "64"]) == ["prepare", "run", "demo", "--size", "64"]
    assert expand_shorthand(["-v", "prepare", "demo"]) == ["-v", "prepare", "run", "demo"]
    assert expand_shorthand(["prepare", "preview", "demo"]) == ["prepare", "preview", "demo"]
    assert expand_shorthand(["data", "stats", "prepare"]) == ["data", "stats", "prepare"]


def test_prepare_prints_a_summary_and_lists_the_set(isolated_home, capsys):
    arguments = [
        "prepare",
        "demo",
        "--labels",
        "voc21",
        "--size",
        "64",
        "--shards",
        "2",
        "--workers",
        "1",
        "--sampling",
        "repeat-factor",
        "--top",
        "3",
    ]
    assert cli.main(arguments) == cli.EXIT_OK
    output = capsys.readouterr().out
    assert "wrote " in output and "demo-voc21-64-" in output
    assert "  train          " in output and "labelled-area" in output and "  val            80" in output
    assert "after repeat-factor sampling" in output and "images per epoch: " in output
    assert cli.main(arguments) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("reused ")
    assert cli.main(["prepare", "list"]) == cli.EXIT_OK
    assert "train " in capsys.readouterr().out
    torn = isolated_home / "prepared" / "demo-voc21-64-0123456789ab"  # a manifest cut short or edited by hand
    torn.mkdir()
    (torn / "manifest.json").write_text('{"config": ')
    assert cli.main(["prepare", "list"]) == cli.EXIT_OK
    listed = capsys.readouterr().out
    assert f"{torn.name}  unusable: " in listed and "prepare the set again" in listed and ", val 80" in listed


def test_dry_run_json_writes_nothing(isolated_home, capsys):
    assert (
        cli.main(["prepare", "demo", "--labels", "supercategory", "--size", "64", "--dry-run", "--json"])
        == cli.EXIT_OK
    )
    result = json.loads(capsys.readouterr().out)
    assert result["exists"] is False and result["splits"]["val"]["images"] == 80
    assert not (isolated_home / "prepared").exists()


def test_config_errors_name_the_field(isolated_home, capsys):
    assert cli.main(["prepare", "demo", "--size", "100"]) == cli.EXIT_INPUT
    assert (
        cli.main(["prepare", "demo", "--labels", "custom", "--classes", "person,unicorn", "--size", "64"])
        == cli.EXIT_INPUT
    )
    errors = capsys.readouterr().err.splitlines()
    assert (
        errors[0].startswith("cocoseg: error: size:")
        and errors[1].startswith("cocoseg: error: classes:")
        and "unicorn" in errors[1]
    )


def test_preview_writes_a_png_grid(isolated_home, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        cli.main(
            [
                "prepare",
                "preview",
                "demo",
                "--labels",
                "voc21",
                "--size",
                "64",
                "--index",
                "1",
                "--count",
                "6",
                "--columns",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 64 + 4, 3 * (2 * 64 + 4) + 2 * 4, 3)
    assert "wrote 6 augmentations of" in capsys.readouterr().out
    assert (
        cli.main(["prepare", "preview", "demo", "--size", "64", "--index", "500", "--out", str(out)])
        == cli.EXIT_INPUT
    )
    capsys.readouterr()
    still = [
        "prepare",
        "preview",
        "demo",
        "--size",
        "64",
        "--count",
        "2",
        "--augmentation",
        "rotation_degrees=0",
    ]
    assert cli.main([*still, "--augmentation", "flip=false", "--out", str(tmp_path / "still.png")]) == 0
    assert cli.main([*still, "--augmentation", "zoom=2", "--out", str(out)]) == cli.EXIT_INPUT
    assert "augmentation: unknown strength 'zoom'" in capsys.readouterr().err
