"""The two types that ``cocoseg.pipeline.annotation.strokes`` and ``cocoseg.pipeline.annotation.canvas`` share.

Kept apart so that the drawing code needs nothing from ``cocoseg.pipeline.annotation.strokes`` (which
builds on it); the rest of the project imports both names from ``cocoseg.pipeline.annotation.strokes``.
"""

from __future__ import annotations

import dataclasses

MAX_SIDE = 100_000


class AnnotationError(ValueError):
    """A drawing or mask that cannot become annotations; the message is shown as is."""


@dataclasses.dataclass(frozen=True)
class CanvasGeometry:
    """How the canvas shows the picture: scaled to fit ``canvas_width`` (strokes are canvas pixels)."""

    image_width: int
    image_height: int
    canvas_width: int
    canvas_height: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or not 0 < value <= MAX_SIDE:
                raise AnnotationError(
                    f"canvas geometry: {field.name} must be a whole number of pixels between 1 and {MAX_SIDE}, got {value!r}"
                )

    @property
    def scale(self) -> float:
        """Picture pixels per canvas pixel."""
        return self.image_width / self.canvas_width
