"""Saving corrections safely (cocoseg.pipeline.annotation.store; export and registration:
cocoseg.pipeline.annotation.export).

The kill test needs no hook in the product: the child process replaces ``os.replace``
(the rename ``atomic_write_bytes`` ends with) by a function that records the temp file,
tells the parent, and blocks; the parent then SIGKILLs it between write and rename.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cocoseg.pipeline.annotation import export as annotation_export
from cocoseg.pipeline.annotation.export import Registration, export_annotations, register_corrections
from cocoseg.pipeline.annotation.store import (
    VersionConflict,
    annotations_file,
    load_saved,
    open_annotations,
    save_image,
    saved_images,
)
from cocoseg.pipeline.annotation.strokes import AnnotationError
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.coco import validate_coco
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import add_dataset, get_dataset, load_split
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.plan import plan
from tests.conftest import DEMO_TRAIN_IMAGES, DEMO_TRAIN_JSON, DEMO_VAL_IMAGES, DEMO_VAL_JSON, LIMIT

VOC = build_label_map("voc21")
COCO80 = build_label_map("coco80")
VAL_NAMES = ("000000532481.jpg", "000000184324.jpg", "000000454661.jpg", "000000402433.jpg")
TRAIN_NAME = "000000262145.jpg"
SPAWN = multiprocessing.get_context("spawn")


def _demo(split: str) -> dict:
    return json.loads((DEMO_VAL_JSON if split == "val" else DEMO_TRAIN_JSON).read_text())


def demo_image(file_name: str, split: str = "val") -> tuple[dict, np.ndarray]:
    """A real demo picture as the Annotate page describes it, and its voc21 mask from the real annotations."""
    data = _demo(split)
    image = next(item for item in data["images"] if item["file_name"] == file_name)
    annotations = [item for item in data["annotations"] if item["image_id"] == image["id"]]
    mask = semantic_mask(annotations, image["height"], image["width"], VOC)
    folder = DEMO_VAL_IMAGES if split == "val" else DEMO_TRAIN_IMAGES
    return {
        "file_name": file_name,
        "width": image["width"],
        "height": image["height"],
        "source": str(folder / file_name),
    }, mask


def saved_form(mask: np.ndarray) -> np.ndarray:
    """What reopening gives back: 255 (not drawn) is not saved, so it reads as background."""
    return np.where(mask == 255, 0, mask).astype(np.uint8)


def save(
    workspace, file_name, version, mask=None, split="val", dataset="demo", label_map=VOC, max_bytes=LIMIT
) -> str:
    image, real_mask = demo_image(file_name, split)
    return save_image(
        workspace, dataset, image, real_mask if mask is None else mask, label_map, version, max_bytes
    )


def assert_valid_file(workspace, dataset="demo") -> dict:
    data = json.loads(annotations_file(workspace, dataset).read_text())
    report = validate_coco(data).report
    assert report.errors == 0, report.to_dict()
    return data


# --- save / open / reopen --------------------------------------------------------------------


def test_open_before_the_first_save_is_empty(workspace):
    assert open_annotations(workspace, "demo") == ({"images": [], "annotations": [], "categories": []}, "")
    assert saved_images(workspace, "demo") == []
    assert load_saved(workspace, "demo", VAL_NAMES[0], VOC) is None


def test_save_then_open_and_reopen(workspace):
    image, mask = demo_image(VAL_NAMES[0])
    version = save_image(workspace, "demo", image, mask, VOC, "", LIMIT)
    data, opened_version = open_annotations(workspace, "demo")
    assert opened_version == version and len(version) == 64
    assert [item["file_name"] for item in data["images"]] == [VAL_NAMES[0]]
    assert data["images"][0]["source"] == image["source"] and data["images"][0]["width"] == 640
    assert {category["id"] for category in data["categories"]} == {
        ids[0] for ids in VOC.class_to_categories.values()
    }
    assert data["cocoseg"]["label_map"]["name"] == "voc21"
    assert_valid_file(workspace)
    assert np.array_equal(load_saved(workspace, "demo", VAL_NAMES[0], VOC), saved_form(mask))
    rows = saved_images(workspace, "demo")
    assert (
        rows[0]["file_name"] == VAL_NAMES[0] and rows[0]["classes"] == ["car", "person"] and rows[0]["saved"]
    )


def test_a_dataset_with_a_64_character_name_can_be_saved_to(workspace):
    name = "d" * 64  # the longest name README allows; its save lock is longer
    add_dataset(workspace, name, DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    version = save(workspace, VAL_NAMES[0], "", dataset=name)
    assert open_annotations(workspace, name)[1] == version
    assert [row["file_name"] for row in saved_images(workspace, name)] == [VAL_NAMES[0]]


def test_ids_stay_unique_over_saves_and_a_resave_replaces_the_image(workspace):
    version = ""
    for name in VAL_NAMES[:3]:
        version = save(workspace, name, version)
    before = json.loads(annotations_file(workspace, "demo").read_text())
    first_id = next(image["id"] for image in before["images"] if image["file_name"] == VAL_NAMES[0])
    old_annotation_ids = {item["id"] for item in before["annotations"]}
    corrected = np.zeros((426, 640), np.uint8)
    corrected[100:200, 100:300] = 12  # a dog instead of what was there
    version = save(workspace, VAL_NAMES[0], version, mask=corrected)
    data = assert_valid_file(workspace)
    assert sorted(image["file_name"] for image in data["images"]) == sorted(VAL_NAMES[:3])
    image_ids = [image["id"] for image in data["images"]]
    annotation_ids = [item["id"] for item in data["annotations"]]
    assert len(set(image_ids)) == len(image_ids) and len(set(annotation_ids)) == len(annotation_ids)
    new = next(image for image in data["images"] if image["file_name"] == VAL_NAMES[0])
    assert new["id"] > max(image_ids[:-1]) and new["id"] != first_id  # never reused
    resaved = [item for item in data["annotations"] if item["image_id"] == new["id"]]
    assert [item["category_id"] for item in resaved] == [18]  # voc21 dog = COCO 18
    assert not {item["id"] for item in resaved} & old_annotation_ids
    assert np.array_equal(load_saved(workspace, "demo", VAL_NAMES[0], VOC), corrected)
    assert saved_images(workspace, "demo")[0]["file_name"] == VAL_NAMES[0]  # newest first


def test_stale_version_is_a_conflict_and_writes_nothing(workspace):
    first = save(workspace, VAL_NAMES[0], "")
    second = save(workspace, VAL_NAMES[1], first)
    before = annotations_file(workspace, "demo").read_bytes()
    for stale in ("", first):
        with pytest.raises(VersionConflict, match="changed since you opened it: reload"):
            save(workspace, VAL_NAMES[2], stale)
    assert annotations_file(workspace, "demo").read_bytes() == before
    assert isinstance(VersionConflict(), AnnotationError)
    assert save(workspace, VAL_NAMES[2], second)


def test_another_label_map_is_refused(workspace):
    version = save(workspace, VAL_NAMES[0], "")
    before = annotations_file(workspace, "demo").read_bytes()
    image, mask = demo_image(VAL_NAMES[1])
    with pytest.raises(AnnotationError, match="use label map voc21 .* not coco80"):
        save_image(
            workspace, "demo", image, np.where(mask == 255, 0, 1).astype(np.uint8), COCO80, version, LIMIT
        )
    with pytest.raises(AnnotationError, match="use label map voc21"):
        load_saved(workspace, "demo", VAL_NAMES[0], COCO80)
    assert annotations_file(workspace, "demo").read_bytes() == before


@pytest.mark.parametrize(
    "change, message",
    [
        ({"source": "relative/000000532481.jpg"}, "absolute path"),
        ({"source": "/nowhere/000000532481.jpg"}, "does not exist"),
        ({"source": str(DEMO_VAL_JSON)}, "neither an image of a registered dataset"),
        ({"source": "NOT-AN-IMAGE"}, "cannot be read"),
        ({"width": 641}, "is 640x426, not 641x426"),
        ({"width": "640"}, "whole numbers"),
        ({"file_name": "../../etc/passwd"}, "climbs out"),
        ({"file_name": "/etc/passwd"}, "absolute"),
    ],
)
def test_bad_image_descriptions_are_refused(workspace, change, message):
    image, mask = demo_image(VAL_NAMES[0])
    if change.get("source") == "NOT-AN-IMAGE":  # text named .jpg, in the workspace's upload folder
        fake = workspace.annotations_dir / "uploads-images" / "fake.jpg"
        fake.parent.mkdir(parents=True)
        fake.write_text("<html>not a picture</html>")
        change = {"source": str(fake)}
    with pytest.raises(AnnotationError, match=message):
        save_image(workspace, "demo", {**image, **change}, mask, VOC, "", LIMIT)
    assert not annotations_file(workspace, "demo").exists()


def test_pictures_outside_registered_datasets_and_the_workspace_are_refused(workspace, tmp_path):
    image, mask = demo_image(VAL_NAMES[0])
    stray = tmp_path / VAL_NAMES[0]
    shutil.copy(image["source"], stray)
    with pytest.raises(AnnotationError, match="neither an image of a registered dataset nor an upload"):
        save_image(workspace, "demo", {**image, "source": str(stray)}, mask, VOC, "", LIMIT)


def test_bad_masks_and_names_are_refused(workspace):
    image, mask = demo_image(VAL_NAMES[0])
    for bad_mask, message in (
        (mask[:-1], "mask is 640x425"),
        (np.zeros_like(mask), "nothing to save"),
        (mask.astype(np.int32), "uint8"),
        (np.full_like(mask, 40), "class 40"),
    ):
        with pytest.raises(AnnotationError, match=message):
            save_image(workspace, "demo", image, bad_mask, VOC, "", LIMIT)
    with pytest.raises(AnnotationError, match="not allowed"):
        save_image(workspace, "../demo", image, mask, VOC, "", LIMIT)
    assert not workspace.annotations_dir.exists() or not list(workspace.annotations_dir.iterdir())


def _save_an_upload(workspace):
    """A demo picture saved as an upload kept in the workspace; its version and the uploads folder."""
    image, mask = demo_image(VAL_NAMES[0])
    uploads = workspace.annotations_dir / "uploads-images"
    uploads.mkdir(parents=True)
    shutil.copy(image["source"], uploads / "upload-abc.png")
    kept = {**image, "file_name": "upload-abc.png", "source": str(uploads / "upload-abc.png")}
    return save_image(workspace, "uploads", kept, mask, VOC, "", LIMIT), uploads


def test_an_upload_kept_in_the_workspace_can_be_saved(workspace):
    version, _uploads = _save_an_upload(workspace)
    assert version and saved_images(workspace, "uploads")[0]["file_name"] == "upload-abc.png"


def test_validation_failure_writes_nothing(workspace):
    save(workspace, VAL_NAMES[0], "")
    path = annotations_file(workspace, "demo")
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 999  # a hand edit the validator refuses
    path.write_text(json.dumps(data))
    edited = path.read_bytes()
    _data, version = open_annotations(workspace, "demo")
    with pytest.raises(AnnotationError, match="would not be valid COCO \\(unknown-category"):
        save(workspace, VAL_NAMES[1], version)
    assert path.read_bytes() == edited


def test_file_above_the_size_limit_is_not_written(workspace):
    version = save(workspace, VAL_NAMES[0], "")
    before = annotations_file(workspace, "demo").read_bytes()
    with pytest.raises(AnnotationError, match="above the .* MB limit; nothing was saved"):
        save(workspace, VAL_NAMES[1], version, max_bytes=len(before) + 10)
    assert annotations_file(workspace, "demo").read_bytes() == before


def test_damaged_file_is_reported(workspace):
    path = annotations_file(workspace, "demo")
    path.parent.mkdir(parents=True)
    path.write_text('{"images": [')
    with pytest.raises(AnnotationError, match="is damaged"):
        open_annotations(workspace, "demo")


# --- concurrency ---------------------------------------------------------------------------------


def save_with_retries(workspace_root: str, names: list[str], results=None) -> int:
    """Save each image, reopening after a conflict as the page's "reload" does; returns conflicts seen."""
    workspace = Workspace(Path(workspace_root))
    conflicts = 0
    for name in names:
        while True:
            _data, version = open_annotations(workspace, "demo")
            try:
                save(workspace, name, version)
                break
            except VersionConflict:
                conflicts += 1
    if results is not None:
        results.put(conflicts)
    return conflicts


def save_after_barrier(workspace_root: str, name: str, version: str, barrier, results) -> None:
    """Open-then-save race: both savers hold the same version when they save."""
    barrier.wait()
    try:
        save(Workspace(Path(workspace_root)), name, version)
        results.put("saved")
    except VersionConflict:
        results.put("conflict")


def test_two_threads_never_lose_a_save(workspace):
    version = save(workspace, VAL_NAMES[0], "")
    for round_number in range(3):
        barrier = threading.Barrier(2)
        results: list[str] = []

        class Sink:
            put = results.append

        threads = [
            threading.Thread(
                target=save_after_barrier, args=(str(workspace.root), name, version, barrier, Sink)
            )
            for name in VAL_NAMES[1:3]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == ["conflict", "saved"], round_number
        _data, version = open_annotations(workspace, "demo")
    threads = [
        threading.Thread(target=save_with_retries, args=(str(workspace.root), list(names)))
        for names in (VAL_NAMES[:2], VAL_NAMES[2:])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    data = assert_valid_file(workspace)
    assert sorted(image["file_name"] for image in data["images"]) == sorted(VAL_NAMES)


def test_two_processes_keep_both_saves_or_get_the_conflict(workspace):
    version = save(workspace, VAL_NAMES[0], "")
    barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
    racers = [
        SPAWN.Process(target=save_after_barrier, args=(str(workspace.root), name, version, barrier, results))
        for name in VAL_NAMES[1:3]
    ]
    for racer in racers:
        racer.start()
    outcomes = sorted(results.get(timeout=120) for _racer in racers)
    for racer in racers:
        racer.join(60)
    assert outcomes == ["conflict", "saved"]

    path = annotations_file(workspace, "demo")
    torn: list[str] = []
    stop = threading.Event()

    def read_while_writing():
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                text = path.read_text()
                try:
                    json.loads(text)
                except ValueError:
                    torn.append(text[-80:])

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    batches = ((VAL_NAMES[1], VAL_NAMES[3]), (VAL_NAMES[2], VAL_NAMES[0]))
    writers = [
        SPAWN.Process(target=save_with_retries, args=(str(workspace.root), list(names), results))
        for names in batches
    ]
    try:
        for writer in writers:
            writer.start()
        conflicts = [results.get(timeout=240) for _writer in writers]
        for writer in writers:
            writer.join(60)
            assert writer.exitcode == 0
    finally:
        stop.set()
        reader.join()
    assert torn == []
    data = assert_valid_file(workspace)
    assert sorted(image["file_name"] for image in data["images"]) == sorted(VAL_NAMES)
    ids = [item["id"] for item in data["annotations"]]
    assert len(ids) == len(set(ids))
    saves = (
        1 + 1 + sum(len(names) for names in batches)
    )  # the first save, the race's winner, every writer's images
    assert (
        data["cocoseg"]["next_image_id"] == saves + 1
    )  # each save took one new image id (from 1): none lost, none extra
    # a save conflicts only when the other writer saved after it opened, each time a different save of the
    # other's
    assert len(conflicts) == len(batches) and all(
        0 <= count <= len(names) for count in conflicts for names in batches
    ), conflicts


# --- crashes and hostile disks ---------------------------------------------------------------


def save_and_block_before_rename(workspace_root: str, name: str, version: str, marker: str) -> None:
    """Child: save, but stop for good just before the temp file is renamed over the target."""

    def blocking_replace(source, target):
        # the marker appears whole (written aside, then renamed): the parent polls for it and reads it at
        # once, and a marker created empty and filled after made it read "" now and then
        Path(marker + ".part").write_text(str(source))
        os.rename(marker + ".part", marker)
        time.sleep(600)

    os.replace = blocking_replace
    save(Workspace(Path(workspace_root)), name, version)


def test_save_killed_between_write_and_rename_leaves_the_old_file(workspace, tmp_path):
    version = save(workspace, VAL_NAMES[0], "")
    path = annotations_file(workspace, "demo")
    before = path.read_bytes()
    marker = tmp_path / "renaming"
    child = SPAWN.Process(
        target=save_and_block_before_rename, args=(str(workspace.root), VAL_NAMES[1], version, str(marker))
    )
    child.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached the rename"
        temporary = Path(marker.read_text())
        assert temporary.parent == path.parent and temporary.name.startswith(".demo.json.")
        assert (
            json.loads(temporary.read_text())["images"][-1]["file_name"] == VAL_NAMES[1]
        )  # fully written, not renamed
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert path.read_bytes() == before
    data, opened_version = open_annotations(workspace, "demo")
    assert opened_version == version and [image["file_name"] for image in data["images"]] == [VAL_NAMES[0]]
    assert temporary.exists()  # the leftover is never read as the dataset ...
    assert save(workspace, VAL_NAMES[1], version)  # ... the lock died with the child ...
    assert not temporary.exists()  # ... and the next save clears it
    assert_valid_file(workspace)


@contextlib.contextmanager
def unwritable(folder: Path, monkeypatch):
    """Make ``folder`` refuse new files: chmod; as root (chmod is ignored) an immutable folder
    (chattr +i, refused even to root); where that is unavailable too, mkstemp is made to fail
    with EACCES as a read-only folder would (the simulation is reported in the test output)."""
    os.chmod(folder, 0o555)
    immutable = False
    try:
        probe = folder / ".probe"
        try:
            probe.write_text("x")
            probe.unlink()
            writable = True
        except OSError:
            writable = False
        if writable:
            immutable = (
                shutil.which("chattr") is not None
                and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            )
            if not immutable:
                print(
                    "running as root without chattr: simulating the read-only folder with a failing mkstemp"
                )

                def refuse(*_arguments, **_keywords):
                    raise PermissionError(errno.EACCES, "Permission denied")

                monkeypatch.setattr(tempfile, "mkstemp", refuse)
        yield
    finally:
        if immutable:
            subprocess.run([shutil.which("chattr"), "-i", str(folder)], check=True)
        os.chmod(folder, 0o755)


def test_read_only_annotations_folder_is_a_clear_error(workspace, monkeypatch):
    version = save(workspace, VAL_NAMES[0], "")
    path = annotations_file(workspace, "demo")
    before = path.read_bytes()
    with unwritable(path.parent, monkeypatch):
        with pytest.raises(
            AnnotationError,
            match="cannot save the annotations in .*(Permission denied|Operation not permitted)"
            ".*previous annotations are unchanged",
        ):
            save(workspace, VAL_NAMES[1], version)
    assert path.read_bytes() == before
    assert [item.name for item in path.parent.iterdir()] == ["demo.json"]
    assert open_annotations(workspace, "demo")[1] == version


@contextlib.contextmanager
def small_disk(tmp_path: Path, monkeypatch):
    """A real 2 MB tmpfs when this process may mount one; else writes fail with ENOSPC (simulated)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = (
        shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mount_point, mounted
    finally:
        if mounted:
            subprocess.run([shutil.which("umount") or "umount", str(mount_point)], check=True)


def test_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    with small_disk(tmp_path, monkeypatch) as (mount_point, mounted):
        workspace = Workspace(mount_point / "workspace").ensure()
        version = save(workspace, VAL_NAMES[0], "")
        path = annotations_file(workspace, "demo")
        before = path.read_bytes()
        if mounted:
            with open(mount_point / "filler", "wb") as filler, contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
        else:
            print("cannot mount a tmpfs here: simulating a full disk with an fsync that fails with ENOSPC")

            def no_space(_descriptor):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(os, "fsync", no_space)
        with pytest.raises(
            AnnotationError, match="No space left on device; the previous annotations are unchanged"
        ):
            save(workspace, VAL_NAMES[1], version)
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert [item.name for item in path.parent.iterdir()] == ["demo.json"]
        assert open_annotations(workspace, "demo")[1] == version


# --- export and feeding back into training ----------------------------------------------------------


def test_export_coco_and_png_masks(workspace, tmp_path):
    version = ""
    for name in VAL_NAMES[:2]:
        version = save(workspace, name, version)
    written = export_annotations(workspace, "demo", tmp_path / "coco", "coco")
    assert written == [tmp_path / "coco" / "demo.json"]
    assert json.loads(written[0].read_text()) == open_annotations(workspace, "demo")[0]
    written = export_annotations(workspace, "demo", tmp_path / "masks", "png-masks")
    assert sorted(path.name for path in written) == sorted(
        ["000000532481.png", "000000184324.png", "classes.json"]
    )
    for name in VAL_NAMES[:2]:
        decoded = cv2.imread(str(tmp_path / "masks" / name.replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
        assert decoded.dtype == np.uint8 and np.array_equal(decoded, load_saved(workspace, "demo", name, VOC))
        assert np.array_equal(decoded, saved_form(demo_image(name)[1]))
    assert json.loads((tmp_path / "masks" / "classes.json").read_text())["name"] == "voc21"


def test_export_refusals(workspace, tmp_path):
    with pytest.raises(AnnotationError, match="no saved annotations for demo yet"):
        export_annotations(workspace, "demo", tmp_path, "coco")
    save(workspace, VAL_NAMES[0], "")
    with pytest.raises(AnnotationError, match="unknown export format 'yolo'"):
        export_annotations(workspace, "demo", tmp_path, "yolo")
    from cocoseg.pipeline.core.settings import ASSETS_DIR

    with pytest.raises(AnnotationError, match="assets folder"):
        export_annotations(workspace, "demo", ASSETS_DIR / "exports", "png-masks")
    assert not (ASSETS_DIR / "exports").exists()


def test_register_corrections_as_a_new_dataset_that_prepare_accepts(workspace):
    version = ""
    for name in VAL_NAMES[:2]:
        version = save(workspace, name, version)
    version = save(workspace, TRAIN_NAME, version, split="train")
    registration = register_corrections(workspace, "demo", "demo-fixed", "dataset", LIMIT)
    assert isinstance(registration, Registration) and registration.images == 3 and registration.left_out == ()
    entry = get_dataset(workspace, "demo-fixed")
    images_dir = workspace.annotations_dir / "demo-images"
    assert entry.split("train").images == images_dir.resolve()
    assert sorted(path.name for path in images_dir.iterdir()) == sorted([*VAL_NAMES[:2], TRAIN_NAME])
    for labels in ("voc21", None):
        prepared = plan(workspace, PrepareConfig("demo-fixed", splits=("train",), labels=labels), LIMIT)
        assert len(prepared.splits[0].tasks) == 3 and prepared.splits[0].dataset.report.errors == 0
    loaded = load_split(entry, "train", LIMIT)
    for image in loaded.images:  # what preparation rasterises is exactly what was saved
        mask = semantic_mask(loaded.annotations_by_image[image["id"]], image["height"], image["width"], VOC)
        assert np.array_equal(mask, load_saved(workspace, "demo", image["file_name"], VOC))


def test_register_corrections_as_an_overlay_of_the_source_splits(workspace):
    corrected = np.zeros((426, 640), np.uint8)
    corrected[50:150, 200:400] = 12  # dog
    version = save(workspace, VAL_NAMES[0], "", mask=corrected)
    version = save(workspace, TRAIN_NAME, version, split="train")
    registration = register_corrections(workspace, "demo", "demo-overlay", "overlay", LIMIT)
    assert registration.images == 2 and set(registration.splits) == {"train", "val"}
    entry = get_dataset(workspace, "demo-overlay")
    assert entry.split("val").images == DEMO_VAL_IMAGES.resolve()
    prepared = plan(workspace, PrepareConfig("demo-overlay", labels="voc21"), LIMIT)
    assert [len(split.tasks) for split in prepared.splits] == [
        len(_demo("train")["images"]),
        len(_demo("val")["images"]),
    ]
    original = load_split(get_dataset(workspace, "demo"), "val", LIMIT)
    overlaid = load_split(entry, "val", LIMIT)
    image = next(item for item in overlaid.images if item["file_name"] == VAL_NAMES[0])
    annotations = overlaid.annotations_by_image[image["id"]]
    assert np.array_equal(semantic_mask(annotations, 426, 640, VOC), corrected)
    kept = sorted(item["category_id"] for item in annotations if VOC.class_of(item["category_id"]) == 0)
    assert kept == sorted(
        item["category_id"]
        for item in original.annotations_by_image[image["id"]]
        if VOC.class_of(item["category_id"]) == 0
    )
    others = [item for item in original.images if item["file_name"] != VAL_NAMES[0]]
    assert all(
        overlaid.annotations_by_image[item["id"]] == original.annotations_by_image[item["id"]]
        for item in others
    )
    assert len({item["id"] for item in overlaid.annotations}) == len(overlaid.annotations)


def test_register_refusals(workspace):
    with pytest.raises(AnnotationError, match="no saved annotations for demo yet"):
        register_corrections(workspace, "demo", "fresh", "dataset", LIMIT)
    save(workspace, VAL_NAMES[0], "")
    for name, mode, message in (
        ("demo", "dataset", "exists already"),
        ("../x", "dataset", "not allowed"),
        ("fresh", "merge", "unknown mode 'merge'"),
    ):
        with pytest.raises(AnnotationError, match=message):
            register_corrections(workspace, "demo", name, mode, LIMIT)
    _version, uploads = _save_an_upload(workspace)
    with pytest.raises(AnnotationError, match="'uploads' is not one"):
        register_corrections(workspace, "uploads", "fresh", "overlay", LIMIT)
    registration = register_corrections(
        workspace, "uploads", "fresh", "dataset", LIMIT
    )  # the pictures are already in place
    assert registration.images == 1 and (uploads / "upload-abc.png").is_file()
    assert annotation_export.REGISTERED_FOLDER in str(registration.splits["train"])
