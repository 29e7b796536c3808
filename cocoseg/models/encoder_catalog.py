"""The pretrained encoders: which Keras Applications model, where its features are, and its weights file.

TF-free so the web form, the weights cache and the CLI can list encoders and find weights
without importing Keras. ``cocoseg.models.encoders`` builds them; ``tests/models`` checks
that every feature layer named here exists at the stride it claims.
"""

from __future__ import annotations

import dataclasses

from cocoseg.errors import ConfigError

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class EncoderInfo:
    """One ImageNet classification backbone used as a segmentation encoder.

    Attributes:
        application: the ``keras.applications`` constructor.
        features: layers whose outputs are at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input.
        input_range: ``"minus_one_to_one"`` or ``"zero_to_255"`` (the model then normalises itself).
        weights_file: the file name of Keras' ImageNet weights without the classifier top.
        weights_path: that file's path under ``KERAS_APPLICATIONS_URL``.
        md5: the file's digest as Keras publishes it ("" where Keras checks none).
        megabytes: the download size, to say what a first run costs.
    """

    name: str
    label: str
    application: str
    features: tuple[str, str, str, str, str]
    input_range: str
    weights_file: str
    weights_path: str
    md5: str
    megabytes: int

    @property
    def url(self) -> str:
        return KERAS_APPLICATIONS_URL + self.weights_path


ENCODERS: dict[str, EncoderInfo] = {
    info.name: info
    for info in (
        EncoderInfo(
            "mobilenet_v2",
            "MobileNetV2 (2.3 M parameters, fastest)",
            "MobileNetV2",
            (
                "block_1_expand_relu",
                "block_3_expand_relu",
                "block_6_expand_relu",
                "block_13_expand_relu",
                "out_relu",
            ),
            "minus_one_to_one",
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            "",
            9,
        ),
        EncoderInfo(
            "efficientnetv2_b0",
            "EfficientNetV2-B0 (5.9 M parameters)",
            "EfficientNetV2B0",
            ("block1a_project_activation", "block2b_add", "block3b_add", "block5e_add", "top_activation"),
            "zero_to_255",
            "efficientnetv2-b0_notop.h5",
            "efficientnet_v2/efficientnetv2-b0_notop.h5",
            "893217f2bb855e2983157299931e43ff",
            24,
        ),
        EncoderInfo(
            "resnet50v2",
            "ResNet50V2 (23.6 M parameters, strongest, slowest)",
            "ResNet50V2",
            ("conv1_conv", "conv2_block3_1_relu", "conv3_block4_1_relu", "conv4_block6_1_relu", "post_relu"),
            "minus_one_to_one",
            "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "fac2f116257151a9d068a22e544a4917",
            91,
        ),
    )
}

DEFAULT_ENCODER = "mobilenet_v2"


def encoder_info(name: str) -> EncoderInfo:
    try:
        return ENCODERS[name]
    except KeyError:
        raise ConfigError("encoder", f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}") from None
