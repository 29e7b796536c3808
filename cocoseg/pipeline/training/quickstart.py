"""Quick start: a first model within minutes of ``make run``, from the bundled demo, on a CPU.

One action prepares the demo at 128 px (voc21), trains the fastest pretrained architecture
(the MobileNetV2 UNet) on its 80 training images and exports it, so Segment, Compare and the
Annotate pre-fill have a model. It starts from ImageNet weights when they are here or can be
downloaded, and says so when they cannot. No TensorFlow here (the Home page plans it);
``recipes.run_quickstart`` runs it in a job process.
"""

from __future__ import annotations

import dataclasses

from cocoseg.errors import ConfigError
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.prepare.config import PrepareConfig, config_to_dict
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.weights import check_available

SIZE = 128
EPOCHS = 12
FROZEN_EPOCHS = 2  # ImageNet features held while the new decoder settles

# Measured on a 2-core Xeon (BENCHMARKS.md): about 4 minutes, best val mIoU 3.6 % from random weights.
EXPECTATIONS = (
    "Expect a rough first model: 80 training images at 128 px teach the background and the most "
    "frequent class (person) and little else; from random encoder weights it reaches about 4 % val "
    "mIoU over the 21 classes, with ImageNet weights more. It is for trying the workflow (Segment, "
    "Compare, Annotate with pre-fill, Fine-tune on corrections), not for real use."
)


@dataclasses.dataclass(frozen=True)
class QuickStart:
    """What the Quick start will do: its preparation, its training, and where the encoder starts."""

    prepare: dict
    train: dict
    imagenet: bool
    weights_note: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> QuickStart:
        return cls(**{field.name: payload[field.name] for field in dataclasses.fields(cls)})


def plan_quickstart(workspace: Workspace) -> QuickStart:
    """The demo's preparation and a short fine-tuning of the MobileNetV2 UNet; ImageNet when reachable."""
    try:
        source = check_available(workspace, DEFAULT_ENCODER)
        imagenet, note = (
            True,
            {
                "workspace": "ImageNet encoder weights: in the workspace.",
                "keras cache": "ImageNet encoder weights: from Keras' cache.",
                "download": "ImageNet encoder weights: downloaded once (9 MB).",
            }[source],
        )
    except ConfigError:
        imagenet = False
        note = (
            "Random encoder weights: ImageNet weights are not on this machine and cannot be downloaded, "
            "so expect a weaker model; `cocoseg weights import FILE --encoder mobilenet_v2` adds them."
        )
    options = {"encoder": DEFAULT_ENCODER, "encoder_weights": "imagenet" if imagenet else None}
    train = TrainConfig(
        "",
        model="pretrained_unet",
        model_options=options,
        epochs=EPOCHS,
        batch_size=8,
        learning_rate=1e-3,
        freeze_encoder_epochs=FROZEN_EPOCHS if imagenet else 0,
        seed=0,
    )
    prepare = PrepareConfig("demo", labels="voc21", size=SIZE, shards=2)
    return QuickStart(config_to_dict(prepare), train.to_dict(), imagenet, note)
