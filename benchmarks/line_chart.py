"""Line charts with spread bands, drawn with OpenCV: benchmarks save figures without matplotlib.

matplotlib is not a dependency and the charts are simple (a few lines, a band each, ticks,
a legend), so a hundred lines of cv2 drawing do instead of a new install.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

# Tableau 10's first colours, as BGR for cv2.
COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK, GRID, PAPER = (40, 40, 40), (225, 225, 225), (255, 255, 255)
MARGINS = {"left": 78, "right": 20, "top": 44, "bottom": 58}


@dataclasses.dataclass(frozen=True)
class Series:
    """One line: its points and, optionally, the low and high edges of a band around it."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    lows: Sequence[float] | None = None
    highs: Sequence[float] | None = None


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in (1, 2, 5, 10) if factor * power >= raw)
    first = math.floor(low / step) * step
    return [round(first + index * step, 10) for index in range(int(math.ceil((high - first) / step)) + 1)]


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45, anchor: str = "left"):
    (width, height), _ = cv2.getTextSize(text, FONT, scale, 1)
    x, y = origin
    x -= {"left": 0, "centre": width // 2, "right": width}[anchor]
    cv2.putText(canvas, text, (x, y + height // 2), FONT, scale, INK, 1, cv2.LINE_AA)


def _emptiest_corner(points, plot: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int]:
    """The top-left of a ``size`` box in the corner of ``plot`` (left, top, right, bottom) that covers the
    fewest of ``points`` (ties: top left, top right, bottom right, bottom left), 6 px inside the frame."""
    left, top, right, bottom = plot
    width, height = size
    corners = [
        (left + 6, top + 6),
        (right - 6 - width, top + 6),
        (right - 6 - width, bottom - 6 - height),
        (left + 6, bottom - 6 - height),
    ]

    def covered(corner: tuple[int, int]) -> int:
        x0, y0 = corner
        return sum(x0 - 4 <= x <= x0 + width + 4 and y0 - 4 <= y <= y0 + height + 4 for x, y in points)

    return min(corners, key=covered)


def draw_line_chart(
    series: Sequence[Series],
    title: str,
    x_label: str,
    y_label: str,
    size: tuple[int, int] = (820, 520),
    tick_format: str = "{:g}",
) -> np.ndarray:
    """A BGR picture of the lines, their bands (translucent), axes, ticks, grid and a legend."""
    width, height = size
    canvas = np.full((height, width, 3), PAPER, np.uint8)
    left, top = MARGINS["left"], MARGINS["top"]
    right, bottom = width - MARGINS["right"], height - MARGINS["bottom"]
    xs = [x for line in series for x in line.xs]
    ys = [y for line in series for y in (*line.ys, *(line.lows or ()), *(line.highs or ()))]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))

    def point(x: float, y: float) -> tuple[int, int]:
        horizontal = left + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (right - left)
        vertical = bottom - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (bottom - top)
        return round(horizontal), round(vertical)

    for tick in x_ticks:
        x, _ = point(tick, y_ticks[0])
        cv2.line(canvas, (x, top), (x, bottom), GRID, 1)
        _text(canvas, tick_format.format(tick), (x, bottom + 14), anchor="centre")
    for tick in y_ticks:
        _, y = point(x_ticks[0], tick)
        cv2.line(canvas, (left, y), (right, y), GRID, 1)
        _text(canvas, tick_format.format(tick), (left - 8, y), anchor="right")
    cv2.rectangle(canvas, (left, top), (right, bottom), INK, 1)
    for index, line in enumerate(series):
        if line.lows is not None and line.highs is not None:
            edge = [point(x, y) for x, y in zip(line.xs, line.highs)]
            edge += [point(x, y) for x, y in reversed(list(zip(line.xs, line.lows)))]
            band = canvas.copy()
            cv2.fillPoly(band, [np.array(edge, np.int32)], COLOURS[index % len(COLOURS)], cv2.LINE_AA)
            canvas = cv2.addWeighted(band, 0.18, canvas, 0.82, 0)
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        points = np.array([point(x, y) for x, y in zip(line.xs, line.ys)], np.int32)
        cv2.polylines(canvas, [points], False, colour, 2, cv2.LINE_AA)
        for centre in points:
            cv2.circle(canvas, tuple(int(value) for value in centre), 4, colour, -1, cv2.LINE_AA)
    legend_width = max(cv2.getTextSize(line.name, FONT, 0.45, 1)[0][0] for line in series) + 50
    legend_height = 8 + 20 * len(series)
    drawn = [point(x, y) for line in series for x, y in zip(line.xs, line.ys)]
    x0, y0 = _emptiest_corner(drawn, (left, top, right, bottom), (legend_width, legend_height))
    cv2.rectangle(canvas, (x0, y0), (x0 + legend_width, y0 + legend_height), PAPER, -1)
    cv2.rectangle(canvas, (x0, y0), (x0 + legend_width, y0 + legend_height), GRID, 1)
    for index, line in enumerate(series):
        legend_y = y0 + 11 + 20 * index
        cv2.line(canvas, (x0 + 6, legend_y), (x0 + 34, legend_y), COLOURS[index % len(COLOURS)], 3)
        _text(canvas, line.name, (x0 + 42, legend_y))
    _text(canvas, title, (width // 2, top // 2), scale=0.55, anchor="centre")
    _text(canvas, x_label, ((left + right) // 2, height - 16), anchor="centre")
    (label_width, label_height), _ = cv2.getTextSize(y_label, FONT, 0.45, 1)
    label = np.full((label_height + 10, label_width + 4, 3), PAPER, np.uint8)
    _text(label, y_label, (2, label.shape[0] // 2))
    label = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
    start = max((top + bottom) // 2 - label.shape[0] // 2, 0)
    canvas[start : start + label.shape[0], 8 : 8 + label.shape[1]] = label[: height - start]
    return canvas


def save_chart(picture: np.ndarray, path: Path) -> Path:
    """Write the BGR picture as a PNG (folders made as needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")
    return path
