"""What starting points buy on the demo: from scratch, pretrained encoders, a weights file, fine-tuning.

The data is the demo with the labels of 10 train images missing (the ten with the most person
area, their annotations dropped: COCO's most common label error, and what a correction round
exists to fix), registered as ``demo-missing``, prepared at 128 px with one class, person,
against background: 80 images teach a from-scratch model next to nothing about VOC's 20 or
COCO's 80 classes (every start sat at the all-background floor, 3-4 % mIoU), so nothing could be
ranked. In one run, with the same epochs, seed, batch, loss (cross-entropy + Dice) and CPU:

1. a UNet from scratch (the parent of row 5);
2. the MobileNetV2 UNet and 3. DeepLabV3+ on MobileNetV2, both with random encoder weights;
4. the MobileNetV2 UNet from a weights file: Keras' ImageNet file when it is on this machine or
   downloadable, else a file this benchmark writes (random weights: it then measures the
   plumbing of ``weights import`` and the run, not ImageNet; the table says which);
5. a correction round (``training.correction_job``): the 10 images corrected (their COCO masks,
   as a careful annotator would draw them) and saved on Annotate's store, laid over
   ``demo-missing``, the UNet fine-tuned from row 1 for a third of its epochs with the round's
   own settings; against
6. the same UNet trained from scratch on the same corrected data for all the epochs.

Reported: best val mIoU (training-time evaluation on the prepared val split, the demo's 80 val
images) and the training wall time; for row 5 also the epoch at which it first matched its
parent's best.

Usage: python benchmarks/transfer.py [--epochs 24] [--size 128] [--corrections 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.coco_scale import machine_description  # noqa: E402
from cocoseg.errors import ConfigError  # noqa: E402
from cocoseg.pipeline.annotation.store import open_annotations, save_image  # noqa: E402
from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR  # noqa: E402
from cocoseg.pipeline.core.workspace import Workspace  # noqa: E402
from cocoseg.pipeline.data.coco import read_coco_json  # noqa: E402
from cocoseg.pipeline.data.labels import build_label_map  # noqa: E402
from cocoseg.pipeline.data.masks import semantic_mask  # noqa: E402
from cocoseg.pipeline.data.registry import add_dataset  # noqa: E402
from cocoseg.pipeline.prepare.config import PrepareConfig  # noqa: E402
from cocoseg.pipeline.prepare.writer import prepare  # noqa: E402
from cocoseg.pipeline.training.config import TrainConfig  # noqa: E402
from cocoseg.pipeline.training.correction_job import run_round  # noqa: E402
from cocoseg.pipeline.training.corrections import plan_round  # noqa: E402
from cocoseg.pipeline.training.export import ExportConfig, export_run  # noqa: E402
from cocoseg.pipeline.training.loop import run  # noqa: E402
from cocoseg.pipeline.training.weights import check_available  # noqa: E402

LIMIT = 1 << 30
DATASET = "demo-missing"
CLASSES = ("person",)
TRAIN_JSON = DEMO_DATASET_DIR / "annotations" / "instances_train2017.json"


def _train(workspace: Workspace, config: TrainConfig) -> dict:
    started = time.perf_counter()
    outcome = run(workspace, config)
    return {
        "run": outcome.folder.name,
        "status": outcome.status,
        "best_miou": outcome.best_miou,
        "seconds": time.perf_counter() - started,
        "history": [row["val_miou"] for row in outcome.folder.history()],
    }


def _weights_file(workspace: Workspace) -> tuple[str, bool]:
    """Real ImageNet weights when reachable; else a random file imported as if carried in."""
    try:
        check_available(workspace, "mobilenet_v2")
        return "ImageNet (Keras Applications file)", True
    except ConfigError:
        pass
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from cocoseg.pipeline.training.weights_import import import_weights

    keras.utils.set_random_seed(1)
    stand_in = keras.applications.MobileNetV2((128, 128, 3), include_top=False, weights=None)
    path = Path(tempfile.mkdtemp()) / "mobilenet_v2_notop.h5"
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, stand_in)
    import_weights(workspace, path, "mobilenet_v2")
    return "a random stand-in file (ImageNet unreachable here: plumbing only)", False


def _held_back(data: dict, count: int) -> list[dict]:
    """The ``count`` train images with the most person area: the labels a correction round restores."""
    person = {item["id"] for item in data["categories"] if item["name"] in CLASSES}
    area: dict[int, float] = {}
    for item in data["annotations"]:
        if item["category_id"] in person:
            area[item["image_id"]] = area.get(item["image_id"], 0.0) + float(item["area"])
    return sorted(data["images"], key=lambda image: -area.get(image["id"], 0.0))[:count]


def _register_missing(workspace: Workspace, held_back: list[dict]) -> None:
    """``demo-missing``: the demo with the held-back images' annotations dropped (the images stay)."""
    data = read_coco_json(TRAIN_JSON, LIMIT)
    dropped = {image["id"] for image in held_back}
    data["annotations"] = [item for item in data["annotations"] if item["image_id"] not in dropped]
    path = workspace.root / "demo-missing-train.json"
    path.write_text(json.dumps(data))
    add_dataset(workspace, DATASET, path, DEMO_DATASET_DIR / "train2017", "train")
    add_dataset(
        workspace,
        DATASET,
        DEMO_DATASET_DIR / "annotations" / "instances_val2017.json",
        DEMO_DATASET_DIR / "val2017",
        "val",
    )


def _correct(workspace: Workspace, held_back: list[dict]) -> None:
    """Save the held-back images' own masks as corrections of ``demo-missing``, as Annotate saves them."""
    data = read_coco_json(TRAIN_JSON, LIMIT)
    label_map = build_label_map("custom", data["categories"], CLASSES)
    for image in held_back:
        annotations = [item for item in data["annotations"] if item["image_id"] == image["id"]]
        mask = semantic_mask(annotations, image["height"], image["width"], label_map)
        picture = {
            "file_name": image["file_name"],
            "width": image["width"],
            "height": image["height"],
            "source": str(DEMO_DATASET_DIR / "train2017" / image["file_name"]),
        }
        version = open_annotations(workspace, DATASET)[1]
        save_image(workspace, DATASET, picture, mask, label_map, version, LIMIT)


def run_benchmark(epochs: int, size: int, corrections: int) -> dict:
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="cocoseg-transfer-")) / "workspace").ensure()
    held_back = _held_back(read_coco_json(TRAIN_JSON, LIMIT), corrections)
    _register_missing(workspace, held_back)
    prepared = prepare(
        workspace, PrepareConfig(DATASET, labels="custom", classes=CLASSES, size=size, shards=2), LIMIT
    )
    base = TrainConfig(
        prepared.name,
        epochs=epochs,
        batch_size=8,
        learning_rate=1e-3,
        seed=0,
        augment=True,
        model="unet",
        loss="cross_entropy_dice",
    )
    rows = {}
    rows["unet from scratch"] = _train(workspace, base)
    for label, model in (
        ("MobileNetV2 UNet, random encoder", "pretrained_unet"),
        ("DeepLabV3+, random encoder", "deeplabv3_plus"),
    ):
        rows[label] = _train(
            workspace, dataclasses.replace(base, model=model, model_options={"encoder_weights": None})
        )
    source, real = _weights_file(workspace)
    rows["MobileNetV2 UNet, weights file"] = {
        **_train(
            workspace,
            dataclasses.replace(base, model="pretrained_unet", model_options={"encoder_weights": "imagenet"}),
        ),
        "note": source,
    }
    parent = rows["unet from scratch"]
    export_run(workspace, ExportConfig(parent["run"], variants=()), LIMIT)
    _correct(workspace, held_back)
    child_epochs = max(1, math.ceil(epochs / 3))
    started = time.perf_counter()
    plan = plan_round(workspace, parent["run"], DATASET, child_epochs)
    round_result = run_round(workspace, plan, LIMIT)
    round_seconds = time.perf_counter() - started
    from cocoseg.pipeline.jobs.registry import get_run

    child_run = get_run(workspace, round_result["run"])
    child_history = [row["val_miou"] for row in child_run.history()]
    reached = next(
        (index + 1 for index, value in enumerate(child_history) if value >= parent["best_miou"]), None
    )
    rows[f"fine-tuned from row 1 on the {corrections} corrections"] = {
        "run": child_run.name,
        "status": child_run.status().get("status"),
        "best_miou": max(child_history),
        "seconds": sum(row["seconds"] for row in child_run.history()),
        "round_seconds": round_seconds,
        "history": child_history,
        "epochs_to_parent": reached,
        "learning_rate": plan.train["learning_rate"],
        "note": f"{child_epochs} epochs at lr {plan.train['learning_rate']:g}; the whole round "
        f"(overlay, prepare, train, export, 2 evaluations) took {round_seconds:.0f} s",
    }
    corrected = dataclasses.replace(base, prepared=round_result["prepared"])
    rows["unet from scratch on the corrected data"] = _train(workspace, corrected)
    return {
        "machine": machine_description(),
        "epochs": epochs,
        "size": size,
        "imagenet": real,
        "rows": rows,
    }


def format_table(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; {DATASET} at {results['size']} px (person against background), "
        f"{results['epochs']} epochs, seed 0, batch 8, lr 1e-3, cross-entropy + Dice, augmentation on.",
        "",
        "| Start | Best val mIoU % | Training s | Note |",
        "|---|---:|---:|---|",
    ]
    for label, row in results["rows"].items():
        note = row.get("note", "")
        if row.get("epochs_to_parent") is not None:
            note += f"; matched the parent's best at epoch {row['epochs_to_parent']}"
        elif "epochs_to_parent" in row:
            note += "; did not reach the parent's best"
        lines.append(
            f"| {label} | {row['best_miou'] * 100:.2f} | {row['seconds']:.0f} | {note.strip('; ')} |"
        )
    if not results["imagenet"]:
        lines += [
            "",
            "ImageNet weights could not be reached from this machine: the ImageNet row is unmeasured.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--corrections", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    arguments = parser.parse_args()
    results = run_benchmark(arguments.epochs, arguments.size, arguments.corrections)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
