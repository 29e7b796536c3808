"""Pretrained encoders from Keras Applications as multi-scale feature extractors, and weights-file checks.

An encoder is built headless and wrapped as one nested model named ``encoder`` whose outputs
are the feature maps at 1/2 ... 1/32 of the input (``EncoderInfo.features``); the UNet and
DeepLabV3+ decoders read the strides they need. Weights are ``None`` (random), ``"imagenet"``
(Keras downloads into its own cache) or the path of a checked weights file (the workspace's
cache, see ``cocoseg.pipeline.training.weights``).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import h5py
import keras
from keras import layers

from cocoseg.models.encoder_catalog import EncoderInfo, encoder_info

logger = logging.getLogger(__name__)

# Keras Applications refuse smaller inputs; the weight shapes do not depend on the size.
_CHECK_SIZE = 96


class EncoderWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be loaded (typically: no network and no imported file)."""


class WeightsFileError(ValueError):
    """A weights file that does not fit the encoder, or is not a readable weights file at all."""


def encoder_input(size: int, encoder: str, name: str = "image"):
    """A uint8 RGB input and the float values the encoder's ImageNet weights expect."""
    image = keras.Input((size, size, 3), dtype="uint8", name=name)
    if encoder_info(encoder).input_range == "minus_one_to_one":
        values = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(image)
    else:  # the application normalises 0-255 itself
        values = layers.Rescaling(1.0, name="normalise")(image)
    return image, values


def _application(info: EncoderInfo, size: int, weights):
    with warnings.catch_warnings():
        # The MobileNets warn that a size outside 96-224 gets the 224 px ImageNet weights: headless,
        # those are convolutions that fit any size, which is what a segmentation encoder wants.
        warnings.filterwarnings("ignore", "`input_shape` is undefined or non-square", UserWarning)
        return getattr(keras.applications, info.application)(
            input_shape=(size, size, 3), include_top=False, weights=weights
        )


def _backbone(info: EncoderInfo, size: int, weights, fallback_to_random: bool) -> keras.Model:
    try:
        return _application(info, size, weights)
    except Exception as error:  # noqa: BLE001 - download and file errors differ by platform
        if weights is None:
            raise
        message = (
            f"{info.application} ImageNet weights could not be loaded "
            f"({type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''})"
        )
        if not fallback_to_random:
            raise EncoderWeightsUnavailable(
                message + f"; run `cocoseg weights import FILE --encoder {info.name}` or use random weights"
            ) from None
        logger.warning("%s; starting from random encoder weights as requested", message)
        return _application(info, size, None)


def feature_extractor(
    encoder: str,
    size: int,
    weights: str | None = None,
    fallback_to_random: bool = False,
    levels: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> keras.Model:
    """The encoder as one model named ``encoder``: float input -> its feature maps at ``levels``
    (0 = 1/2 ... 4 = 1/32). Layers past the deepest level asked for are left out, so a decoder
    that stops at 1/16 carries no weights it never trains."""
    info = encoder_info(encoder)
    backbone = _backbone(info, size, weights, fallback_to_random)
    outputs = [backbone.get_layer(info.features[level]).output for level in levels]
    return keras.Model(backbone.input, outputs, name="encoder")


def _file_shapes(path: Path) -> tuple[str, dict[str, tuple]]:
    """The file's format and its weights: ``{name: shape}`` in file order.

    Legacy ``.h5`` (Keras Applications, ``model.save_weights`` in Keras 2, a whole saved model)
    names weights ``layer/weight``; Keras 3 ``.weights.h5`` names them by object path.
    """
    try:
        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" in group.attrs:
                shapes = {}
                for layer in group.attrs["layer_names"]:
                    layer = layer.decode() if isinstance(layer, bytes) else str(layer)
                    for weight in group[layer].attrs.get("weight_names", ()):
                        weight = weight.decode() if isinstance(weight, bytes) else str(weight)
                        shapes[f"{layer}/{weight.split('/')[-1]}"] = tuple(group[layer][weight].shape)
                return "legacy", shapes
            shapes = {}
            handle.visititems(
                lambda name, item: (
                    shapes.__setitem__(name, tuple(item.shape)) if isinstance(item, h5py.Dataset) else None
                )
            )
            return "keras3", shapes
    except (OSError, KeyError, ValueError) as error:
        raise WeightsFileError(
            f"{path.name} is not a readable Keras weights file (truncated, or another format): "
            f"{str(error).splitlines()[0][:160]}"
        ) from None


def weights_file_format(path: Path) -> str:
    """``"legacy"`` (layer-named ``.h5``) or ``"keras3"`` (``.weights.h5``); raises ``WeightsFileError``."""
    return _file_shapes(Path(path))[0]


def _expected_shapes(info: EncoderInfo, file_format: str) -> dict[str, tuple]:
    model = _application(info, _CHECK_SIZE, None)
    if file_format == "legacy":
        return {
            f"{layer.name}/{weight.path.split('/')[-1]}": tuple(weight.shape)
            for layer in model.layers
            for weight in layer.weights
        }
    with tempfile.TemporaryDirectory() as folder:
        reference = Path(folder) / "reference.weights.h5"
        model.save_weights(reference)
        return _file_shapes(reference)[1]


def _short_name(name: str) -> str:
    """A legacy weight name's ``layer:0`` suffix removed (Keras 2 wrote ``kernel:0``)."""
    return name.split(":")[0]


def check_weights_file(path: Path, encoder: str) -> int:
    """Refuse a file that does not hold ``encoder``'s weights, naming the first layer that differs.

    Returns:
        The number of weight tensors checked.

    Raises:
        WeightsFileError: a truncated or non-HDF5 file, or the first missing, extra or
            differently shaped weight.
    """
    path = Path(path)
    info = encoder_info(encoder)
    file_format, found = _file_shapes(path)
    found = {_short_name(name): shape for name, shape in found.items()}
    expected = _expected_shapes(info, file_format)
    for name, shape in expected.items():
        if name not in found:
            raise WeightsFileError(
                f"{path.name} is not a {info.application} weights file: it has no {name.split('/vars')[0]!r} "
                f"weights (it holds {len(found)} weight tensors, {info.application} needs {len(expected)})"
            )
        if found[name] != shape:
            raise WeightsFileError(
                f"{path.name} does not fit {info.application}: layer {name.rsplit('/', 1)[0]!r} "
                f"has shape {found[name]} in the file but {shape} in the encoder"
            )
    extra = next((name for name in found if name not in expected), None)
    if extra is not None:
        raise WeightsFileError(
            f"{path.name} is not a {info.application} weights file: layer {extra.rsplit('/', 1)[0]!r} "
            "is not part of it (a model with its classifier top, or another architecture?)"
        )
    try:  # the shapes fit; make sure Keras itself reads it the way training will
        _application(info, _CHECK_SIZE, str(path))
    except Exception as error:  # noqa: BLE001 - h5py and Keras raise many kinds
        raise WeightsFileError(
            f"{path.name} fits {info.application} by shape but Keras could not load it: "
            f"{str(error).splitlines()[0][:160] if str(error) else type(error).__name__}"
        ) from None
    return len(expected)
