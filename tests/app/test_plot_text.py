"""Every figure builder shows a hostile name as text: Plotly's label markup is escaped (``plot_text``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cocoseg.app.components.compare_panels import _figure as compare_figure
from cocoseg.app.components.explore_figures import class_bars, cooccurrence_heatmap, object_sizes
from cocoseg.app.components.figures import confusion_heatmap, iou_heatmap, plot_text, short_label
from cocoseg.app.components.prepare_results import distribution_figure

HOSTILE = "<img src=x onerror=alert(1)><a href=//x>x</a>"


def _shown(figure) -> str:
    return json.dumps(figure.to_plotly_json(), default=str)


def _safe(figure) -> None:
    shown = _shown(figure)
    assert "<img" not in shown and "<a " not in shown, shown[:500]
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;a href=//x&gt;x&lt;/a&gt;" in shown


def test_plot_text_escapes_the_markup_plotly_reads():
    assert plot_text("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert plot_text("&lt;") == "&amp;lt;"  # an entity in a name is shown as typed, not decoded
    assert plot_text(3) == "3"


def test_evaluation_heatmaps_escape_class_and_model_names():
    _safe(iou_heatmap([HOSTILE], [HOSTILE, "cat"], [[0.5, None]]))
    _safe(confusion_heatmap([[3, 1], [0, 2]], [HOSTILE, "cat"], title=HOSTILE))


def test_long_model_names_are_cut_in_the_middle_above_the_heatmap_and_whole_on_hover():
    long = "attention_unet-20261202-060037-35ae (int8)"
    assert short_label("unet (fp32)") == "unet (fp32)"
    assert short_label(long) == "attention_une…060037-35ae (int8)" and len(short_label(long)) == 32
    figure = iou_heatmap([long, f"<b>{long}</b>"], ["cat"], [[0.5], [0.25]])
    assert list(figure.data[0].x) == [long, f"&lt;b&gt;{long}&lt;/b&gt;"]  # hover: the whole name
    shown = list(figure.layout.xaxis.ticktext)
    assert shown[0] == short_label(long, 24) and len(shown[0]) == 24
    assert shown[1].startswith("&lt;b&gt;") and shown[1].endswith("(int8)&lt;/b&gt;")


def test_iou_heatmap_has_a_row_per_class_and_grows_with_the_label_map():
    """Classes run down, each named (up to 40 of them), and each model's cell in its column; 81 classes
    make a taller figure than 21 instead of thinner rows."""
    classes = [f"class {index}" for index in range(21)]
    figure = iou_heatmap(["a", "b"], classes, [[0.1] * 21, [None] + [0.9] * 20])
    assert list(figure.data[0].y) == classes and list(figure.data[0].x) == ["a", "b"]
    assert figure.data[0].z.shape == (21, 2) and figure.data[0].text[0] == ["10", "n/a"]
    assert figure.layout.yaxis.dtick == 1
    coco = [f"class {index}" for index in range(81)]
    taller = iou_heatmap(["a"], coco, [[0.5] * 81])
    assert taller.layout.height > figure.layout.height + 50 * 18
    assert taller.layout.yaxis.dtick is None  # past 40 classes Plotly thins the names; hover has each


def test_confusion_heatmap_names_every_truth_row_and_grows_with_them():
    classes = [f"class {index}" for index in range(21)]
    counts = [[index + 1] * 22 for index in range(21)]
    figure = confusion_heatmap(counts, classes)
    assert figure.layout.yaxis.dtick == 1 and figure.layout.xaxis.dtick == 1
    assert list(figure.data[0].x)[-1] == "(none)"
    assert figure.layout.height >= 21 * 18


def _stats() -> dict:
    classes = [
        {"index": 0, "name": "background", "instances": 0, "images": 0, "color": [0, 0, 0]},
        {
            "index": 1,
            "name": HOSTILE,
            "instances": 3,
            "images": 2,
            "pixel_share": 0.1,
            "small": 1,
            "medium": 1,
            "large": 1,
            "color": [200, 0, 0],
        },
    ]
    label_map = {"name": HOSTILE, "classes": [{"index": 1, "coco_ids": [999]}]}
    return {"classes": classes, "label_map": label_map, "cooccurrence": [[2]]}


def test_explore_charts_escape_class_and_group_names():
    stats = _stats()
    _safe(class_bars(stats, "instances", "value", False, True))
    _safe(object_sizes(stats))
    _safe(cooccurrence_heatmap(stats))


def test_a_compare_panel_says_the_pixel_under_the_pointer_not_its_rgba():
    figure = compare_figure(np.zeros((4, 6, 3), np.uint8), "unet · mIoU 12.0")
    assert figure.data[0].hoverinfo == "x+y"


def test_prepare_distribution_and_compare_titles_escape_names():
    result = {
        "label_map": {"classes": [{"name": "background"}, {"name": HOSTILE}]},
        "splits": {
            "train": {
                "distribution": {
                    "before": {"images": [0, 4]},
                    "after": {"images": [0, 4.0]},
                    "method": "none",
                    "threshold": 0.1,
                }
            }
        },
    }
    _safe(distribution_figure(result))
    _safe(compare_figure(np.zeros((4, 4, 3), dtype=np.uint8), HOSTILE))


@pytest.mark.parametrize("name, split", [("<b>x</b>", "val"), ("demo-copy", "<img src=x>")])
def test_dataset_and_split_names_with_markup_never_get_registered(workspace, name, split):
    """The names the hostile-names browser test cannot use: the registry refuses them first."""
    from cocoseg.pipeline.data.registry import add_dataset, list_datasets
    from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON

    with pytest.raises(ValueError, match="not allowed"):
        add_dataset(workspace, name, DEMO_VAL_JSON, DEMO_VAL_IMAGES, split=split)
    assert [entry.name for entry in list_datasets(workspace)] == ["demo"]
