"""Links from one page into another, built in one place so the query keys match what the target reads."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from cocoseg.pipeline.annotation import LINK_KEYS


def annotate_link(dataset: str, split: str, image: str, model: str | None = None) -> str:
    """``/annotate?dataset=D&split=S&image=FILE[&model=M]``: Annotate opens that image and pre-fills it.

    Values are URL-encoded, so a file name with spaces, ``&`` or ``#`` arrives as it is.
    """
    values = dict(zip(LINK_KEYS, (dataset, split, image, model or ""), strict=True))
    return "/annotate?" + urllib.parse.urlencode({key: value for key, value in values.items() if value})


def next_in_queue(queue: list[dict] | None, current: str | None, corrected: Sequence[str]) -> str | None:
    """The link of the queue's next image after ``current`` that is not ``corrected`` (file names);
    from the top when ``current`` is not in the queue; None when nothing is left.

    ``queue`` is the Review page's ``[{"file", "link"}]`` in rank order (the app frame's ``Review.NEXT``).
    """
    entries = list(queue or [])
    names = [entry["file"] for entry in entries]
    start = names.index(current) + 1 if current in names else 0
    done = set(corrected) | {current}
    return next(
        (entry["link"] for entry in entries[start:] + entries[:start] if entry["file"] not in done), None
    )
