"""Links from one page into another, built in one place so the query keys match what the target reads."""

from __future__ import annotations

import urllib.parse

from cocoseg.pipeline.annotation import LINK_KEYS


def annotate_link(dataset: str, split: str, image: str, model: str | None = None) -> str:
    """``/annotate?dataset=D&split=S&image=FILE[&model=M]``: Annotate opens that image and pre-fills it.

    Values are URL-encoded, so a file name with spaces, ``&`` or ``#`` arrives as it is.
    """
    values = dict(zip(LINK_KEYS, (dataset, split, image, model or ""), strict=True))
    return "/annotate?" + urllib.parse.urlencode({key: value for key, value in values.items() if value})
