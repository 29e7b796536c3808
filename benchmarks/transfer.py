"""What starting points buy on the demo: from scratch, pretrained encoders, a weights file, fine-tuning.

In one run, on the demo prepared at 128 px (voc21), with the same epochs, seed, batch and CPU:

1. a UNet from scratch (the parent of row 5);
2. the MobileNetV2 UNet and 3. DeepLabV3+ on MobileNetV2, both with random encoder weights;
4. the MobileNetV2 UNet from a weights file: Keras' ImageNet file when it is on this machine or
   downloadable, else a file this benchmark writes (random weights: it then measures the
   plumbing of ``weights import`` and the run, not ImageNet; the table says which);
5. a correction round (``training.correction_job``): 10 train images' corrections (their own
   ground truth, as a careful annotator would draw it) laid over the demo, the UNet fine-tuned
   from row 1 for a third of its epochs; against
6. the same UNet trained from scratch on the same corrected data for all the epochs.

Reported: best val mIoU (training-time evaluation on the prepared val split) and the training
wall time; for row 5 also the epoch at which it first matched its parent's best.

Usage: python benchmarks/transfer.py [--epochs 6] [--size 128] [--corrections 10]
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
from cocoseg.pipeline.prepare.config import PrepareConfig  # noqa: E402
from cocoseg.pipeline.prepare.writer import prepare  # noqa: E402
from cocoseg.pipeline.training.config import TrainConfig  # noqa: E402
from cocoseg.pipeline.training.correction_job import run_round  # noqa: E402
from cocoseg.pipeline.training.corrections import plan_round  # noqa: E402
from cocoseg.pipeline.training.export import ExportConfig, export_run  # noqa: E402
from cocoseg.pipeline.training.loop import run  # noqa: E402
from cocoseg.pipeline.training.weights import check_available  # noqa: E402

LIMIT = 1 << 30


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


def _correct(workspace: Workspace, count: int) -> None:
    """Save ``count`` train images' own voc21 masks as corrections of the demo."""
    data = read_coco_json(DEMO_DATASET_DIR / "annotations" / "instances_train2017.json", LIMIT)
    label_map = build_label_map("voc21", data["categories"])
    for image in data["images"][:count]:
        annotations = [item for item in data["annotations"] if item["image_id"] == image["id"]]
        mask = semantic_mask(annotations, image["height"], image["width"], label_map)
        picture = {
            "file_name": image["file_name"],
            "width": image["width"],
            "height": image["height"],
            "source": str(DEMO_DATASET_DIR / "train2017" / image["file_name"]),
        }
        save_image(workspace, "demo", picture, mask, label_map, open_annotations(workspace, "demo")[1], LIMIT)


def run_benchmark(epochs: int, size: int, corrections: int) -> dict:
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="cocoseg-transfer-")) / "workspace").ensure()
    prepared = prepare(workspace, PrepareConfig("demo", labels="voc21", size=size, shards=2), LIMIT)
    base = TrainConfig(
        prepared.name, epochs=epochs, batch_size=8, learning_rate=1e-3, seed=0, augment=True, model="unet"
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
    _correct(workspace, corrections)
    child_epochs = max(1, math.ceil(epochs / 3))
    started = time.perf_counter()
    round_result = run_round(workspace, plan_round(workspace, parent["run"], "demo", child_epochs), LIMIT)
    round_seconds = time.perf_counter() - started
    from cocoseg.pipeline.jobs.registry import get_run

    child_run = get_run(workspace, round_result["run"])
    child_history = [row["val_miou"] for row in child_run.history()]
    reached = next(
        (index + 1 for index, value in enumerate(child_history) if value >= parent["best_miou"]), None
    )
    rows[f"fine-tuned from row 1 on +{corrections} corrections"] = {
        "run": child_run.name,
        "status": child_run.status().get("status"),
        "best_miou": max(child_history),
        "seconds": sum(row["seconds"] for row in child_run.history()),
        "round_seconds": round_seconds,
        "history": child_history,
        "epochs_to_parent": reached,
        "note": f"{child_epochs} epochs; the whole round (overlay, prepare, train, export, 2 evaluations) "
        f"took {round_seconds:.0f} s",
    }
    corrected = dataclasses.replace(base, prepared=round_result["prepared"])
    rows[f"unet from scratch on the same +{corrections}"] = _train(workspace, corrected)
    return {
        "machine": machine_description(),
        "epochs": epochs,
        "size": size,
        "imagenet": real,
        "rows": rows,
    }


def format_table(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; demo at {results['size']} px (voc21), {results['epochs']} epochs, "
        "seed 0, batch 8, lr 1e-3, augmentation on.",
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
    parser.add_argument("--epochs", type=int, default=6)
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
