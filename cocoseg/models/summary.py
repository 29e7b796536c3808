"""Parameters and FLOPs of a model, as the UI and benchmarks report them.

FLOPs are counted by TensorFlow's profiler on the model's inference graph for one
image (multiply and add counted separately, so a 3x3 convolution costs
2 * 9 * C_in * C_out per output pixel).
"""

from __future__ import annotations

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    name: str
    parameters: int
    flops_per_image: int
    input_size: int

    @property
    def gflops(self) -> float:
        return self.flops_per_image / 1e9


def summarise(model: keras.Model) -> ModelSummary:
    """Parameters and inference FLOPs per image of a built model."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    size = int(model.input.shape[1])
    function = tf.function(lambda image: model(image, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((1, size, size, 3), tf.uint8))
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
    )
    return ModelSummary(model.name, int(model.count_params()), int(profile.total_float_ops), size)
