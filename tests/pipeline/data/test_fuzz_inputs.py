"""Fuzz replay: malformed uploads and COCO files get only the documented errors (issue 19).

A corpus of a few hundred malformed files is made from valid ones with a fixed seed
(truncation, bit flips, overwritten runs of bytes, header fields; for COCO JSON also field
mutations: keys dropped, values swapped for other types, NaN and huge numbers, deep nesting).
A separate interpreter replays it through

- ``decode_upload`` (the upload decoder): ``InvalidUpload`` or a picture, nothing else;
- ``load_coco`` (reader + validator): ``CocoFileError`` or a dataset with its report;
- ``compute_stats`` (the streaming reader ``jsonstream`` and the rasteriser): ``CocoFileError``
  or ``LabelMapError``;
- ``ObjectStream`` walked member by member: ``JsonStreamError``;

and writes one line per case, so that the test names the case behind any other exception,
a crash (the replaying process dies) or a hang (no line for ``CASE_TIMEOUT_S``).
"""

from __future__ import annotations

import copy
import io
import json
import multiprocessing
import random
import time
import traceback
from pathlib import Path

import pytest

from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON

SEED = 19
CASE_TIMEOUT_S = 120  # one case; generous for a loaded machine (cases take milliseconds)
MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4_000_000
HOSTILE_VALUES = (
    None,
    -1,
    0,
    2**63,
    1e308,
    float("nan"),
    float("inf"),
    "12",
    "",
    "../../etc/passwd",
    [],
    {},
    [[]],
    [1, 2],
    [1, 2, 3, 4],
    {"counts": "!!", "size": [2, 2]},
    {"counts": [5, -3], "size": [2, 2]},
    True,
    "<img src=x onerror=alert(1)>",
)


# --- the corpus ------------------------------------------------------------------------


def _image_seeds() -> dict[str, bytes]:
    """Small valid pictures in every accepted format, from a demo image."""
    from PIL import Image

    source = sorted(DEMO_VAL_IMAGES.iterdir())[0]
    with Image.open(source) as picture:
        small = picture.convert("RGB").resize((48, 36))
    seeds = {}
    for name, options in (
        ("JPEG", {}),
        ("PNG", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("WEBP", {}),
        ("PNG", {"bits": "palette"}),
    ):
        buffer = io.BytesIO()
        shown = small.convert("P") if options else small
        shown.save(buffer, format=name)
        seeds[f"{name.lower()}{'-palette' if options else ''}"] = buffer.getvalue()
    return seeds


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    how = rng.choice(("truncate", "flip", "overwrite", "header", "duplicate"))
    if how == "truncate":
        return bytes(data[: rng.randrange(0, len(data))])
    if how == "flip":
        for _ in range(rng.randint(1, 24)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
    elif how == "overwrite":
        start = rng.randrange(len(data))
        data[start : start + rng.randint(1, 64)] = bytes(
            rng.randrange(256) for _ in range(rng.randint(1, 64))
        )
    elif how == "header":  # dimensions and lengths live in the first bytes of every format
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(min(len(data), 64))
            data[position] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    else:
        start = rng.randrange(len(data))
        chunk = data[start : start + rng.randint(1, 256)]
        data[start:start] = chunk * rng.randint(1, 8)
    return bytes(data)


def _coco_seed() -> dict:
    """The first few demo val images with their annotations and every category: small and valid."""
    data = json.loads(DEMO_VAL_JSON.read_text())
    images = data["images"][:4]
    kept = {image["id"] for image in images}
    return {
        "info": data.get("info", {}),
        "images": images,
        "annotations": [item for item in data["annotations"] if item["image_id"] in kept],
        "categories": data["categories"],
    }


def _paths(value, path=()):
    """Every (container path) of a JSON value, for field mutations."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):
            yield from _paths(item, (*path, index))


def _mutate_fields(seed: dict, rng: random.Random) -> str:
    data = copy.deepcopy(seed)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([path for path in _paths(data) if path])
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        how = rng.choice(("replace", "replace", "delete", "nest"))
        if how == "delete":
            del parent[path[-1]]
        elif how == "nest":
            parent[path[-1]] = json.loads("[" * 64 + "1" + "]" * 64)
        else:
            parent[path[-1]] = rng.choice(HOSTILE_VALUES)
    return json.dumps(data)  # NaN and Infinity are written as JSON's unofficial literals on purpose


def _mutate_text(text: str, rng: random.Random) -> bytes:
    data = text.encode()
    how = rng.choice(("truncate", "bytes", "syntax", "wrap"))
    if how == "truncate":
        return data[: rng.randrange(0, len(data))]
    if how == "bytes":
        return _mutate_bytes(data, rng)
    if how == "syntax":
        position = rng.randrange(len(text))
        return (
            text[:position]
            + rng.choice(("}", "]", ",", '"', ":", "\x00", "\ufeff", "{" * 50))
            + text[position:]
        ).encode()
    return rng.choice(
        (b"[]", b"null", b'"text"', b"\xef\xbb\xbf" + data, data + b" trailing", b"{" * 100_000, b"")
    )


def make_corpus(folder: Path, images: int, coco_files: int) -> list[tuple[str, Path]]:
    """``images`` malformed uploads and ``coco_files`` malformed COCO files under ``folder``, seeded."""
    rng = random.Random(SEED)
    cases = []
    seeds = _image_seeds()
    for index in range(images):
        name = rng.choice(sorted(seeds))
        path = folder / f"upload-{index:03d}-{name}.bin"
        path.write_bytes(_mutate_bytes(seeds[name], rng))
        cases.append(("upload", path))
    seed = _coco_seed()
    text = json.dumps(seed)
    for index in range(coco_files):
        path = folder / f"coco-{index:03d}.json"
        path.write_bytes(_mutate_fields(seed, rng).encode() if index % 2 else _mutate_text(text, rng))
        cases.append(("coco", path))
    return cases


# --- the replay, in its own interpreter -------------------------------------------------


def _replay_upload(path: Path) -> str:
    import base64

    from cocoseg.pipeline.data.images import InvalidUpload, decode_upload

    contents = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    try:
        decode_upload(contents, path.name, MAX_BYTES, MAX_PIXELS)
    except InvalidUpload:
        return "refused"
    return "decoded"


def _replay_coco(path: Path) -> str:
    from cocoseg.pipeline.data.coco import CocoFileError, load_coco
    from cocoseg.pipeline.data.jsonstream import JsonStreamError, ObjectStream
    from cocoseg.pipeline.data.labels import LabelMapError
    from cocoseg.pipeline.data.stats import compute_stats

    outcomes = []
    try:
        load_coco(path, DEMO_VAL_IMAGES, MAX_BYTES)
        outcomes.append("loaded")
    except CocoFileError:
        outcomes.append("refused")
    try:
        compute_stats(path, MAX_BYTES)
        outcomes.append("stats")
    except (CocoFileError, LabelMapError):
        outcomes.append("refused")
    try:
        stream = ObjectStream(path.read_bytes().decode("utf-8", errors="replace"))
        for _key in stream.members():
            stream.read_value()
        outcomes.append("streamed")
    except JsonStreamError:
        outcomes.append("refused")
    return "+".join(outcomes)


def replay(cases: list[tuple[str, str]], log_path: str) -> None:
    """Replay ``cases``; one line per case: ``start`` before it, then its outcome or the exception."""
    with open(log_path, "a", encoding="utf-8") as log:
        for kind, path in cases:
            log.write(json.dumps({"start": path}) + "\n")
            log.flush()
            try:
                outcome = (_replay_upload if kind == "upload" else _replay_coco)(Path(path))
                record = {"case": path, "outcome": outcome}
            except Exception as error:  # noqa: BLE001 - what the test is looking for
                record = {
                    "case": path,
                    "error": f"{type(error).__name__}: {error}"[:300],
                    "trace": traceback.format_exc()[-1500:],
                }
            log.write(json.dumps(record) + "\n")
            log.flush()


def run_replay(cases: list[tuple[str, Path]], log_path: Path) -> list[dict]:
    """Replay in a spawned interpreter, watching for a crash or a hang; the per-case records."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=replay, args=([(kind, str(path)) for kind, path in cases], str(log_path))
    )
    log_path.touch()
    process.start()
    try:
        last_size, last_change = 0, time.monotonic()
        while process.is_alive():
            process.join(timeout=0.5)
            size = log_path.stat().st_size
            if size != last_size:
                last_size, last_change = size, time.monotonic()
            elif time.monotonic() - last_change > CASE_TIMEOUT_S:
                started = [json.loads(line) for line in log_path.read_text().splitlines()][-1]
                pytest.fail(f"a case hung for over {CASE_TIMEOUT_S} s: {started}")
    finally:
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    if process.exitcode != 0:
        pytest.fail(
            f"the replay crashed (exit code {process.exitcode}) on {records[-1] if records else 'start'}"
        )
    return [record for record in records if "start" not in record]


def _check(cases, tmp_path) -> list[dict]:
    records = run_replay(cases, tmp_path / "replay.jsonl")
    assert len(records) == len(cases), "every case replayed"
    errors = [record for record in records if "error" in record]
    assert errors == [], f"{len(errors)} case(s) raised an undocumented exception; first: {errors[0]}"
    return records


def test_a_small_corpus_replays_cleanly(tmp_path):
    """The harness itself, in seconds: a few cases of each kind."""
    cases = make_corpus(tmp_path, images=12, coco_files=12)
    records = _check(cases, tmp_path)
    assert any(record["outcome"] == "refused" for record in records)


@pytest.mark.slow
def test_a_few_hundred_malformed_uploads_and_coco_files_get_only_documented_errors(tmp_path):
    cases = make_corpus(tmp_path, images=200, coco_files=200)
    records = _check(cases, tmp_path)
    outcomes = {record["outcome"] for record in records}
    # the corpus reaches past the first check: some mutants decode, some COCO files load with a report
    assert "decoded" in outcomes and any(outcome.startswith("loaded") for outcome in outcomes)


def test_the_harness_reports_an_undocumented_exception(tmp_path):
    """A replay that meets another exception names the case (so the checks above can fail)."""
    bad = tmp_path / "upload-not-a-file"
    bad.mkdir()  # reading it raises IsADirectoryError, which decode_upload never sees
    records = run_replay([("upload", bad)], tmp_path / "replay.jsonl")
    assert len(records) == 1 and records[0]["error"].startswith("IsADirectoryError")


# --- what the fuzzing found (kept as plain regression tests) ------------------------------


def test_statistics_of_a_file_whose_categories_are_not_a_list(tmp_path):
    from cocoseg.pipeline.data.stats import compute_stats
    from tests.conftest import tiny_coco

    data = tiny_coco()
    categories = data.pop("categories")
    data["categories"] = True  # was: TypeError ('bool' object is not iterable) on the second pass,
    data["info"] = {"categories": categories}  # once the guess (the last "categories" list) was wrong
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    stats = compute_stats(path, MAX_BYTES)
    assert stats["label_map"] and "classes" in stats
