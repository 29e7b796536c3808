"""``cocoseg`` command line: thin calls into the pipeline modules.

Exit codes scripts can rely on:
    0  success
    1  the command ran and found problems (``data validate`` with errors)
    2  wrong usage (unknown command or option)
    3  bad input: unknown dataset, unreadable file, invalid name or label map
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cocoseg.cli.annotations import add_annotation_commands
from cocoseg.cli.doctor import add_doctor_command
from cocoseg.cli.jobs import add_job_commands
from cocoseg.cli.models import add_model_commands
from cocoseg.cli.output import with_progress_bar, write
from cocoseg.cli.prepare import add_prepare_commands, expand_shorthand
from cocoseg.cli.rank import add_rank_command
from cocoseg.cli.train import add_train_commands
from cocoseg.cli.weights import add_weights_commands
from cocoseg.cli.worker import add_worker_command
from cocoseg.pipeline.core import BusyError, ConfigError, Settings, UnsafePathError, Workspace, get_settings
from cocoseg.pipeline.data import (
    CROWD_POLICIES,
    OVERLAP_POLICIES,
    PRESETS,
    CocoFileError,
    ExportError,
    LabelMapError,
    RegistryError,
    add_dataset,
    add_image_folder,
    build_label_map,
    dataset_stats,
    default_label_map,
    export_masks,
    get_dataset,
    list_datasets,
    load_split,
    remove_dataset,
    split_report,
)
from cocoseg.pipeline.data.validation import report_lines
from cocoseg.pipeline.inference import EvaluationError, InferenceInputError, ModelError, RankingError
from cocoseg.pipeline.jobs import RunError
from cocoseg.pipeline.prepare import PrepareError

logger = logging.getLogger("cocoseg")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INTERRUPTED = 130

USER_ERRORS = (
    RegistryError,
    CocoFileError,
    LabelMapError,
    UnsafePathError,
    ExportError,
    PrepareError,
    RunError,
    ConfigError,
    ModelError,
    EvaluationError,
    InferenceInputError,
    RankingError,
    BusyError,
)


def _splits(entry, split: str | None) -> list[str]:
    return [split] if split else list(entry.splits)


# --- data add / list -------------------------------------------------------------


def command_data_add(arguments, settings: Settings, workspace: Workspace) -> int:
    if arguments.annotations is None:
        entry = add_image_folder(
            workspace,
            arguments.name,
            Path(arguments.images),
            split=arguments.split,
            replace=arguments.replace,
        )
        write(
            f"registered {entry.name}/{arguments.split} as unlabelled images (no annotations); "
            f"check its files with: cocoseg data validate {entry.name} --split {arguments.split}"
        )
        return EXIT_OK
    entry = with_progress_bar(
        f"checking {Path(arguments.annotations).name}",
        "B",
        lambda progress: add_dataset(
            workspace,
            arguments.name,
            Path(arguments.annotations),
            Path(arguments.images),
            split=arguments.split,
            replace=arguments.replace,
            max_bytes=settings.max_annotation_bytes,
            check=not arguments.no_check,
            progress=progress,
        ),
    )
    write(f"registered {entry.name}/{arguments.split}; check it with: cocoseg data validate {entry.name}")
    return EXIT_OK


def command_data_remove(arguments, settings: Settings, workspace: Workspace) -> int:
    remove_dataset(workspace, arguments.name)
    write(f"forgot dataset {arguments.name} (its files are untouched)")
    return EXIT_OK


def command_data_list(arguments, settings: Settings, workspace: Workspace) -> int:
    entries = list_datasets(workspace)
    if arguments.json:
        write(
            json.dumps(
                [
                    {
                        "name": entry.name,
                        "builtin": entry.builtin,
                        "splits": {
                            name: {"annotations": str(split.annotations), "images": str(split.images)}
                            for name, split in entry.splits.items()
                        },
                    }
                    for entry in entries
                ],
                indent=2,
            )
        )
        return EXIT_OK
    for entry in entries:
        write(f"{entry.name}{' (bundled)' if entry.builtin else ''}")
        for name, split in entry.splits.items():
            write(f"  {name:<8} {split.annotations}  images: {split.images}")
    return EXIT_OK


# --- data validate ---------------------------------------------------------------


format_report = report_lines  # the lines the add-dataset form shows too (pipeline.data.validation)


def command_data_validate(arguments, settings: Settings, workspace: Workspace) -> int:
    entry = get_dataset(workspace, arguments.name)
    worst = EXIT_OK
    payload = {}
    for split in _splits(entry, arguments.split):
        report = with_progress_bar(
            f"checking {entry.name}/{split} images",
            "img",
            lambda progress, split=split: split_report(
                workspace, entry, split, settings.max_annotation_bytes, progress
            ),
        )
        payload[split] = report.to_dict()
        if not arguments.json:
            write("\n".join(format_report(f"{entry.name}/{split}", report)))
        if report.errors:
            worst = EXIT_PROBLEMS
    if arguments.json:
        write(json.dumps(payload, indent=2))
    return worst


# --- data stats --------------------------------------------------------------------


def format_stats(title: str, stats: dict, top: int) -> list[str]:
    totals = stats["totals"]
    sizes = stats["image_sizes"]
    per_image = stats["objects_per_image"]
    images_total = max(totals["images"], 1)
    mean_objects = sum(count * objects for objects, count in enumerate(per_image)) / images_total
    lines = [
        f"{title}: {totals['images']} images, "
        f"{totals['annotations_used']}/{totals['annotations']} annotations used, "
        f"{totals['crowd']} crowd, {totals['categories']} categories, label map {stats['label_map']['name']} "
        f"({len(stats['classes'])} classes){' [cached]' if stats.get('cached') else ''}",
        f"  image width {sizes['width']['min']}-{sizes['width']['max']} "
        f"(median {sizes['width']['median']:g}), "
        f"height {sizes['height']['min']}-{sizes['height']['max']} (median {sizes['height']['median']:g}), "
        f"{len(sizes['sizes'])} distinct sizes",
        f"  objects per image: mean {mean_objects:.1f}, max {max(len(per_image) - 1, 0)}; "
        f"background {stats['classes'][0]['pixel_share']:.1%} of pixels, ignore {stats['ignore_share']:.1%}",
    ]
    if totals["skipped"]:
        lines.append(
            "  skipped annotations: "
            + ", ".join(f"{code} {count}" for code, count in sorted(totals["skipped"].items()))
        )
    if not totals["annotations"]:
        lines.append("  no annotations: nothing to count per class")
        return lines
    lines.append(
        f"  {'class':<16} {'instances':>9} {'crowd':>6} {'images':>7} {'pixels':>7} "
        f"{'small':>7} {'medium':>7} {'large':>7}"
    )
    ranked = sorted(stats["classes"][1:], key=lambda row: -row["instances"])
    for row in ranked[:top]:
        lines.append(
            f"  {row['name'][:16]:<16} {row['instances']:>9} {row['crowd']:>6} {row['images']:>7} "
            f"{row['pixel_share']:>7.2%} "
            f"{row['small']:>7} {row['medium']:>7} {row['large']:>7}"
        )
    if len(ranked) > top:
        lines.append(f"  ... {len(ranked) - top} more classes (--top N, or --json for all)")
    lines.append(f"  pixel shares measured on {stats['resolution']}x{stats['resolution']} masks per image")
    return lines


def command_data_stats(arguments, settings: Settings, workspace: Workspace) -> int:
    entry = get_dataset(workspace, arguments.name)
    names = tuple(name.strip() for name in arguments.classes.split(",")) if arguments.classes else ()
    payload = {}
    for split in _splits(entry, arguments.split):
        source = entry.split(split)
        stats = with_progress_bar(
            f"statistics {entry.name}/{split}",
            "B",
            lambda progress, source=source: dataset_stats(
                workspace,
                source.annotations,
                settings.max_annotation_bytes,
                arguments.labels,
                names,
                progress,
            ),
        )
        payload[split] = stats
        if not arguments.json:
            write("\n".join(format_stats(f"{entry.name}/{split}", stats, arguments.top)))
    if arguments.json:
        write(json.dumps(payload))
    return EXIT_OK


# --- data export-masks -----------------------------------------------------------------


def command_data_export_masks(arguments, settings: Settings, workspace: Workspace) -> int:
    entry = get_dataset(workspace, arguments.name)
    names = tuple(name.strip() for name in arguments.classes.split(",")) if arguments.classes else ()
    for split in _splits(entry, arguments.split):
        dataset = load_split(entry, split, settings.max_annotation_bytes)
        if arguments.labels:
            label_map = build_label_map(arguments.labels, dataset.categories, names)
        else:
            label_map = default_label_map(dataset.categories)
        label_map = label_map.with_protocol(crowd=arguments.crowd, overlap=arguments.overlap)
        output = (
            Path(arguments.out) / split
            if not arguments.split and len(entry.splits) > 1
            else Path(arguments.out)
        )
        summary = with_progress_bar(
            f"masks {entry.name}/{split}",
            "img",
            lambda progress, dataset=dataset, output=output, label_map=label_map: export_masks(
                dataset, label_map, output, progress
            ),
        )
        note = (
            f" ({summary.skipped_images} images left out: see cocoseg data validate {entry.name})"
            if summary.skipped_images
            else ""
        )
        write(
            f"{entry.name}/{split}: wrote {summary.written} masks and classes.json to {summary.output}{note}"
        )
    return EXIT_OK


# --- serve -------------------------------------------------------------------------------


def command_serve(arguments, settings: Settings, workspace: Workspace) -> int:
    # the web stack is only imported for this command
    from cocoseg.app import access, serving
    from cocoseg.app.main import create_app

    if not 1 <= arguments.port <= 65535:
        raise RegistryError(f"port must be between 1 and 65535, got {arguments.port}")
    policy = access.access_policy(
        arguments.host, arguments.port, settings, token_required=arguments.token_required
    )
    app = create_app(workspace, policy, host=arguments.host)
    server = (
        "Werkzeug (development server)" if arguments.dev else f"waitress, {settings.server_threads} threads"
    )
    token = "" if policy.token is None else ", token required"
    write(f"cocoseg serving {workspace.root} on {arguments.host}:{arguments.port} ({server}{token})")
    for url in access.login_urls(policy, arguments.host, arguments.port):
        write(f"    {url}")
    sys.stdout.flush()
    serving.run(app, arguments.host, arguments.port, settings, dev=arguments.dev)
    return EXIT_OK


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cocoseg", description="Semantic segmentation studio for COCO datasets."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web app")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; 0.0.0.0 opens it to the network)",
    )
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument(
        "--token-required",
        action="store_true",
        help="require the access token on a loopback address too (always required beyond loopback)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="Werkzeug's development server instead of waitress (debug stays off)",
    )
    serve.set_defaults(handler=command_serve)

    data = commands.add_parser("data", help="register, check and describe datasets").add_subparsers(
        dest="data_command", required=True
    )
    add = data.add_parser(
        "add", help="register a COCO dataset split, or a folder of images without annotations"
    )
    add.add_argument("name")
    add.add_argument(
        "--annotations",
        help="COCO instances JSON file; leave it out to register the images as an unlabelled split",
    )
    add.add_argument("--images", required=True, help="folder holding the images")
    add.add_argument("--split", default="train")
    add.add_argument("--replace", action="store_true", help="point an existing split elsewhere")
    add.add_argument(
        "--no-check",
        action="store_true",
        help="skip the streaming pass that confirms the file is COCO JSON (for files you know are sound)",
    )
    add.set_defaults(handler=command_data_add)

    remove = data.add_parser("remove", help="forget a registered dataset (its files stay)")
    remove.add_argument("name")
    remove.set_defaults(handler=command_data_remove)

    listing = data.add_parser("list", help="registered datasets")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=command_data_list)

    validate = data.add_parser(
        "validate", help="check annotations and image files; exit 1 if errors are found"
    )
    validate.add_argument("name")
    validate.add_argument("--split")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(handler=command_data_validate)

    stats = data.add_parser("stats", help="class distribution, pixel share, sizes, co-occurrence")
    stats.add_argument("name")
    stats.add_argument("--split")
    stats.add_argument(
        "--labels", choices=PRESETS, help="label map preset (default: coco80 for COCO categories, else all)"
    )
    stats.add_argument("--classes", help="comma-separated category names for --labels custom")
    stats.add_argument("--top", type=int, default=20, help="classes to list (default 20)")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=command_data_stats)

    export = data.add_parser("export-masks", help="one class-index PNG per image plus classes.json")
    export.add_argument("name")
    export.add_argument("--labels", choices=PRESETS)
    export.add_argument("--classes", help="comma-separated category names for --labels custom")
    export.add_argument("--split")
    export.add_argument("--out", required=True)
    export.add_argument(
        "--crowd", choices=CROWD_POLICIES, help="crowd regions: ignore (255, default) or paint their class"
    )
    export.add_argument(
        "--overlap",
        choices=OVERLAP_POLICIES,
        help=(
            "overlapping instances: ignore-different (255 where classes differ, default), "
            "ignore-any, larger-first"
        ),
    )
    export.set_defaults(handler=command_data_export_masks)

    add_prepare_commands(commands)
    add_train_commands(commands)
    add_model_commands(commands)
    add_worker_command(commands)
    add_annotation_commands(commands)
    add_job_commands(commands)
    add_weights_commands(commands)
    add_rank_command(commands)
    add_doctor_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cocoseg`` console script."""
    try:
        settings = get_settings()
    except ValueError as error:
        sys.stderr.write(f"cocoseg: configuration error: {error}\n")
        return EXIT_INPUT
    arguments = build_parser(settings).parse_args(
        expand_shorthand(list(sys.argv[1:] if argv is None else argv))
    )
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    workspace = Workspace(settings.home)
    try:
        return arguments.handler(arguments, settings, workspace)
    except USER_ERRORS as error:
        sys.stderr.write(f"cocoseg: error: {error}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("cocoseg: interrupted\n")
        return EXIT_INTERRUPTED
