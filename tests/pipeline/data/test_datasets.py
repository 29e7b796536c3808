"""Dataset registry: the bundled demo, adding splits, refusing bad sources without changing anything."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cocoseg.pipeline.core.workspace import UnsafePathError, Workspace
from cocoseg.pipeline.data.registry import (
    NewSplit,
    RegistryError,
    add_dataset,
    get_dataset,
    list_datasets,
    overview,
    preflight,
    remove_dataset,
    split_report,
)
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON

LIMIT = 1024**3


def test_demo_is_registered_with_train_and_val(workspace):
    entries = list_datasets(workspace)
    assert entries[0].name == "demo" and entries[0].builtin
    assert set(entries[0].splits) == {"train", "val"}
    assert all(split.annotations.is_file() and split.images.is_dir() for split in entries[0].splits.values())


def test_add_dataset_then_second_split(workspace):
    add_dataset(workspace, "mine", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    entry = add_dataset(workspace, "mine", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="holdout", max_bytes=LIMIT)
    assert set(entry.splits) == {"val", "holdout"}
    assert get_dataset(workspace, "mine").split("val").annotations == DEMO_VAL_JSON.resolve()
    stored = json.loads(workspace.datasets_file.read_text())
    assert set(stored["datasets"]["mine"]["splits"]) == {"val", "holdout"}


def test_existing_split_needs_replace(workspace):
    add_dataset(workspace, "mine", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    with pytest.raises(RegistryError, match="--replace"):
        add_dataset(workspace, "mine", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    add_dataset(workspace, "mine", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", replace=True, max_bytes=LIMIT)


def _registry_bytes(workspace):
    return workspace.datasets_file.read_bytes() if workspace.datasets_file.exists() else None


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing-annotations", "not found"),
        ("missing-images", "image folder not found"),
        ("images-without-images", "no images"),
        ("annotations-is-list", "holds a JSON list"),
        ("empty-annotations", "empty"),
    ],
)
def test_bad_sources_change_nothing(workspace, tmp_path, case, message):
    add_dataset(workspace, "kept", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    before = _registry_bytes(workspace)
    annotations, images = DEMO_VAL_JSON, DEMO_VAL_IMAGES
    if case == "missing-annotations":
        annotations = tmp_path / "nope.json"
    elif case == "missing-images":
        images = tmp_path / "no-folder"
    elif case == "images-without-images":
        images = tmp_path / "texts"
        images.mkdir()
        (images / "readme.txt").write_text("no pictures here")
    elif case == "annotations-is-list":
        annotations = tmp_path / "list.json"
        annotations.write_text("[1, 2]")
    elif case == "empty-annotations":
        annotations = tmp_path / "empty.json"
        annotations.write_text("")
    with pytest.raises(RegistryError, match=message):
        add_dataset(workspace, "broken", annotations, images, max_bytes=LIMIT)
    assert _registry_bytes(workspace) == before


@pytest.mark.parametrize("name", ["../evil", "a/b", "demo", "", "a\x00b"])
def test_bad_names_are_refused(workspace, name):
    with pytest.raises((RegistryError, UnsafePathError)):
        add_dataset(workspace, name, DEMO_VAL_JSON, DEMO_VAL_IMAGES, max_bytes=LIMIT)
    assert not workspace.datasets_file.exists()


def test_unknown_dataset_lists_known(workspace):
    with pytest.raises(RegistryError, match="registered: demo"):
        get_dataset(workspace, "missing")
    with pytest.raises(RegistryError, match="has no split 'test'"):
        get_dataset(workspace, "demo").split("test")


def test_demo_cannot_be_removed_and_user_dataset_can(workspace):
    with pytest.raises(RegistryError):
        remove_dataset(workspace, "demo")
    add_dataset(workspace, "mine", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    remove_dataset(workspace, "mine")
    assert [entry.name for entry in list_datasets(workspace)] == ["demo"]


def test_split_report_is_cached_and_invalidated_by_content(workspace, tmp_path):
    annotations = tmp_path / "val.json"
    shutil.copy(DEMO_VAL_JSON, annotations)
    entry = add_dataset(workspace, "copy", annotations, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    assert split_report(workspace, entry, "val", LIMIT, compute=False) is None
    report = split_report(workspace, entry, "val", LIMIT)
    assert report.errors == 0 and report.totals["annotations"] == 815
    assert split_report(workspace, entry, "val", LIMIT, compute=False).totals == report.totals
    data = json.loads(annotations.read_text())
    data["annotations"][0]["category_id"] = 999
    annotations.write_text(json.dumps(data))
    assert split_report(workspace, entry, "val", LIMIT, compute=False) is None
    assert split_report(workspace, entry, "val", LIMIT).counts["unknown-category"] == 1


def test_overview_rows_for_demo_and_unreadable(workspace, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    images = tmp_path / "imgs"
    images.mkdir()
    shutil.copy(next(DEMO_VAL_IMAGES.iterdir()), images)
    add_dataset(workspace, "broken", broken, images, max_bytes=LIMIT, check=False)
    rows = {(row["dataset"], row["split"]): row for row in overview(workspace, LIMIT)}
    assert rows[("demo", "val")]["images"] == 80 and rows[("demo", "val")]["status"] == "ok"
    assert rows[("demo", "train")]["annotations"] == 705
    assert rows[("broken", "train")]["status"] == "unreadable"
    assert "not valid JSON" in rows[("broken", "train")]["message"]


def test_data_roots_refuse_paths_outside_them_naming_the_roots(workspace, tmp_path):
    from cocoseg.pipeline.data.registry import NewSplit, check_data_roots, preflight

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    shutil.copy(next(DEMO_VAL_IMAGES.iterdir()), root / "images")
    shutil.copy(DEMO_VAL_JSON, root / "val.json")
    (root / "escape").symlink_to(DEMO_VAL_IMAGES)  # a link out of the root counts as outside
    before = _registry_bytes(workspace)
    with pytest.raises(RegistryError, match=str(root)) as refused:
        add_dataset(workspace, "mine", DEMO_VAL_JSON, root / "images", max_bytes=LIMIT, roots=(root,))
    assert refused.value.field == "annotations"
    with pytest.raises(RegistryError) as refused:
        preflight(workspace, NewSplit("mine", root / "val.json", root / "escape"), roots=(root.resolve(),))
    assert refused.value.field == "images" and "COCOSEG_DATA_ROOTS" in str(refused.value)
    with pytest.raises(RegistryError, match="none configured"):
        check_data_roots({"images": root}, ())
    assert _registry_bytes(workspace) == before
    check_data_roots({"images": root / "images"}, None)  # no roots asked for: anything goes
    add_dataset(
        workspace, "mine", root / "val.json", root / "images", max_bytes=LIMIT, roots=(root.resolve(),)
    )
    assert "mine" in [entry.name for entry in list_datasets(workspace)]


def test_bad_requests_name_the_field_at_fault(workspace, tmp_path):
    from cocoseg.pipeline.data.registry import NewSplit, preflight

    empty = tmp_path / "empty"
    empty.mkdir()
    add_dataset(workspace, "taken", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    cases = [
        (("taken", DEMO_VAL_JSON, DEMO_VAL_IMAGES, "val"), "name", "already has"),
        (("mine", tmp_path / "nope.json", DEMO_VAL_IMAGES, "val"), "annotations", "not found"),
        (("mine", DEMO_VAL_JSON, empty, "val"), "images", "no images"),
        (("mine", DEMO_VAL_JSON, tmp_path / "nowhere", "val"), "images", "not found"),
        (("mine", "", DEMO_VAL_IMAGES, "val"), "annotations", "give the annotation file"),
    ]
    for (name, source, images, split), field, message in cases:
        with pytest.raises(RegistryError, match=message) as refused:
            preflight(workspace, NewSplit(name, source, images, split))
        assert refused.value.field == field


def _refusals_as(uid: int | None, home: Path, cases: list[tuple[Path, Path]]) -> list:
    """``preflight``'s refusal (field, message) for each (annotations, images), checked in a forked child
    that runs as ``uid`` (None: as this user); the answers come back through a pipe."""
    from cocoseg.pipeline.data import coco, jsonstream  # noqa: F401 - imported before the child drops root

    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(reading)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            answers = []
            for annotations, images in cases:
                try:
                    preflight(Workspace(home), NewSplit("mine", annotations, images, "val"), LIMIT)
                    answers.append(None)
                except RegistryError as error:
                    answers.append([error.field, str(error)])
            os.write(writing, json.dumps(answers).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and payload, "the child could not check"
    return json.loads(payload)


def test_unreadable_paths_are_refused_beside_their_field():
    """Permissions as a user meets them: when the suite runs as root (which reads everything) the check
    runs in a child that has become ``nobody``."""
    base = Path(tempfile.mkdtemp(prefix="cocoseg-unreadable-", dir="/tmp"))
    try:
        base.chmod(0o755)
        home, images, readable_images = base / "home", base / "images", base / "readable"
        for folder in (home, images, readable_images):
            folder.mkdir()
            shutil.copy(next(DEMO_VAL_IMAGES.iterdir()), folder)
            folder.chmod(0o755)
        home.chmod(0o777)
        annotations, readable = base / "locked.json", base / "open.json"
        shutil.copy(DEMO_VAL_JSON, annotations)
        shutil.copy(DEMO_VAL_JSON, readable)
        readable.chmod(0o644)
        annotations.chmod(0o000)
        images.chmod(0o000)
        uid = 65534 if os.geteuid() == 0 else None
        file_answer, folder_answer = _refusals_as(
            uid, home, [(annotations, readable_images), (readable, images)]
        )
        assert file_answer[0] == "annotations" and "not readable (permissions)" in file_answer[1]
        assert folder_answer[0] == "images" and "cannot read image folder" in folder_answer[1]
        assert "Permission denied" in folder_answer[1]
    finally:
        for path in (base / "locked.json", base / "images"):
            if path.exists():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_two_requests_missing_the_same_split_at_once_parse_it_once(workspace, monkeypatch):
    """Two tabs opening a COCO-scale split together must not hold two parsed copies (gigabytes)."""
    import threading

    from cocoseg.pipeline.data import registry

    second_request, parses = threading.Event(), []

    class WatchedLock:
        """The split's parse lock, saying when a second request waits on it."""

        def __init__(self):
            self.lock = threading.Lock()

        def __enter__(self):
            if not self.lock.acquire(blocking=False):
                second_request.set()
                self.lock.acquire()

        def __exit__(self, *_exception):
            self.lock.release()

    load = registry.load_coco

    def held_load(*arguments):
        parses.append(arguments[0])
        if len(parses) > 1:
            second_request.set()  # the second request parses beside the first: what must not happen
        second_request.wait(60)  # a hang guard: the first parse goes on once the second request is seen
        return load(*arguments)

    source = get_dataset(workspace, "demo").split("val")
    monkeypatch.setitem(registry._parsing._locks, str(source.annotations), WatchedLock())
    monkeypatch.setattr(registry, "load_coco", held_load)
    registry._cached_coco.cache_clear()
    results = []

    def open_split():
        results.append(registry.cached_split(workspace, "demo", "val", LIMIT))

    requests = [threading.Thread(target=open_split) for _ in range(2)]
    for request in requests:
        request.start()
    for request in requests:
        request.join(120)
    registry._cached_coco.cache_clear()
    assert len(results) == 2 and len(parses) == 1 and results[0] is results[1]
