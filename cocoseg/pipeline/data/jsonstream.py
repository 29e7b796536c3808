"""Stream a JSON object's members, and its big arrays item by item.

``json.load`` of a COCO-train file builds ~2.5 GB of Python objects at once. For
statistics we only need one annotation at a time, so ``ObjectStream`` walks the
top-level object with the C scanner of the standard library (``raw_decode``), hands
out each array item, and lets it be freed before the next one is parsed. Memory
stays at the size of the text plus what the caller keeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class JsonStreamError(ValueError):
    """The text is not the expected JSON; the message gives line and column."""


def _location(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line} column {column}"


class ObjectStream:
    """Walk the members of the JSON object that ``text`` holds.

    Use ``members()`` to get each key; for its value call ``read_value()`` or iterate
    ``iter_array()``; a value left unread is parsed and dropped. ``position`` is where
    the current value starts, so an array can be revisited with ``iter_array_at``.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self._value_consumed = True

    def skip_whitespace(self, position: int) -> int:
        return _WHITESPACE.match(self.text, position).end()

    def _expect(self, position: int, characters: str) -> str:
        if position >= len(self.text):
            raise JsonStreamError(
                f"the JSON ends early ({_location(self.text, position)}): the file looks truncated"
            )
        character = self.text[position]
        if character not in characters:
            raise JsonStreamError(
                f"expected one of {characters!r} at {_location(self.text, position)}, found {character!r}"
            )
        return character

    def _decode(self, position: int) -> tuple[Any, int]:
        try:
            return _DECODER.raw_decode(self.text, position)
        except json.JSONDecodeError as error:
            raise JsonStreamError(f"{error.msg} at {_location(self.text, error.pos)}") from None
        except RecursionError:
            raise JsonStreamError(f"value nested too deeply at {_location(self.text, position)}") from None

    def members(self) -> Iterator[str]:
        """Yield each key of the top-level object, in file order."""
        position = self.skip_whitespace(0)
        if position < len(self.text) and self.text[position] != "{":
            raise JsonStreamError(
                f"the file holds a JSON {'array' if self.text[position] == '[' else 'value'}, not an object"
            )
        self._expect(position, "{")
        position = self.skip_whitespace(position + 1)
        if self._expect(position, '"}') == "}":
            self._check_end(position + 1)
            return
        while True:
            key, position = self._decode(position)
            position = self.skip_whitespace(position)
            self._expect(position, ":")
            self.position = self.skip_whitespace(position + 1)
            self._value_consumed = False
            yield key
            if not self._value_consumed:
                self.read_value()
            position = self.skip_whitespace(self.position)
            if self._expect(position, ",}") == "}":
                self._check_end(position + 1)
                return
            position = self.skip_whitespace(position + 1)

    def _check_end(self, position: int) -> None:
        position = self.skip_whitespace(position)
        if position != len(self.text):
            raise JsonStreamError(f"extra data after the JSON object at {_location(self.text, position)}")

    def read_value(self) -> Any:
        """Parse the current member's whole value."""
        value, self.position = self._decode(self.position)
        self._value_consumed = True
        return value

    def iter_array(self) -> Iterator[Any]:
        """Yield the items of the current member's value, which must be an array."""
        self._value_consumed = True
        start = self.position
        for item, end in self._items(start):
            self.position = end
            yield item

    def iter_array_at(self, start: int) -> Iterator[Any]:
        """Yield the items of the array starting at ``start`` (a remembered ``position``)."""
        for item, _end in self._items(start):
            yield item

    def _items(self, start: int) -> Iterator[tuple[Any, int]]:
        if self.text.startswith("[", start) is False:
            found = self.text[start : start + 1] or "the end of the file"
            raise JsonStreamError(f"expected an array at {_location(self.text, start)}, found {found!r}")
        position = self.skip_whitespace(start + 1)
        if self._expect(position, ']"{[-0123456789tfn') == "]":
            self.position = position + 1
            yield from ()
            return
        while True:
            item, position = self._decode(position)
            position = self.skip_whitespace(position)
            separator = self._expect(position, ",]")
            yield item, position + 1 if separator == "]" else position
            if separator == "]":
                return
            position = self.skip_whitespace(position + 1)
