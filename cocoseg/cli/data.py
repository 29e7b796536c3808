"""``cocoseg data add | remove | list | validate | stats | export-masks``: register, check, describe.

``data validate`` exits 1 when it finds errors (``cocoseg.cli.EXIT_PROBLEMS``).
"""

from __future__ import annotations

import json
from pathlib import Path

from cocoseg.cli.output import with_progress_bar, write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.data import (
    CROWD_POLICIES,
    OVERLAP_POLICIES,
    PRESETS,
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

EXIT_OK = 0
EXIT_PROBLEMS = 1  # cocoseg.cli.EXIT_PROBLEMS: the command ran and found problems


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


def add_data_commands(commands) -> None:
    """Register ``data add|remove|list|validate|stats|export-masks`` on the top-level subparsers."""
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
