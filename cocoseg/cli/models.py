"""``cocoseg export | predict | evaluate | leaderboard | ensemble | models``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from cocoseg.cli.output import with_progress_bar, write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.inference import (
    STRATEGIES,
    VARIANTS,
    ModelError,
    delete_entry,
    get_entry,
    list_entries,
    signed_points,
)

logger = logging.getLogger(__name__)


def _percent(value) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}"


def command_export(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.pipeline.training.export import ExportConfig, export_run

    variants = () if arguments.no_variants else tuple(item for item in arguments.variants.split(",") if item)
    config = ExportConfig(
        arguments.run,
        checkpoint=arguments.checkpoint,
        variants=variants,
        evaluation_limit=arguments.evaluation_images,
    )
    entry = export_run(
        workspace,
        config,
        settings.max_annotation_bytes,
        progress=lambda step: sys.stderr.write(f"{step}...\n"),
    )
    card = entry.card
    write(f"exported {entry.name} -> {entry.folder / card['file']}")
    write(
        f"parity: max probability difference {card['parity']['max_abs_difference']:.1e}, "
        f"argmax agreement {card['parity']['argmax_agreement']:.5f}"
    )
    for variant, record in card["variants"].items():
        advice = "recommended" if record["recommended"] else "not recommended (loses more than 1 mIoU point)"
        write(
            f"{variant}: mIoU {_percent(record['miou'])} vs FP32 {_percent(record['fp32_miou'])} "
            f"({signed_points(record['miou_delta_points'], 2)} points), for {record['device']}: {advice}"
        )
    return 0


def command_predict(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.pipeline.inference import predict_folder

    entry = get_entry(workspace, arguments.model)
    output = Path(arguments.out).resolve()
    result = with_progress_bar(
        f"segmenting with {entry.name}",
        "image",
        lambda progress: predict_folder(
            entry, Path(arguments.input_dir), output, arguments.variant, arguments.overlay, progress
        ),
    )
    write(
        f"{result.images} images segmented on {result.provider} -> {output} (masks/, "
        f"{'overlays/, ' if arguments.overlay else ''}predictions.json with "
        f"{result.annotations} RLE annotations)"
    )
    for reason in result.skipped:
        write(f"skipped {reason}")
    return 1 if result.skipped else 0


def command_evaluate(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.pipeline.inference.evaluate import evaluate

    result = with_progress_bar(
        f"evaluating {arguments.model}",
        "image",
        lambda progress: evaluate(
            workspace,
            arguments.model,
            settings.max_annotation_bytes,
            arguments.dataset,
            arguments.split,
            arguments.variant,
            arguments.limit,
            progress,
        ),
    )
    if arguments.json:
        write(json.dumps(result, indent=2))
        return 0
    where = result["protocol"]
    write(
        f"{result['model']} ({result['variant']}) on {where['dataset']}/{where['split']}: "
        f"{where['images']} images at original resolution, "
        f"label map {where['label_map']}, {result['provider']}"
    )
    write(
        f"mIoU {_percent(result['miou'])}  mean Dice {_percent(result['mean_dice'])}  "
        f"pixel accuracy {_percent(result['pixel_accuracy'])}  "
        f"frequency-weighted IoU {_percent(result['frequency_weighted_iou'])}"
    )
    for name, iou, dice in zip(result["classes"], result["per_class_iou"], result["per_class_dice"]):
        write(f"  {name:<16} IoU {_percent(iou):>6}  Dice {_percent(dice):>6}")
    write(f"ignore rules: {where['ignore']}")
    return 0


def command_leaderboard(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.pipeline.inference import leaderboard

    rows = leaderboard(workspace, arguments.dataset, arguments.split)
    if arguments.json:
        write(json.dumps(rows, indent=2))
        return 0
    if not rows:
        write("no evaluations yet: cocoseg evaluate MODEL")
        return 0
    write(
        f"{'model':<40} {'kind':<9} {'variant':<7} {'data':<12} {'images':>6} "
        f"{'mIoU':>6} {'Dice':>6} {'acc':>6} {'fwIoU':>6}"
    )
    for row in rows:
        flag = "  (stale: model file changed)" if row["stale"] else ""
        write(
            f"{row['model'][:40]:<40} {row['kind']:<9} {row['variant']:<7} "
            f"{row['dataset'] + '/' + row['split']:<12} {row['images']:>6} "
            f"{_percent(row['miou']):>6} {_percent(row['mean_dice']):>6} "
            f"{_percent(row['pixel_accuracy']):>6} "
            f"{_percent(row['frequency_weighted_iou']):>6}{flag}"
        )
    return 0


def command_ensemble_create(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.pipeline.inference import create_ensemble

    entry = create_ensemble(
        workspace, arguments.name, arguments.members, arguments.strategy, settings.max_annotation_bytes
    )
    check = entry.card["fused_check"]
    weights = ", ".join(
        f"{name} {weight:.3f}" for name, weight in zip(entry.card["members"], entry.card["weights"])
    )
    write(f"ensemble {entry.name}: {arguments.strategy} of {weights}")
    write(
        f"fused graph {entry.folder / entry.card['file']} matches the members run one by one on "
        f"{check['pixel_agreement']:.4%} of pixels ({check['images']} validation images)"
    )
    write(f"evaluate it with: cocoseg evaluate {entry.name}")
    return 0


def command_models_list(arguments, settings: Settings, workspace: Workspace) -> int:
    entries = list_entries(workspace)
    if arguments.json:
        write(json.dumps([{"name": entry.name, **entry.card} for entry in entries], indent=2))
        return 0
    if not entries:
        write(
            "no models yet: train a run (cocoseg train), then cocoseg export RUN, "
            "or cocoseg models import FILE.onnx --card CARD"
        )
    for entry in entries:
        extra = (
            f"members {', '.join(entry.card['members'])} ({entry.card['strategy']})"
            if entry.kind == "ensemble"
            else f"from {entry.card['source'].get('run') or entry.card['source'].get('file')}"
        )
        write(
            f"{entry.name:<40} {entry.kind:<9} {entry.size:>4} px {entry.resize:<12} "
            f"{entry.card['label_map']['name']:<8} "
            f"{'/'.join(entry.variants()):<15} {extra}"
        )
    return 0


def command_models_import(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.pipeline.inference import import_model

    try:
        card = json.loads(Path(arguments.card).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read the card {arguments.card}: {error}") from None
    entry = import_model(workspace, Path(arguments.file), card, arguments.name)
    write(
        f"imported {entry.name}: {entry.size} px, {len(entry.card['label_map']['classes'])} classes; "
        f"evaluate it with: cocoseg evaluate {entry.name} --dataset {entry.card['source']['dataset']}"
    )
    return 0


def command_models_delete(arguments, settings: Settings, workspace: Workspace) -> int:
    delete_entry(workspace, arguments.name)
    write(f"deleted {arguments.name}")
    return 0


def add_model_commands(commands) -> None:
    export = commands.add_parser(
        "export", help="export a trained run to ONNX (+ INT8/FP16 variants), checked for parity"
    )
    export.add_argument("run")
    export.add_argument("--checkpoint", choices=("best", "last"), default="best")
    export.add_argument(
        "--variants", default="int8,fp16", help="comma-separated: int8 (CPU), fp16 (GPU); default both"
    )
    export.add_argument("--no-variants", action="store_true", help="FP32 only")
    export.add_argument(
        "--evaluation-images", type=int, help="validation images for variant deltas (default: all)"
    )
    export.set_defaults(handler=command_export)

    predict = commands.add_parser("predict", help="segment a folder of images with a model or ensemble")
    predict.add_argument("model")
    predict.add_argument("input_dir")
    predict.add_argument("--out", required=True)
    predict.add_argument("--variant", choices=VARIANTS, default="fp32")
    predict.add_argument("--overlay", action="store_true", help="also write coloured overlays")
    predict.set_defaults(handler=command_predict)

    evaluate = commands.add_parser(
        "evaluate", help="mIoU, per-class IoU, Dice, accuracy on a dataset split (through ONNX)"
    )
    evaluate.add_argument("model")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--dataset", help="registered dataset (default: the one the model was trained on)")
    evaluate.add_argument("--variant", choices=VARIANTS, default="fp32")
    evaluate.add_argument("--limit", type=int, help="only the first N images")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=command_evaluate)

    board = commands.add_parser("leaderboard", help="every evaluated model and ensemble, best first")
    board.add_argument("--split")
    board.add_argument("--dataset")
    board.add_argument("--json", action="store_true")
    board.set_defaults(handler=command_leaderboard)

    ensemble = commands.add_parser("ensemble", help="combine models").add_subparsers(
        dest="ensemble_command", required=True
    )
    create = ensemble.add_parser("create", help="fuse models into one ensemble model")
    create.add_argument("name")
    create.add_argument("--members", nargs="+", required=True)
    create.add_argument("--strategy", choices=STRATEGIES, default="mean")
    create.set_defaults(handler=command_ensemble_create)

    models = commands.add_parser("models", help="list, import and delete served models").add_subparsers(
        dest="models_command", required=True
    )
    listing = models.add_parser("list", help="exported, imported models and ensembles")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=command_models_list)
    importing = models.add_parser("import", help="register an external ONNX segmentation model")
    importing.add_argument("file")
    importing.add_argument(
        "--card",
        required=True,
        help="JSON card: labels, input size/layout/dtype/normalisation, output kind/layout",
    )
    importing.add_argument("--name")
    importing.set_defaults(handler=command_models_import)
    delete = models.add_parser("delete", help="delete a model or ensemble folder")
    delete.add_argument("name")
    delete.set_defaults(handler=command_models_delete)
