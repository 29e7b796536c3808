"""Streaming JSON reader used by the statistics."""

from __future__ import annotations

import json

import pytest

from cocoseg.pipeline.data.jsonstream import JsonStreamError, ObjectStream


def _walk(text: str) -> dict:
    stream = ObjectStream(text)
    result = {}
    for key in stream.members():
        if key.startswith("list"):
            result[key] = list(stream.iter_array())
        elif key.startswith("read"):
            result[key] = stream.read_value()
        # other keys are left unread: the stream must skip them
    return result


def test_members_arrays_and_skipped_values():
    payload = {
        "skip": {"a": [1, {"b": "]}"}]},
        "list1": [{"x": 1}, [2, 3], 's"]', None],
        "read": {"k": [1]},
        "list2": [],
    }
    assert _walk(json.dumps(payload, indent=2)) == {
        "list1": payload["list1"],
        "read": payload["read"],
        "list2": [],
    }


def test_iter_array_at_revisits_an_array():
    text = json.dumps({"annotations": [1, 2, 3], "images": [4]})
    stream = ObjectStream(text)
    position = None
    for key in stream.members():
        if key == "annotations":
            position = stream.position
            assert list(stream.iter_array()) == [1, 2, 3]
    assert list(stream.iter_array_at(position)) == [1, 2, 3]


def test_empty_object():
    assert _walk(" {} ") == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ('[{"a": 1}]', "not an object"),
        ('{"list": [1, 2', "truncated|ends early"),
        ('{"list": [1, 2]', "truncated|ends early"),
        ('{"a": 1} trailing', "extra data"),
        ('{"list": [1 2]}', "expected"),
        ('{"read": nope}', "line 1"),
        ('{"list": {"a": 1}}', "expected an array"),
    ],
)
def test_errors_name_the_place(text, message):
    with pytest.raises(JsonStreamError, match=message):
        _walk(text)
