"""ONNX graph surgery: the one interface every cocoseg model file has, and fused ensembles.

Every model file cocoseg serves, whether exported from a run, imported from elsewhere
or fused from an ensemble, has the same interface, so inference, evaluation and the
pages never special-case one:

    input   ``image``          uint8  (batch, size, size, 3), RGB, pixels 0-255
    output  ``mask``           uint8  (batch, size, size), the class index (ArgMax in the graph)
    output  ``probabilities``  float32 (batch, size, size, classes), softmax

Pure functions over ``onnx.ModelProto``, no sessions; only ``convert_fp16`` reads and
writes files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cocoseg.pipeline.core.workspace import UnsafePathError, resolve_inside

INPUT_NAME = "image"
MASK_OUTPUT = "mask"
PROBABILITIES_OUTPUT = "probabilities"
BATCH_DIMENSION = "batch"
STRATEGIES = ("mean", "weighted", "vote")


class GraphError(ValueError):
    """The graph does not have the shape cocoseg needs; the message says which part."""


def interface_outputs(size: int, num_classes: int) -> list:
    return [
        helper.make_tensor_value_info(MASK_OUTPUT, TensorProto.UINT8, [BATCH_DIMENSION, size, size]),
        helper.make_tensor_value_info(
            PROBABILITIES_OUTPUT, TensorProto.FLOAT, [BATCH_DIMENSION, size, size, num_classes]
        ),
    ]


def head_nodes(source: str, prefix: str, from_logits: bool) -> list:
    """Softmax (when ``source`` holds logits) and ArgMax -> uint8 over the last axis."""
    nodes = []
    if from_logits:
        nodes.append(
            helper.make_node("Softmax", [source], [PROBABILITIES_OUTPUT], axis=-1, name=f"{prefix}softmax")
        )
    elif source != PROBABILITIES_OUTPUT:
        nodes.append(
            helper.make_node("Identity", [source], [PROBABILITIES_OUTPUT], name=f"{prefix}probabilities")
        )
    nodes += [
        helper.make_node(
            "ArgMax", [source], [f"{prefix}argmax"], axis=-1, keepdims=0, name=f"{prefix}argmax"
        ),
        helper.make_node(
            "Cast", [f"{prefix}argmax"], [MASK_OUTPUT], to=TensorProto.UINT8, name=f"{prefix}mask"
        ),
    ]
    return nodes


def add_segmentation_head(model: onnx.ModelProto, size: int, num_classes: int) -> onnx.ModelProto:
    """Turn a one-output logits graph (NHWC) into the cocoseg interface, in place.

    The batch dimension of the input is renamed ``batch`` (tf2onnx names it
    ``unk__N``) so shape inference can follow it through to the outputs.
    """
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise GraphError(
            f"expected one input and one logits output, found {len(graph.input)} and {len(graph.output)}"
        )
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIMENSION
    logits = graph.output[0].name
    graph.node.extend(head_nodes(logits, "head_", from_logits=True))
    del graph.output[:]
    graph.output.extend(interface_outputs(size, num_classes))
    return model


def head_node_names() -> list[str]:
    """Names of the nodes ``add_segmentation_head`` adds (kept in float by quantisation)."""
    return ["head_softmax", "head_argmax", "head_mask"]


def iterate_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every initializer and constant tensor, including those of subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == onnx.AttributeProto.GRAPH:
                yield from iterate_tensors(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from iterate_tensors(subgraph)


def check_external_data(model: onnx.ModelProto, folder: Path) -> list[str]:
    """Refuse tensors whose external data lies outside ``folder``; return the files used.

    Raises:
        GraphError: a location that is absolute, climbs with ``..`` or leaves via a symlink.
    """
    locations = []
    for tensor in iterate_tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        try:
            resolve_inside(folder, location)
        except UnsafePathError as error:
            raise GraphError(
                f"tensor {tensor.name!r} keeps its data outside the model's folder: {error}"
            ) from None
        locations.append(location)
    return sorted(set(locations))


def input_size(model: onnx.ModelProto) -> int:
    """The square side of a cocoseg-interface model's ``image`` input."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[1].dim_value)


def _prefixed_member(member: onnx.ModelProto, prefix: str) -> onnx.GraphProto:
    """A member's graph with every name prefixed, reading the shared ``image`` input."""
    renamed = onnx.compose.add_prefix(member, prefix)
    graph = renamed.graph
    old_input = graph.input[0].name
    for node in graph.node:
        for position, name in enumerate(node.input):
            if name == old_input:
                node.input[position] = INPUT_NAME
    return graph


def fuse_ensemble(
    members: Sequence[onnx.ModelProto], strategy: str, weights: Sequence[float]
) -> onnx.ModelProto:
    """One graph running every member on the shared input and combining them.

    ``mean``/``weighted``: the weighted sum of member probabilities (weights sum to 1).
    ``vote``: each member's argmax becomes a one-hot vote; probabilities are the vote
    shares, and ties go to the lowest class index (ArgMax's first maximum).

    Members must already share input size, class count and opset (checked by the caller).
    """
    if strategy not in STRATEGIES:
        raise GraphError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    size = input_size(members[0])
    num_classes = int(members[0].graph.output[1].type.tensor_type.shape.dim[3].dim_value)
    nodes, initializers, terms = [], [], []
    for index, (member, weight) in enumerate(zip(members, weights)):
        prefix = f"member{index}_"
        graph = _prefixed_member(member, prefix)
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        probabilities = f"{prefix}{PROBABILITIES_OUTPUT}"
        if strategy == "vote":
            nodes += [
                helper.make_node("ArgMax", [probabilities], [f"{prefix}vote_index"], axis=-1, keepdims=0),
                helper.make_node(
                    "OneHot",
                    [f"{prefix}vote_index", "ensemble_depth", "ensemble_one_hot_values"],
                    [f"{prefix}vote"],
                    axis=-1,
                ),
            ]
            terms.append(f"{prefix}vote")
        else:
            initializers.append(
                numpy_helper.from_array(np.array(weight, dtype=np.float32), f"{prefix}weight")
            )
            nodes.append(helper.make_node("Mul", [probabilities, f"{prefix}weight"], [f"{prefix}weighted"]))
            terms.append(f"{prefix}weighted")
    if strategy == "vote":
        initializers += [
            numpy_helper.from_array(np.array([num_classes], dtype=np.int64), "ensemble_depth"),
            numpy_helper.from_array(np.array([0.0, 1.0], dtype=np.float32), "ensemble_one_hot_values"),
            numpy_helper.from_array(np.array(len(members), dtype=np.float32), "ensemble_member_count"),
        ]
        nodes += [
            helper.make_node("Sum", terms, ["ensemble_votes"]),
            helper.make_node("Div", ["ensemble_votes", "ensemble_member_count"], ["ensemble_scores"]),
        ]
    else:
        nodes.append(helper.make_node("Sum", terms, ["ensemble_scores"]))
    nodes += head_nodes("ensemble_scores", "ensemble_", from_logits=False)
    image = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [BATCH_DIMENSION, size, size, 3])
    graph = helper.make_graph(nodes, "ensemble", [image], interface_outputs(size, num_classes), initializers)
    fused = helper.make_model(graph, opset_imports=list(members[0].opset_import), producer_name="cocoseg")
    fused.ir_version = max(member.ir_version for member in members)
    return fused


def default_opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)


def convert_fp16(source: Path, target: Path) -> None:
    """FP16 weights and compute, float32/uint8 inputs and outputs kept for callers."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True, disable_shape_infer=False)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
