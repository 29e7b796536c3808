"""``cocoseg models import FILE.onnx --card card.json``: bring a model from elsewhere.

The card says what the file expects and produces::

    {"name": "deeplab-voc",                       # optional, else --name or the file stem
     "labels": "voc21",                           # or "label_map": {...} (cocoseg form)
     "input": {"size": 256, "layout": "NCHW", "dtype": "float32",
               "mean": [123.7, 116.3, 103.5], "std": [58.4, 57.1, 57.4], "resize": "stretch"},
     "output": {"name": "out", "kind": "logits", "layout": "NCHW"},
     "dataset": "demo"}                           # the dataset it is evaluated on by default

The file is opened first in a throw-away process (``model_probe``); its input and
output shapes must match the card. It is then wrapped into the cocoseg interface
(uint8 NHWC ``image`` in; ``mask`` and ``probabilities`` out), probed once more with a
real run, and published like an exported model. Only ONNX files are accepted: a
pickle, zip (``.keras``, ``.pt``) or anything else is refused without being opened.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from cocoseg.pipeline.core.cache import sha256_of
from cocoseg.pipeline.core.workspace import UnsafePathError, Workspace, atomic_write_json, check_name, now_iso
from cocoseg.pipeline.data.geometry import RESIZE_MODES
from cocoseg.pipeline.data.labels import LabelMapError, build_label_map, label_map_from_dict
from cocoseg.pipeline.data.registry import get_dataset, load_split
from cocoseg.pipeline.inference.model_probe import probe
from cocoseg.pipeline.inference.model_store import (
    CARD_FORMAT,
    ModelEntry,
    ModelError,
    name_is_taken,
    partial_folder,
    publish,
)
from cocoseg.pipeline.inference.onnx_graph import BATCH_DIMENSION, INPUT_NAME, head_nodes, interface_outputs

logger = logging.getLogger(__name__)

MAX_MODEL_BYTES = 2 * 1024**3
REFUSED_SIGNATURES = {
    b"PK\x03\x04": "a zip archive (.keras, .pt, .npz)",
    b"\x80": "a Python pickle",
    b"\x89HDF": "an HDF5 file (.h5)",
}


class ModelImportError(ModelError):
    """The file or its card cannot be imported; the message says what to fix."""


def _read_card(card: dict) -> dict:
    if not isinstance(card, dict):
        raise ModelImportError("the card must be a JSON object")
    spec = card.get("input")
    if not isinstance(spec, dict) or not isinstance(spec.get("size"), int) or not 8 <= spec["size"] <= 4096:
        raise ModelImportError("card.input.size must be the square input side in pixels (8-4096)")
    if spec.get("layout", "NHWC") not in ("NHWC", "NCHW") or spec.get("dtype", "uint8") not in (
        "uint8",
        "float32",
    ):
        raise ModelImportError("card.input.layout must be NHWC or NCHW and card.input.dtype uint8 or float32")
    if spec.get("resize", "stretch") not in RESIZE_MODES:
        raise ModelImportError(f"card.input.resize must be one of {', '.join(RESIZE_MODES)}")
    for key in ("mean", "std"):
        values = spec.get(key)
        if values is not None and (
            not isinstance(values, list)
            or len(values) != 3
            or not all(isinstance(v, (int, float)) for v in values)
        ):
            raise ModelImportError(f"card.input.{key} must be three numbers (R, G, B on the 0-255 scale)")
    if spec.get("std") and any(value == 0 for value in spec["std"]):
        raise ModelImportError("card.input.std must not contain 0")
    output = card.get("output", {})
    if output.get("kind", "logits") not in ("logits", "probabilities") or output.get(
        "layout", "NHWC"
    ) not in ("NHWC", "NCHW"):
        raise ModelImportError(
            "card.output.kind must be logits or probabilities and card.output.layout NHWC or NCHW"
        )
    return card


def _label_map(workspace: Workspace, card: dict):
    try:
        if isinstance(card.get("label_map"), dict):
            return label_map_from_dict(card["label_map"])
        preset = card.get("labels")
        if preset in ("voc21", "coco80"):
            return build_label_map(preset)
        if preset:
            dataset = card.get("dataset", "demo")
            categories = load_split(
                get_dataset(workspace, dataset), next(iter(get_dataset(workspace, dataset).splits)), 1 << 30
            ).categories
            return build_label_map(preset, categories)
    except (LabelMapError, KeyError, TypeError, ValueError) as error:
        raise ModelImportError(f"card label map: {error}") from None
    raise ModelImportError(
        'the card needs "labels" (a preset such as voc21) or "label_map" (cocoseg\'s classes form)'
    )


def _check_shapes(report: dict, card: dict, num_classes: int) -> dict:
    """The file's first input and chosen output against the card; returns the output's description."""
    size, layout = card["input"]["size"], card["input"].get("layout", "NHWC")
    inputs = report["inputs"]
    if len(inputs) != 1:
        raise ModelImportError(
            f"the model has {len(inputs)} inputs; only single-image models can be imported"
        )
    expected_type = "tensor(uint8)" if card["input"].get("dtype", "uint8") == "uint8" else "tensor(float)"
    if inputs[0]["type"] != expected_type:
        raise ModelImportError(
            f"the model's input is {inputs[0]['type']} but the card says {card['input'].get('dtype', 'uint8')}"
        )
    wanted = [None, 3, size, size] if layout == "NCHW" else [None, size, size, 3]
    _match(inputs[0]["shape"], wanted, "input")
    name = card.get("output", {}).get("name")
    outputs = [item for item in report["outputs"] if name is None or item["name"] == name]
    if not outputs:
        raise ModelImportError(
            f"the model has no output called {name!r}; it has {', '.join(item['name'] for item in report['outputs'])}"
        )
    output = outputs[0]
    if output["type"] != "tensor(float)":
        raise ModelImportError(
            f"output {output['name']} is {output['type']}; per-class float scores are needed"
        )
    out_layout = card.get("output", {}).get("layout", "NHWC")
    _match(
        output["shape"],
        [None, num_classes, size, size] if out_layout == "NCHW" else [None, size, size, num_classes],
        f"output {output['name']}",
    )
    return output


def _match(actual: list, wanted: list, what: str) -> None:
    if len(actual) != len(wanted) or any(
        a is not None and w is not None and a != w for a, w in zip(actual, wanted)
    ):
        shown = ["batch" if value is None else value for value in wanted]
        raise ModelImportError(f"the model's {what} has shape {actual}, the card implies {shown}")


def wrap(model, card: dict, output_name: str, num_classes: int):
    """Put the cocoseg interface around an imported graph (in place; returns it)."""
    from onnx import TensorProto, helper, numpy_helper

    spec, output = card["input"], card.get("output", {})
    graph = model.graph
    original_input = graph.input[0].name
    nodes, initializers, current = [], [], INPUT_NAME
    if spec.get("dtype", "uint8") == "float32":
        nodes.append(helper.make_node("Cast", [current], ["import_float"], to=TensorProto.FLOAT))
        current = "import_float"
        if spec.get("mean"):
            initializers.append(
                numpy_helper.from_array(np.array(spec["mean"], dtype=np.float32), "import_mean")
            )
            nodes.append(helper.make_node("Sub", [current, "import_mean"], ["import_centred"]))
            current = "import_centred"
        if spec.get("std"):
            initializers.append(
                numpy_helper.from_array(np.array(spec["std"], dtype=np.float32), "import_std")
            )
            nodes.append(helper.make_node("Div", [current, "import_std"], ["import_scaled"]))
            current = "import_scaled"
    if spec.get("layout", "NHWC") == "NCHW":
        nodes.append(helper.make_node("Transpose", [current], ["import_nchw"], perm=[0, 3, 1, 2]))
        current = "import_nchw"
    nodes.append(helper.make_node("Identity", [current], [original_input]))
    scores = output_name
    tail = []
    if output.get("layout", "NHWC") == "NCHW":
        tail.append(helper.make_node("Transpose", [scores], ["import_scores_nhwc"], perm=[0, 2, 3, 1]))
        scores = "import_scores_nhwc"
    tail += head_nodes(scores, "import_", from_logits=output.get("kind", "logits") == "logits")
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + body + tail)
    graph.initializer.extend(initializers)
    del graph.input[:]
    size = spec["size"]
    graph.input.append(
        helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [BATCH_DIMENSION, size, size, 3])
    )
    del graph.output[:]
    graph.output.extend(interface_outputs(size, num_classes))
    return model


def _check_bytes(path: Path) -> None:
    if path.suffix.lower() != ".onnx":
        raise ModelImportError(
            f"{path.name}: only .onnx files can be imported (no pickles, Keras or PyTorch files)"
        )
    if not path.is_file():
        raise ModelImportError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0 or size > MAX_MODEL_BYTES:
        raise ModelImportError(
            f"{path.name}: {size} bytes; an ONNX model must be between 1 byte and {MAX_MODEL_BYTES // 1024**3} GB"
        )
    with open(path, "rb") as handle:
        head = handle.read(8)
    for signature, what in REFUSED_SIGNATURES.items():
        if head.startswith(signature):
            raise ModelImportError(f"{path.name} is {what}, not an ONNX model; it was not opened")


def import_model(workspace: Workspace, source: Path, card: dict, name: str | None = None) -> ModelEntry:
    """Validate, wrap and publish an external ONNX model under ``models/<name>/``.

    Raises:
        ModelError: wrong file type, invalid or crashing model, shapes that differ from the card.
    """
    import onnx

    source = Path(source)
    _check_bytes(source)
    card = _read_card(card)
    name = name or card.get("name") or source.stem
    try:
        check_name(name, "model name")
    except UnsafePathError as error:
        raise ModelImportError(str(error)) from None
    label_map = _label_map(workspace, card)
    # one import of a name at a time: a second would publish over the first, or sweep its build folder
    with workspace.exclusive(f"import-{name}", f"{name} is being imported by another process"):
        if name_is_taken(workspace, name):
            raise ModelImportError(f"{name} already exists; choose another --name or delete it first")
        folder = partial_folder(workspace.models_dir, name)
        try:
            staged = folder / "original.onnx"
            shutil.copyfile(source, staged)
            report = probe(staged)
            output = _check_shapes(report, card, label_map.num_classes)
            wrapped = wrap(onnx.load(str(staged)), card, output["name"], label_map.num_classes)
            target = folder / "model.onnx"
            onnx.save(wrapped, str(target))
            checked = probe(target, size=card["input"]["size"])
            expected = [
                [1, card["input"]["size"], card["input"]["size"]],
                [1, card["input"]["size"], card["input"]["size"], label_map.num_classes],
            ]
            if [item["shape"] for item in checked.get("run", [])] != expected:
                raise ModelImportError(
                    f"the wrapped model produced {checked.get('run')} instead of mask and probabilities of shapes {expected}"
                )
            source_digest = sha256_of(staged)
            staged.unlink()
            record = {
                "format": CARD_FORMAT,
                "kind": "imported",
                "name": name,
                "created": now_iso(),
                "file": target.name,
                "sha256": sha256_of(target),
                "bytes": target.stat().st_size,
                "opset": checked["opset"],
                "input": {
                    "name": INPUT_NAME,
                    "dtype": "uint8",
                    "layout": "NHWC",
                    "size": card["input"]["size"],
                    "resize": card["input"].get("resize", "stretch"),
                },
                "outputs": {
                    "mask": "uint8 (batch, size, size) class index",
                    "probabilities": "float32 (batch, size, size, classes)",
                },
                "label_map": label_map.to_dict(),
                "source": {
                    "file": source.name,
                    "sha256": source_digest,
                    "dataset": card.get("dataset", "demo"),
                    "card": card,
                },
                "validation": {},
                "variants": {},
            }
            atomic_write_json(folder / "model.json", record)
            publish(folder, workspace.models_dir / name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return ModelEntry(workspace.models_dir / name, record)
