"""``cocoseg prepare ...``: write prepared sets, dry runs, previews, listings.

``cocoseg prepare DATASET [options]`` is short for ``cocoseg prepare run DATASET``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cocoseg.cli.arguments import add_augmentation_argument, name_value_pairs
from cocoseg.cli.output import with_progress_bar, write
from cocoseg.pipeline.core import Settings, Workspace, atomic_write_bytes
from cocoseg.pipeline.data import PRESETS, RESIZE_MODES, image_png
from cocoseg.pipeline.prepare import (
    ENCODINGS,
    SAMPLING_METHODS,
    PrepareConfig,
    PrepareError,
    SamplingConfig,
    dry_run,
    list_prepared,
)
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training import augment_strengths
from cocoseg.pipeline.training.preview import augmented_examples, preview_grid

SUBCOMMANDS = ("run", "preview", "list")


def config_from_arguments(arguments) -> PrepareConfig:
    """Build the validated config (``ConfigError`` names a bad field)."""
    return PrepareConfig(
        dataset=arguments.dataset,
        splits=tuple(split.strip() for split in arguments.splits.split(",") if split.strip()),
        labels=arguments.labels,
        classes=tuple(name.strip() for name in arguments.classes.split(",")) if arguments.classes else (),
        size=arguments.size,
        resize=arguments.resize,
        encoding=arguments.encoding,
        quality=arguments.quality,
        min_labelled_area=arguments.min_area,
        shards=arguments.shards,
        workers=arguments.workers,
        sampling=SamplingConfig(arguments.sampling, arguments.threshold),
    )


def _distribution_lines(class_names, distribution: dict, top: int, note: str) -> list[str]:
    before, after = distribution["before"], distribution["after"]
    pixels_before = sum(before["pixels"]) or 1.0
    pixels_after = sum(after["pixels"]) or 1.0
    lines = [
        f"  {'class':<16} {'images':>7} {'pixels':>8} {'images*':>8} {'pixels*':>8}   "
        f"(* after {distribution['method']} sampling{note})"
    ]
    ranked = sorted(range(1, len(class_names)), key=lambda index: -before["images"][index])
    for index in ranked[:top]:
        lines.append(
            f"  {class_names[index][:16]:<16} {before['images'][index]:>7.0f} "
            f"{before['pixels'][index] / pixels_before:>8.2%} "
            f"{after['images'][index]:>8.1f} {after['pixels'][index] / pixels_after:>8.2%}"
        )
    if len(ranked) > top:
        lines.append(f"  ... {len(ranked) - top} more classes")
    lines.append(f"  images per epoch: {before['epoch_images']:.0f} -> {after['epoch_images']:.1f}")
    return lines


def command_prepare_run(arguments, settings: Settings, workspace: Workspace) -> int:
    config = config_from_arguments(arguments)
    if arguments.dry_run:
        result = dry_run(workspace, config, settings.max_annotation_bytes)
        if arguments.json:
            write(json.dumps(result))
            return 0
        names = [row["name"] for row in result["label_map"]["classes"]]
        write(
            f"dry run: would write {result['folder']}"
            f"{' (already prepared: nothing to do)' if result['exists'] else ''}"
        )
        for split, summary in result["splits"].items():
            write(
                f"{split}: {summary['images']} images "
                f"({summary['filtered_by_area']} below the labelled-area filter, "
                f"{summary['left_out_by_validation']} left out by validation)"
            )
            write(
                "\n".join(
                    _distribution_lines(
                        names, summary["distribution"], arguments.top, "; pixels from annotation areas"
                    )
                )
            )
        return 0
    prepared = with_progress_bar(
        f"preparing {config.dataset}",
        "img",
        lambda progress: prepare(workspace, config, settings.max_annotation_bytes, progress),
    )
    manifest = prepared.manifest
    names = [row["name"] for row in manifest["label_map"]["classes"]]
    write(
        f"{'reused' if prepared.reused else 'wrote'} {prepared.folder} "
        f"({manifest['label_map']['name']}, {manifest['config']['size']} px, "
        f"{manifest['config']['resize']}, {manifest['seconds']} s)"
    )
    write(f"  {'split':<8} {'examples':>8} {'shards':>6} {'MB':>7}  skipped")
    for split, summary in manifest["splits"].items():
        megabytes = sum((prepared.folder / shard).stat().st_size for shard in summary["shards"]) / 1024**2
        skipped = ", ".join(f"{reason} {count}" for reason, count in summary["skipped"].items()) or "none"
        write(
            f"  {split:<8} {summary['examples']:>8} {len(summary['shards']):>6} {megabytes:>7.1f}  {skipped}"
        )
    for split, summary in manifest["splits"].items():
        if "sampling" in summary:
            write(f"{split} class distribution:")
            write("\n".join(_distribution_lines(names, summary["sampling"], arguments.top, "")))
    return 0


def command_prepare_preview(arguments, settings: Settings, workspace: Workspace) -> int:
    config = config_from_arguments(arguments)
    pairs, label_map, file_name = augmented_examples(
        workspace,
        config,
        arguments.split,
        arguments.index,
        arguments.count,
        settings.max_annotation_bytes,
        arguments.seed,
        augment_strengths(name_value_pairs(arguments.augmentation, "augmentation")),
    )
    output = Path(arguments.out)
    atomic_write_bytes(output, image_png(preview_grid(pairs, label_map, columns=arguments.columns)))
    write(f"wrote {len(pairs)} augmentations of {file_name} to {output}")
    return 0


def command_prepare_list(arguments, settings: Settings, workspace: Workspace) -> int:
    prepared_sets = list_prepared(workspace)
    if not prepared_sets:
        write("no prepared sets yet: cocoseg prepare DATASET --labels PRESET --size 256")
    for prepared in prepared_sets:
        try:  # one unreadable set is named with its reason; the others are still listed
            manifest = prepared.manifest
        except PrepareError as error:
            write(f"{prepared.name}  unusable: {error}")
            continue
        counts = ", ".join(f"{split} {summary['examples']}" for split, summary in manifest["splits"].items())
        write(f"{prepared.name}  {manifest.get('created', '?')}  {counts}")
    return 0


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset")
    parser.add_argument("--splits", default="train,val", help="comma-separated splits (default train,val)")
    parser.add_argument(
        "--labels", choices=PRESETS, help="label map preset (default: coco80 for COCO categories, else all)"
    )
    parser.add_argument("--classes", help="comma-separated category names for --labels custom")
    parser.add_argument(
        "--size", type=int, default=256, help="square side in pixels, a multiple of 32 (default 256)"
    )
    parser.add_argument("--resize", choices=RESIZE_MODES, default="stretch")
    parser.add_argument("--encoding", choices=ENCODINGS, default="jpeg")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument(
        "--min-area",
        type=float,
        help="drop training images whose kept annotations cover no more than this many px "
        "(default: the label map's rule, voc21 1000)",
    )
    parser.add_argument("--shards", type=int, default=4, help="shards per split (default 4)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    parser.add_argument(
        "--sampling",
        choices=SAMPLING_METHODS,
        default="none",
        help="class-balanced sampling for training reads",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.1, help="repeat-factor threshold t (default 0.1)"
    )


def add_prepare_commands(commands) -> None:
    """Register ``prepare run|preview|list`` on the top-level subparsers."""
    prepare_parser = commands.add_parser(
        "prepare", help="write sharded TFRecords for training (prepare DATASET ...)"
    )
    actions = prepare_parser.add_subparsers(dest="prepare_command", required=True)
    run = actions.add_parser(
        "run", help="prepare a dataset (the default: 'prepare DATASET' means 'prepare run DATASET')"
    )
    _add_config_arguments(run)
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be written and the class distribution, write nothing",
    )
    run.add_argument("--top", type=int, default=20, help="classes to list (default 20)")
    run.add_argument("--json", action="store_true", help="with --dry-run: print JSON")
    run.set_defaults(handler=command_prepare_run)
    preview = actions.add_parser("preview", help="PNG grid of augmentations of one image")
    _add_config_arguments(preview)
    preview.add_argument("--split", default="train")
    preview.add_argument("--index", type=int, default=0, help="which valid image of the split (default 0)")
    preview.add_argument("--count", type=int, default=8)
    preview.add_argument("--columns", type=int, default=4)
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--out", required=True, help="PNG file to write")
    add_augmentation_argument(preview)
    preview.set_defaults(handler=command_prepare_preview)
    listing = actions.add_parser("list", help="prepared sets in the workspace")
    listing.set_defaults(handler=command_prepare_list)


def expand_shorthand(argv: list[str]) -> list[str]:
    """``prepare DATASET ...`` -> ``prepare run DATASET ...``."""
    for position, token in enumerate(argv):
        if token == "prepare":
            following = argv[position + 1 : position + 2]
            if following and following[0] not in SUBCOMMANDS and not following[0].startswith("-"):
                return argv[: position + 1] + ["run"] + argv[position + 1 :]
            return argv
        if not token.startswith("-"):
            return argv
    return argv
