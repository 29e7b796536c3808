"""The one way pages say something short: a compact Bootstrap alert.

Colours follow Bootstrap: ``info`` (what happened), ``success``, ``warning`` (nothing was
done, and why), ``danger`` (it failed; the message says what to do), ``secondary``.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc

COMPACT = "py-1 px-2 mb-0"


def alert(children, colour: str = "info", dismissable: bool = False, class_name: str = "") -> dbc.Alert:
    """A compact alert; ``children`` is text or a list of components (a link, say)."""
    return dbc.Alert(
        children,
        color=colour,
        className=f"{COMPACT} {class_name}".strip(),
        dismissable=dismissable,
    )
