"""Bring your own model: a hand-built ONNX model is probed in a child process, wrapped and served."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cocoseg.pipeline.data.geometry import resize_image
from cocoseg.pipeline.inference.model_import import import_model
from cocoseg.pipeline.inference.model_store import ModelError, get_entry, list_entries
from cocoseg.pipeline.inference.predictor import Predictor

SIZE = 32
WEIGHTS = np.random.default_rng(3).normal(size=(21, 3)).astype(np.float32)
NCHW_CARD = {
    "labels": "voc21",
    "dataset": "demo",
    "input": {"size": SIZE, "layout": "NCHW", "dtype": "float32", "mean": [127.5] * 3, "std": [127.5] * 3},
    "output": {"kind": "logits", "layout": "NCHW"},
}


def conv_model(layout: str = "NCHW", classes: int = 21, size: int = SIZE) -> onnx.ModelProto:
    """A 1x1 convolution from RGB to class logits, the way a PyTorch export would look (NCHW float)."""
    weight = numpy_helper.from_array(WEIGHTS[:classes, :, None, None], "weight")
    if layout == "NCHW":
        nodes = [helper.make_node("Conv", ["input", "weight"], ["logits"])]
        shapes = (["n", 3, size, size], ["n", classes, size, size])
    else:
        nodes = [
            helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["nchw", "weight"], ["conv"]),
            helper.make_node("Transpose", ["conv"], ["logits"], perm=[0, 2, 3, 1]),
        ]
        shapes = (["n", size, size, 3], ["n", size, size, classes])
    graph = helper.make_graph(
        nodes,
        "byo",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shapes[0])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shapes[1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _save(model, path):
    onnx.save(model, str(path))
    return path


@pytest.mark.slow
def test_hand_built_model_is_imported_wrapped_and_served(workspace, tmp_path):
    entry = import_model(workspace, _save(conv_model(), tmp_path / "byo.onnx"), NCHW_CARD)
    assert entry.name == "byo" and entry.kind == "imported" and entry.size == SIZE
    assert [item.name for item in list_entries(workspace)] == ["byo"] and entry.card["label_map"][
        "name"
    ] == "voc21"
    assert not (entry.folder / "original.onnx").exists() and not list(workspace.models_dir.glob(".partial-*"))
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    square = resize_image(image, SIZE, "stretch")
    logits = ((square.astype(np.float32) - 127.5) / 127.5) @ WEIGHTS.T
    mask, probabilities = Predictor(get_entry(workspace, "byo")).run_batch(square[None], probabilities=True)
    assert np.array_equal(mask[0], logits.argmax(axis=-1))
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probabilities[0], expected / expected.sum(-1, keepdims=True), atol=1e-5)
    assert Predictor(get_entry(workspace, "byo")).predict(image).mask.shape == (45, 70)


@pytest.mark.slow
def test_nhwc_uint8_probabilities_model_needs_no_conversion(workspace, tmp_path):
    model = conv_model("NHWC")
    model.graph.node.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=-1))
    model.graph.output[0].name = "scores"
    card = {
        "labels": "voc21",
        "input": {"size": SIZE, "layout": "NHWC", "dtype": "float32"},
        "output": {"kind": "probabilities"},
    }
    entry = import_model(workspace, _save(model, tmp_path / "nhwc.onnx"), card, name="nhwc-model")
    square = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    mask, probabilities = Predictor(entry).run_batch(square, probabilities=True)
    assert np.array_equal(mask, (square.astype(np.float32) @ WEIGHTS.T).argmax(-1))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_imported_model_is_evaluated_like_the_others(workspace, tmp_path):
    from cocoseg.pipeline.inference.evaluate import evaluate

    import_model(workspace, _save(conv_model(), tmp_path / "byo.onnx"), NCHW_CARD)
    result = evaluate(workspace, "byo", 1 << 30, limit=4)
    assert (
        result["kind"] == "imported"
        and result["protocol"]["images"] == 4
        and 0 <= result["pixel_accuracy"] <= 1
    )


@pytest.mark.parametrize(
    "name, payload, message",
    [
        ("model.pt", b"anything", "only .onnx files"),
        ("model.keras", b"PK\x03\x04", "only .onnx files"),
        ("model.onnx", pickle.dumps({"weights": [1, 2]}), "a Python pickle"),
        ("model.onnx", b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
        ("model.onnx", b"", "between 1 byte"),
    ],
)
def test_files_that_are_not_onnx_are_refused_unopened(workspace, tmp_path, name, payload, message):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(ModelError, match=message):
        import_model(workspace, path, NCHW_CARD)
    assert not workspace.models_dir.exists() or not list(workspace.models_dir.iterdir())


def test_a_zip_renamed_onnx_is_refused(workspace, tmp_path):
    path = tmp_path / "model.onnx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ModelError, match="zip archive"):
        import_model(workspace, path, NCHW_CARD)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_malformed_models_fail_in_the_probe_process(workspace, tmp_path, damage):
    path = _save(conv_model(), tmp_path / "bad.onnx")
    data = path.read_bytes()
    path.write_bytes(
        data[: len(data) // 3]
        if damage == "truncated"
        else bytes(np.random.default_rng(0).integers(1, 256, 4000, dtype=np.uint8))
    )
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        import_model(workspace, path, NCHW_CARD)
    assert not list(workspace.models_dir.iterdir())


@pytest.mark.slow
def test_external_data_outside_the_folder_is_refused_on_import(workspace, tmp_path):
    model = conv_model()
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "252")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    with pytest.raises(ModelError, match="outside the model's folder"):
        import_model(workspace, _save(model, tmp_path / "escape.onnx"), NCHW_CARD)


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"input": {**NCHW_CARD["input"], "size": 64}},
            r"input has shape \[None, 3, 32, 32\], the card implies \['batch', 3, 64, 64\]",
        ),
        ({"input": {**NCHW_CARD["input"], "layout": "NHWC"}}, "the card implies"),
        (
            {"input": {**NCHW_CARD["input"], "dtype": "uint8"}},
            "input is tensor\\(float\\) but the card says uint8",
        ),
        ({"labels": "coco80"}, "output logits has shape .* the card implies"),
        ({"output": {"name": "scores"}}, "no output called 'scores'"),
    ],
)
def test_shapes_that_differ_from_the_card_are_refused(workspace, tmp_path, change, message):
    with pytest.raises(ModelError, match=message):
        import_model(workspace, _save(conv_model(), tmp_path / "byo.onnx"), {**NCHW_CARD, **change})


@pytest.mark.parametrize(
    "card, message",
    [
        ({"labels": "voc21"}, "input.size"),
        ({**NCHW_CARD, "input": {**NCHW_CARD["input"], "std": [1, 0, 1]}}, "must not contain 0"),
        ({**NCHW_CARD, "input": {**NCHW_CARD["input"], "resize": "zoom"}}, "resize must be"),
        ({**NCHW_CARD, "output": {"kind": "masks"}}, "output.kind"),
        ({key: value for key, value in NCHW_CARD.items() if key != "labels"}, 'needs "labels"'),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_cards_are_refused(workspace, tmp_path, card, message):
    with pytest.raises(ModelError, match=message):
        import_model(workspace, _save(conv_model(), tmp_path / "byo.onnx"), card)


@pytest.mark.slow
def test_names_are_checked_and_not_reused(workspace, tmp_path):
    path = _save(conv_model(), tmp_path / "byo.onnx")
    with pytest.raises(ModelError, match="not allowed"):
        import_model(workspace, path, NCHW_CARD, name="../x")
    import_model(workspace, path, NCHW_CARD)
    with pytest.raises(ModelError, match="already exists"):
        import_model(workspace, path, NCHW_CARD)
    assert (
        json.loads((workspace.models_dir / "byo" / "model.json").read_text())["source"]["file"] == "byo.onnx"
    )


def test_an_import_clears_what_a_killed_build_of_the_same_name_left(workspace, tmp_path):
    """A killed export or import leaves its hidden build folder (hundreds of MB, never listed): the
    next build of that name removes it once it is an hour old, and leaves other names' and fresh ones."""
    import os
    import time

    workspace.models_dir.mkdir(parents=True, exist_ok=True)
    old = time.time() - 2 * 3600
    left = {}
    for name in (
        ".partial-byo-0123abcd",
        ".retired-byo-89abcdef",
        ".partial-byo-extra-0123abcd",
        ".partial-byo-fedcba98",
    ):
        folder = workspace.models_dir / name
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half")
        left[name] = folder
    for name in (".partial-byo-0123abcd", ".retired-byo-89abcdef", ".partial-byo-extra-0123abcd"):
        os.utime(left[name], (old, old))
    import_model(workspace, _save(conv_model(), tmp_path / "byo.onnx"), NCHW_CARD)
    remaining = {path.name for path in workspace.models_dir.glob(".*")}
    assert remaining == {".partial-byo-extra-0123abcd", ".partial-byo-fedcba98"}  # another name's; too fresh


def test_a_name_being_imported_by_another_process_is_refused_and_its_build_kept(workspace, tmp_path):
    """Two imports of one name at once: the second would publish over the first, or sweep its folder."""
    from cocoseg.pipeline.core.workspace import BusyError

    workspace.models_dir.mkdir(parents=True, exist_ok=True)
    building = workspace.models_dir / ".partial-byo-0123abcd"
    building.mkdir()
    with workspace.exclusive("import-byo", "held by this test, as by another process's import"):
        with pytest.raises(BusyError, match="byo is being imported by another process"):
            import_model(workspace, _save(conv_model(), tmp_path / "byo.onnx"), NCHW_CARD)
    assert building.is_dir() and list_entries(workspace) == []
