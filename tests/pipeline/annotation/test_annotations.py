"""Canvas strokes -> class masks -> COCO annotations and back (cocoseg.pipeline.annotation.strokes).

Pixel rule: a picture pixel j spans [j, j+1) and is painted when its centre j + 0.5
lies inside the shape; canvas coordinates are multiplied by ``geometry.scale``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as strategies
from hypothesis.extra import numpy as numpy_strategies
from pycocotools import mask as coco_mask

from cocoseg.pipeline.annotation.strokes import (
    ERASER_COLOUR,
    AnnotationError,
    CanvasGeometry,
    annotations_to_mask,
    class_colours,
    mask_to_annotations,
    parse_colour,
    strokes_to_mask,
)
from cocoseg.pipeline.data.labels import build_label_map, is_coco_compatible
from cocoseg.pipeline.data.rendering import coco_categories

VOC = build_label_map("voc21")
COLOURS = class_colours(VOC)
AEROPLANE = "#800000"  # voc21 class 1
BICYCLE = "rgb(0, 128, 0)"  # voc21 class 2
BIRD = "#808000"  # voc21 class 3

# Real dash-canvas json_data (dash-canvas 0.1.0, fabric.js, Chromium 2026-11): a 640x426 demo val
# picture (000000532481.jpg) on a DashCanvas(width=400); the mouse drew, in canvas pixels, a pencil
# stroke (50,60)->(150,60) width 12 in #800000, a pencil stroke (200,100)->(250,150) width 6 in
# rgb(0, 128, 0), a rectangle dragged (60,150)->(120,200) and a line (300,40)->(350,90), then the
# canvas's Save button was clicked. Only the picture's data URL was shortened. The second capture
# drew the same mouse strokes after one click on the canvas's "Zoom in" button (the view x1.25, so the
# picture's scale became 0.78).
REAL_CANVAS_JSON = (
    '{"objects":[{"type":"image","originX":"left","originY":"top","left":0,"top":0,"width":640,"height":426,"fill":'
    '"rgb(0,0,0)","stroke":null,"strokeWidth":0,"strokeDashArray":null,"strokeLineCap":"butt","strokeLineJoin":"mit'
    'er","strokeMiterLimit":10,"scaleX":0.62,"scaleY":0.62,"angle":0,"flipX":false,"flipY":false,"opacity":1,"shado'
    'w":null,"visible":true,"clipTo":null,"backgroundColor":"","fillRule":"nonzero","globalCompositeOperation":"sou'
    'rce-over","transformMatrix":null,"skewX":0,"skewY":0,"crossOrigin":"","alignX":"none","alignY":"none","meetOrS'
    'lice":"meet","src":"data:image/jpeg;base64,REMOVED-640x426-JPEG-of-val2017-000000532481","filters":[],"resizeF'
    'ilters":[]},{"type":"path","originX":"left","originY":"top","left":43.988,"top":54,"width":100.02,"height":0,"'
    'fill":null,"stroke":"#800000","strokeWidth":12,"strokeDashArray":null,"strokeLineCap":"round","strokeLineJoin"'
    ':"round","strokeMiterLimit":10,"scaleX":1,"scaleY":1,"angle":0,"flipX":false,"flipY":false,"opacity":1,"shadow'
    '":null,"visible":true,"clipTo":null,"backgroundColor":"","fillRule":"nonzero","globalCompositeOperation":"sour'
    'ce-over","transformMatrix":null,"skewX":0,"skewY":0,"pathOffset":{"x":100,"y":60},"path":[["M",49.988,60],["Q"'
    ',50,60,56,60],["Q",62,60,68.5,60],["Q",75,60,81,60],["Q",87,60,93.5,60],["Q",100,60,106,60],["Q",112,60,118.5,'
    '60],["Q",125,60,131,60],["Q",137,60,143.5,60],["L",150.012,60]]},{"type":"path","originX":"left","originY":"to'
    'p","left":196.994,"top":96.994,"width":50.01,"height":50.01,"fill":null,"stroke":"rgb(0, 128, 0)",'
    '"strokeWidth'
    '":6,"strokeDashArray":null,"strokeLineCap":"round","strokeLineJoin":"round","strokeMiterLimit":10,"scaleX":1,"'
    'scaleY":1,"angle":0,"flipX":false,"flipY":false,"opacity":1,"shadow":null,"visible":true,"clipTo":null,"backgr'
    'oundColor":"","fillRule":"nonzero","globalCompositeOperation":"source-over","transformMatrix":null,"skewX":0,"'
    'skewY":0,"pathOffset":{"x":225,"y":125},"path":[["M",199.994,99.994],["Q",200,100,206,106],["Q",212,112,218.5,'
    '118.5],["Q",225,125,231,131],["Q",237,137,243.5,143.5],["L",250.006,150.006]]},{"type":"rect","originX":"left"'
    ',"originY":"top","left":60,"top":150,"width":60,"height":50,"fill":"transparent",'
    '"stroke":"rgb(0, 128, 0)","st'
    'rokeWidth":6,"strokeDashArray":null,"strokeLineCap":"butt","strokeLineJoin":"miter","strokeMiterLimit":10,"sca'
    'leX":1,"scaleY":1,"angle":0,"flipX":false,"flipY":false,"opacity":1,"shadow":null,"visible":true,"clipTo":null'
    ',"backgroundColor":"","fillRule":"nonzero","globalCompositeOperation":"source-over","transformMatrix":null,"sk'
    'ewX":0,"skewY":0,"rx":0,"ry":0},{"type":"line","originX":"center","originY":"center","left":325,"top":65,"widt'
    'h":50,"height":50,"fill":"rgb(0, 128, 0)","stroke":"rgb(0, 128, 0)","strokeWidth":6,'
    '"strokeDashArray":null,"st'
    'rokeLineCap":"butt","strokeLineJoin":"miter","strokeMiterLimit":10,"scaleX":1,"scaleY":1,"angle":0,"flipX":fal'
    'se,"flipY":false,"opacity":1,"shadow":null,"visible":true,"clipTo":null,"backgroundColor":"","fillRule":"nonze'
    'ro","globalCompositeOperation":"source-over","transformMatrix":null,"skewX":0,"skewY":0,"x1":-25,"x2":25,"y1":'
    '-25,"y2":25}]}'
)

# the zoomed capture differed from the first in one place only: the picture's scale
# (0.62 -> 0.78); the strokes keep their canvas coordinates and scale 1 (compared byte for byte
# when it was recorded), so it is written here as that one replacement
REAL_ZOOMED_CANVAS_JSON = REAL_CANVAS_JSON.replace(
    '"scaleX":0.62,"scaleY":0.62', '"scaleX":0.78,"scaleY":0.78', 1
)
assert REAL_ZOOMED_CANVAS_JSON != REAL_CANVAS_JSON
REAL_GEOMETRY = CanvasGeometry(image_width=640, image_height=426, canvas_width=400, canvas_height=266)


def canvas(*objects, picture: dict | None = None) -> str:
    """fabric JSON text as dash-canvas sends it."""
    return json.dumps({"objects": ([picture] if picture else []) + list(objects)})


def pencil(points, colour=AEROPLANE, width=6.0) -> dict:
    """A free-drawing path as fabric writes it: absolute points, pathOffset = their box centre."""
    xs, ys = [x for x, _y in points], [y for _x, y in points]
    commands = [["M", *points[0]]] + [["L", *point] for point in points[1:]]
    return {
        "type": "path",
        "originX": "left",
        "originY": "top",
        "left": min(xs) - width / 2,
        "top": min(ys) - width / 2,
        "width": max(xs) - min(xs),
        "height": max(ys) - min(ys),
        "stroke": colour,
        "strokeWidth": width,
        "fill": None,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "pathOffset": {"x": (min(xs) + max(xs)) / 2, "y": (min(ys) + max(ys)) / 2},
        "path": commands,
    }


def rectangle(left, top, width, height, fill=BICYCLE, stroke=None, stroke_width=0) -> dict:
    return {
        "type": "rect",
        "originX": "left",
        "originY": "top",
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "fill": fill,
        "stroke": stroke,
        "strokeWidth": stroke_width,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }


def line(start, end, colour=BIRD, width=2) -> dict:
    """A fabric line: centred origin, x1..y2 relative to the centre (as fabric 2 writes them)."""
    centre = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    return {
        "type": "line",
        "originX": "center",
        "originY": "center",
        "left": centre[0],
        "top": centre[1],
        "width": abs(end[0] - start[0]),
        "height": abs(end[1] - start[1]),
        "stroke": colour,
        "fill": colour,
        "strokeWidth": width,
        "x1": start[0] - centre[0],
        "y1": start[1] - centre[1],
        "x2": end[0] - centre[0],
        "y2": end[1] - centre[1],
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }


def rows_and_columns(mask, value):
    ys, xs = np.nonzero(mask == value)
    return sorted(set(ys.tolist())), (int(xs.min()), int(xs.max()))


# --- colours and geometry ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("#800000", "#800000"),
        ("#ABCDEF", "#abcdef"),
        ("  #abc ", "#aabbcc"),
        ("rgb(0, 128, 0)", "#008000"),
        ("RGB( 0,128 ,0 )", "#008000"),
        ("rgba(128, 0, 0, 0.5)", "#800000"),
        ("rgba(1,2,3,1)", "#010203"),
        ("rgb(127.6, 0, 0)", "#800000"),
    ],
)
def test_parse_colour_accepts_css_forms(text, expected):
    assert parse_colour(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "red",
        "#12345",
        "#1234567",
        "rgb(1, 2)",
        "rgb(256, 0, 0)",
        "rgba(1, 2, 3)",
        "rgb(1,2,3,0.5)",
        "rgb(-1, 0, 0)",
        "rgba(1, 2, 3, 2)",
        "",
        None,
        128,
        "#gggggg",
        "x" * 500,
    ],
)
def test_parse_colour_refuses_the_rest(text):
    with pytest.raises(AnnotationError, match="not a colour"):
        parse_colour(text)


def test_class_colours_cover_every_class_and_the_eraser():
    assert COLOURS["#000000"] == 0 and COLOURS[ERASER_COLOUR] == 0
    assert COLOURS[AEROPLANE] == 1 and COLOURS["#008000"] == 2 and COLOURS[BIRD] == 3
    assert len(COLOURS) == VOC.num_classes + 1
    assert sorted(set(COLOURS.values())) == list(range(VOC.num_classes))


def test_geometry_is_validated_and_scales_by_width():
    assert CanvasGeometry(1000, 500, 400, 200).scale == 2.5
    for bad in (
        (0, 10, 10, 10),
        (10, 10, -1, 10),
        (10.0, 10, 10, 10),
        (True, 10, 10, 10),
        (10, 10, 10, 10**9),
    ):
        with pytest.raises(AnnotationError, match="canvas geometry"):
            CanvasGeometry(*bad)


# --- hand-written strokes --------------------------------------------------------------


def test_horizontal_pencil_stroke_at_scale_one():
    geometry = CanvasGeometry(80, 40, 80, 40)
    mask = strokes_to_mask(canvas(pencil([(10, 20), (30, 20), (50, 20)], width=6)), geometry, COLOURS)
    assert mask.dtype == np.uint8 and mask.shape == (40, 80)
    rows, (first, last) = rows_and_columns(mask, 1)
    assert rows == list(range(17, 23))  # centres 17.5..22.5 lie within 3 of y=20
    assert (first, last) == (7, 52)  # round caps reach 3 px beyond both ends
    assert (mask[17:23, 10:50] == 1).all()
    assert set(np.unique(mask)) == {0, 1}


def test_horizontal_pencil_stroke_at_scale_two_and_a_half():
    geometry = CanvasGeometry(250, 100, 100, 40)  # canvas pixel -> 2.5 picture pixels
    mask = strokes_to_mask(canvas(pencil([(10, 20), (50, 20)], width=4)), geometry, COLOURS)
    rows, (first, last) = rows_and_columns(mask, 1)
    assert rows == list(range(45, 55))  # y=50 +- 5 (half of 4 x 2.5)
    assert (first, last) == (20, 129)  # x 25..125 +- 5
    assert (mask[45:55, 25:125] == 1).all()


def test_rectangle_fills_its_area_at_both_scales():
    for scale, geometry in ((1, CanvasGeometry(100, 80, 100, 80)), (2.5, CanvasGeometry(250, 200, 100, 80))):
        mask = strokes_to_mask(canvas(rectangle(30, 40, 20, 10)), geometry, COLOURS)
        expected = np.zeros_like(mask)
        expected[int(40 * scale) : int(50 * scale), int(30 * scale) : int(50 * scale)] = 2
        assert np.array_equal(mask, expected), scale


def test_rectangle_with_transparent_fill_takes_its_stroke_colour_and_width():
    # fabric's box is width + strokeWidth wide, placed at left/top: [30, 52] x [40, 52]
    mask = strokes_to_mask(
        canvas(rectangle(30, 40, 20, 10, fill="transparent", stroke=BIRD, stroke_width=2)),
        CanvasGeometry(100, 80, 100, 80),
        COLOURS,
    )
    expected = np.zeros_like(mask)
    expected[40:52, 30:52] = 3
    assert np.array_equal(mask, expected)


def test_rectangle_rim_in_another_class_is_painted_over_the_fill():
    mask = strokes_to_mask(
        canvas(rectangle(10, 10, 20, 20, fill=BICYCLE, stroke=BIRD, stroke_width=4)),
        CanvasGeometry(60, 60, 60, 60),
        COLOURS,
    )
    # box [10, 34]: fill covers [12, 32], the rim +-2 around x=12/32 and y=12/32
    assert mask[22, 22] == 2 and mask[10, 22] == 3 and mask[22, 33] == 3 and mask[22, 16] == 2
    assert mask[9, 22] == 0 and mask[22, 34] == 0


def test_line_at_both_scales():
    for scale, geometry in ((1, CanvasGeometry(100, 60, 100, 60)), (2.5, CanvasGeometry(250, 150, 100, 60))):
        mask = strokes_to_mask(canvas(line((20, 30), (80, 30), width=4)), geometry, COLOURS)
        rows, (first, last) = rows_and_columns(mask, 3)
        centre = 30 * scale
        radius = 2 * scale
        assert rows == list(range(int(centre - radius), int(centre + radius)))
        assert first == int(20 * scale - radius) and last == int(80 * scale + radius) - 1


def test_diagonal_line_covers_its_middle_and_nothing_far_off():
    mask = strokes_to_mask(canvas(line((10, 10), (50, 50), width=4)), CanvasGeometry(60, 60, 60, 60), COLOURS)
    assert mask[30, 30] == 3 and mask[20, 20] == 3
    assert mask[10, 50] == 0 and mask[50, 10] == 0


def test_later_strokes_win():
    strokes = [rectangle(10, 10, 40, 40), pencil([(0, 30), (60, 30)], colour=AEROPLANE, width=4)]
    mask = strokes_to_mask(canvas(*strokes), CanvasGeometry(60, 60, 60, 60), COLOURS)
    assert mask[30, 30] == 1 and mask[15, 30] == 2
    reversed_mask = strokes_to_mask(canvas(*reversed(strokes)), CanvasGeometry(60, 60, 60, 60), COLOURS)
    assert reversed_mask[30, 30] == 2 and reversed_mask[30, 5] == 1


def test_eraser_paints_background_over_the_prefilled_mask():
    base = np.full((40, 80), 3, dtype=np.uint8)
    mask = strokes_to_mask(
        canvas(pencil([(10, 20), (50, 20)], colour=ERASER_COLOUR, width=6)),
        CanvasGeometry(80, 40, 80, 40),
        COLOURS,
        base,
    )
    assert (mask[17:23, 10:50] == 0).all()
    assert (mask[:17] == 3).all() and (mask[23:] == 3).all()
    assert (base == 3).all()  # the base is copied, never changed


def test_strokes_merge_over_a_prefilled_mask_keeping_unpainted_pixels():
    base = np.zeros((60, 60), dtype=np.uint8)
    base[:, :30] = 5
    base[0, 0] = 255  # a pixel without prediction stays as it is
    before = base.copy()
    mask = strokes_to_mask(canvas(rectangle(40, 40, 10, 10)), CanvasGeometry(60, 60, 60, 60), COLOURS, base)
    assert (mask[40:50, 40:50] == 2).all()
    untouched = np.ones_like(mask, dtype=bool)
    untouched[40:50, 40:50] = False
    assert np.array_equal(mask[untouched], before[untouched])
    assert np.array_equal(base, before)


def test_quadratic_curves_are_followed():
    path = pencil([(10, 10), (50, 10)], width=2)
    path["path"] = [["M", 10, 10], ["Q", 30, 50, 50, 10]]  # a U: the curve's lowest point is y=30 at x=30
    mask = strokes_to_mask(canvas(path), CanvasGeometry(60, 60, 60, 60), COLOURS)
    assert mask[29, 30] == 1 and mask[10, 30] == 0 and mask[40, 30] == 0


def test_moved_and_scaled_path_follows_fabric_transform():
    # the select tool doubled a path (10,20)->(30,20), width 2, and moved its box corner to (8, 18):
    # fabric's centre = corner + (size + strokeWidth) * scale / 2 = (8 + 22, 18 + 2) = (30, 20); the points,
    # relative to pathOffset (20, 20), double to (10,20)->(50,20), and the stroke doubles to width 4.
    path = pencil([(10, 20), (30, 20)], width=2)
    path.update(left=8, top=18, scaleX=2, scaleY=2)
    mask = strokes_to_mask(canvas(path), CanvasGeometry(80, 60, 80, 60), COLOURS)
    rows, (first, last) = rows_and_columns(mask, 1)
    assert rows == [18, 19, 20, 21] and (first, last) == (8, 51)


def test_rotated_rectangle_turns_about_its_corner():
    # fabric rotates about left/top: the 20x10 box at (30, 10) turned 90 degrees covers x 20..30, y 10..30
    rotated = {**rectangle(30, 10, 20, 10), "angle": 90}
    mask = strokes_to_mask(canvas(rotated), CanvasGeometry(60, 60, 60, 60), COLOURS)
    expected = np.zeros_like(mask)
    expected[10:30, 20:30] = 2
    assert np.array_equal(mask, expected)


def test_circle_fills_its_disc():
    # dash-canvas's circle tool: origin left/center, so the centre is (left + radius, top)
    circle = {
        "type": "circle",
        "originX": "left",
        "originY": "center",
        "left": 10,
        "top": 20,
        "radius": 5,
        "fill": BIRD,
        "stroke": None,
        "strokeWidth": 0,
    }
    mask = strokes_to_mask(canvas(circle), CanvasGeometry(40, 40, 40, 40), COLOURS)
    ys, xs = np.mgrid[0:40, 0:40] + 0.5
    assert np.array_equal(mask == 3, np.hypot(xs - 15, ys - 20) <= 5)


@settings(max_examples=300, deadline=None)
@given(
    size=strategies.tuples(strategies.integers(1, 30), strategies.integers(1, 30)),
    points=strategies.lists(
        strategies.tuples(strategies.floats(-10, 40), strategies.floats(-10, 40)), min_size=1, max_size=6
    ),
    radius=strategies.floats(0.5, 12),
)
def test_strokes_paint_exactly_the_pixel_centres_within_half_the_width(size, points, radius):
    """The row-span painter against the definition, pixel by pixel (exact ties left out)."""
    from cocoseg.pipeline.annotation.canvas import _paint_polyline

    height, width = size
    points = np.array(points, dtype=float)
    mask = np.zeros((height, width), np.uint8)
    _paint_polyline(mask, points, radius, 1)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    distance = np.full((height, width), np.inf)
    for start, end in zip(points[:-1], points[1:]) if len(points) > 1 else [(points[0], points[0])]:
        delta = end - start
        length_squared = float(delta @ delta)
        share = (
            np.clip(((xs - start[0]) * delta[0] + (ys - start[1]) * delta[1]) / length_squared, 0, 1)
            if length_squared
            else 0.0
        )
        distance = np.minimum(
            distance, np.hypot(xs - start[0] - share * delta[0], ys - start[1] - share * delta[1])
        )
    decided = np.abs(distance - radius) > 1e-6
    assert np.array_equal((mask == 1)[decided], (distance <= radius)[decided])


# --- refusals --------------------------------------------------------------------------

GEOMETRY = CanvasGeometry(80, 40, 80, 40)


@pytest.mark.parametrize(
    "drawing, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a canvas"),
        ('{"version": "2.4"}', "not a canvas"),
        ({"objects": "many"}, "not a canvas"),
        ('{"objects": []}', "nothing is drawn"),
        (
            canvas(
                picture={
                    "type": "image",
                    "left": 0,
                    "top": 0,
                    "width": 80,
                    "height": 40,
                    "scaleX": 1,
                    "scaleY": 1,
                }
            ),
            "nothing is drawn",
        ),
        (canvas(pencil([(200, 200), (300, 200)])), "stroke 1 \\(path\\) lies entirely outside the picture"),
        (
            canvas(rectangle(10, 10, 5, 5), rectangle(-50, -50, 20, 20)),
            "stroke 2 \\(rect\\) lies entirely outside",
        ),
        (canvas(pencil([(10, 10), (20, 10)], colour="#123456")), "colour #123456 is not a class of voc21"),
        (
            canvas(pencil([(10, 10), (20, 10)], colour="red")),
            "stroke 1 \\(path\\): colour 'red' is not a colour",
        ),
        (canvas({"type": "textbox", "text": "hi"}), "type 'textbox' are not supported"),
        (
            canvas({**pencil([(10, 10), (20, 10)]), "path": [["A", 1, 2, 3, 4, 5, 6, 7]]}),
            "path command 'A' is not supported",
        ),
        (canvas({**pencil([(10, 10), (20, 10)]), "path": [["L", 1, 2]]}), "does not start with M"),
        (canvas({**pencil([(10, 10), (20, 10)]), "path": [["M", 1]]}), "needs 2 numbers"),
        (
            '{"objects": [{"type": "path", "stroke": "#800000", "strokeWidth": 2, "path": [["M", NaN, 1]]}]}',
            "not a finite number",
        ),
        (canvas({**pencil([(10, 10), (20, 10)]), "left": "10"}), "left is '10', not a finite number"),
        (canvas({**pencil([(10, 10), (20, 10)]), "stroke": None}), "has no stroke colour"),
        (canvas(rectangle(10, 10, 5, 5, fill=None)), "neither a fill nor a stroke colour"),
        (canvas({**rectangle(10, 10, 5, 5), "scaleX": 0}), "scaled to nothing"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON|not a canvas"),
        ({"objects": [5]}, "not a fabric object"),
    ],
)
def test_refusals_name_the_problem(drawing, message):
    with pytest.raises(AnnotationError, match=message):
        strokes_to_mask(drawing, GEOMETRY, COLOURS)


def test_absurd_sizes_are_refused():
    many = {"objects": [rectangle(1, 1, 2, 2)] * 10_001}
    with pytest.raises(AnnotationError, match="10,001 objects, more than 10,000"):
        strokes_to_mask(many, GEOMETRY, COLOURS)
    long_stroke = pencil([(x % 80, 20) for x in range(10_001)])
    with pytest.raises(AnnotationError, match="10,001 points, more than 10,000"):
        strokes_to_mask(canvas(long_stroke), GEOMETRY, COLOURS)


@pytest.mark.parametrize(
    "base",
    [np.zeros((40, 81), np.uint8), np.zeros((40, 80), np.int32), np.zeros((40, 80, 3), np.uint8), [[0]]],
)
def test_base_of_the_wrong_shape_or_type_is_refused(base):
    with pytest.raises(AnnotationError, match="pre-filled mask"):
        strokes_to_mask(canvas(rectangle(1, 1, 5, 5)), GEOMETRY, COLOURS, base)


def test_a_stroke_partly_outside_is_clipped():
    mask = strokes_to_mask(canvas(pencil([(-20, 20), (10, 20)], width=2)), GEOMETRY, COLOURS)
    assert (mask[19:21, 0:10] == 1).all() and mask[:, 12:].max() == 0


# --- the real dash-canvas JSON -------------------------------------------------------------


def test_real_dash_canvas_json_lands_where_the_mouse_drew():
    mask = strokes_to_mask(REAL_CANVAS_JSON, REAL_GEOMETRY, COLOURS)
    assert mask.shape == (426, 640) and set(np.unique(mask)) == {0, 1, 2}
    # pencil (50,60)->(150,60) width 12: canvas x 44..156, y 54..66, x 1.6 in picture pixels
    rows, (first, last) = rows_and_columns(mask, 1)
    assert rows == list(range(86, 106)) and (first, last) == (70, 249)
    # rectangle: fabric's box at (60,150), 60+6 by 50+6 canvas pixels -> picture [96, 201.6] x [240, 329.6]
    assert (mask[240:330, 96:202] == 2).all()
    assert not (mask[239, 96:202] == 2).any() and not (mask[330, 96:202] == 2).any()
    assert not (mask[240:330, 95] == 2).any() and not (mask[240:330, 202] == 2).any()
    # second pencil stroke (200,100)->(250,150) and the line (300,40)->(350,90), both class 2
    assert mask[200, 360] == 2 and mask[104, 520] == 2
    assert mask[104, 600] == 0 and mask[300, 400] == 0


def test_real_json_after_the_canvas_zoom_button_uses_the_zoomed_picture():
    # after "Zoom in" the picture is 1.25x larger on the canvas: 1 canvas pixel = 1.6 / 1.25 picture pixels
    mask = strokes_to_mask(REAL_ZOOMED_CANVAS_JSON, REAL_GEOMETRY, COLOURS)
    rows, (first, last) = rows_and_columns(mask, 1)
    assert rows == list(range(69, 84)) and (first, last) == (56, 199)


def test_real_json_parsed_or_text_give_the_same_mask():
    parsed = json.loads(REAL_CANVAS_JSON)
    assert np.array_equal(
        strokes_to_mask(parsed, REAL_GEOMETRY, COLOURS),
        strokes_to_mask(REAL_CANVAS_JSON, REAL_GEOMETRY, COLOURS),
    )
    assert parsed == json.loads(REAL_CANVAS_JSON)  # not changed


# --- masks <-> COCO --------------------------------------------------------------------------

masks = numpy_strategies.arrays(
    np.uint8,
    strategies.tuples(strategies.integers(1, 12), strategies.integers(1, 12)),
    elements=strategies.sampled_from([0, 0, 1, 7, 15, 20]),
)


@settings(max_examples=150, deadline=None)
@given(mask=masks, image_id=strategies.integers(1, 10**6), first_id=strategies.integers(1, 10**6))
def test_mask_to_coco_rle_and_back_is_identical(mask, image_id, first_id):
    if not mask.any():
        with pytest.raises(AnnotationError, match="nothing to save"):
            mask_to_annotations(mask, VOC, image_id, first_id)
        return
    annotations = mask_to_annotations(mask, VOC, image_id, first_id)
    classes = sorted(int(value) for value in np.unique(mask) if value)
    assert [annotation["category_id"] for annotation in annotations] == [
        VOC.class_to_categories[index][0] for index in classes
    ]
    assert [annotation["id"] for annotation in annotations] == list(range(first_id, first_id + len(classes)))
    for annotation, class_index in zip(annotations, classes):
        region = np.asfortranarray((mask == class_index).astype(np.uint8))
        rle = coco_mask.encode(region)
        assert annotation["image_id"] == image_id and annotation["iscrowd"] == 0
        assert annotation["area"] == float(coco_mask.area(rle)) == float(region.sum())
        assert annotation["bbox"] == [float(value) for value in coco_mask.toBbox(rle)]
        assert isinstance(annotation["segmentation"]["counts"], str)
    assert np.array_equal(annotations_to_mask(json.loads(json.dumps(annotations)), VOC, *mask.shape), mask)


def test_mask_refusals():
    with pytest.raises(AnnotationError, match="nothing to save"):
        mask_to_annotations(np.full((4, 4), 255, np.uint8), VOC, 1, 1)
    with pytest.raises(AnnotationError, match="uint8"):
        mask_to_annotations(np.ones((4, 4), np.int64), VOC, 1, 1)
    with pytest.raises(AnnotationError, match="class 30, but voc21 has classes 0-20"):
        mask_to_annotations(np.full((4, 4), 30, np.uint8), VOC, 1, 1)


def test_annotations_to_mask_refuses_unknown_categories_and_broken_rle():
    annotation = mask_to_annotations(np.ones((4, 4), np.uint8), VOC, 1, 1)[0]
    with pytest.raises(AnnotationError, match="category 90 is not a class of voc21"):
        annotations_to_mask([{**annotation, "category_id": 90}], VOC, 4, 4)
    with pytest.raises(AnnotationError, match="RLE size"):
        annotations_to_mask([annotation], VOC, 5, 4)


def test_saved_categories_keep_coco_names_so_the_presets_accept_them():
    categories = coco_categories(VOC)
    assert len(categories) == 20 and categories[0] == {
        "id": 5,
        "name": "airplane",
        "supercategory": "vehicle",
    }
    assert is_coco_compatible(categories)
    assert build_label_map("voc21", categories).class_to_categories == VOC.class_to_categories
