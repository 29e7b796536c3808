"""Form fields that show a config's verdict beside the field it names.

Every config raises one ``ConfigError(field, message)``; a form maps config field names to
component ids, and ``FormFields.marks`` turns a verdict into the ``invalid`` flags of its
inputs and the text under each field (one message, beside the field at fault).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import dash_bootstrap_components as dbc
from dash import Output

from cocoseg.pipeline.core import ConfigError


@dataclasses.dataclass(frozen=True)
class FormFields:
    """Config field name -> component id.

    ``inputs`` are the fields drawn as ``dbc.Input``: only they take an ``invalid`` flag.
    """

    ids: Mapping[str, str]
    inputs: tuple[str, ...]

    def feedback(self, field: str) -> dbc.FormFeedback:
        """The message slot under a field (``d-block``: shown under dropdowns and radios too)."""
        return dbc.FormFeedback(id=f"{self.ids[field]}-feedback", type="invalid", className="d-block")

    def outputs(self, allow_duplicate: bool = False) -> list[Output]:
        """The callback outputs ``marks`` fills, in its order (``allow_duplicate`` for a second callback)."""
        return [
            Output(self.ids[name], "invalid", allow_duplicate=allow_duplicate) for name in self.inputs
        ] + [
            Output(f"{self.ids[name]}-feedback", "children", allow_duplicate=allow_duplicate)
            for name in self.ids
        ]

    def marks(self, field: str | None = None, message: str = "") -> list:
        """``invalid`` flags of the inputs, then every field's message (all clear when ``field`` is None)."""
        flags = [field == name for name in self.inputs]
        return flags + [message if field == name else "" for name in self.ids]

    def marks_for(self, error: ConfigError) -> list:
        """The marks for a config's verdict; a field the form does not show marks nothing."""
        return self.marks(error.field if error.field in self.ids else None, error.message)
