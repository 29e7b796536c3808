"""``cocoseg annotations list|export|register``: corrections saved from the Annotate page.

``register`` is its own subcommand (rather than ``data add --from-annotations``) so that
``data add`` keeps its two required paths and one meaning.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from cocoseg.cli.output import write
from cocoseg.pipeline.annotation import (
    EXPORT_FORMATS,
    AnnotationError,
    annotations_file,
    export_annotations,
    register_corrections,
    saved_images,
)
from cocoseg.pipeline.core import Settings, Workspace

EXIT_OK = 0
EXIT_INPUT = 3  # cocoseg.cli.EXIT_INPUT: bad input


def _one_line_errors(handler):
    """AnnotationError -> one line on stderr and exit code 3, like the other user errors."""

    @functools.wraps(handler)
    def wrapped(arguments, settings: Settings, workspace: Workspace) -> int:
        try:
            return handler(arguments, settings, workspace)
        except AnnotationError as error:
            sys.stderr.write(f"cocoseg: error: {error}\n")
            return EXIT_INPUT

    return wrapped


@_one_line_errors
def command_annotations_list(arguments, settings: Settings, workspace: Workspace) -> int:
    rows = saved_images(workspace, arguments.dataset)
    if arguments.json:
        write(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        write(
            f"no annotations saved for {arguments.dataset} yet "
            "(correct an image on the Annotate page and save it)"
        )
        return EXIT_OK
    write(f"{len(rows)} saved images in {annotations_file(workspace, arguments.dataset)}, newest first:")
    for row in rows:
        write(
            f"  {row['saved']:<29} id {row['image_id']:<6} {row['file_name']:<32} "
            f"{', '.join(row['classes']) or '-'}"
        )
    return EXIT_OK


@_one_line_errors
def command_annotations_export(arguments, settings: Settings, workspace: Workspace) -> int:
    written = export_annotations(workspace, arguments.dataset, Path(arguments.out), arguments.format)
    if arguments.format == "coco":
        write(f"wrote {written[0]}")
    else:
        write(f"wrote {len(written) - 1} class-index PNG masks and classes.json to {written[0].parent}")
    return EXIT_OK


@_one_line_errors
def command_annotations_register(arguments, settings: Settings, workspace: Workspace) -> int:
    mode = "overlay" if arguments.overlay else "dataset"
    registration = register_corrections(
        workspace, arguments.dataset, arguments.name, mode, settings.max_annotation_bytes, arguments.split
    )
    write(f"registered {registration.name} ({mode}, {registration.images} corrected images):")
    for split, path in registration.splits.items():
        write(f"  {split:<8} {path}")
    if registration.left_out:
        write(
            f"  left out (not in {arguments.dataset}): {', '.join(registration.left_out[:10])}"
            + (f" and {len(registration.left_out) - 10} more" if len(registration.left_out) > 10 else "")
        )
    splits = ",".join(registration.splits)
    write(
        f"prepare it with: cocoseg prepare {registration.name}"
        + ("" if splits == "train,val" else f" --splits {splits}")
    )
    return EXIT_OK


def add_annotation_commands(commands) -> None:
    """Register ``annotations list|export|register`` on the top-level subparsers."""
    annotations = commands.add_parser(
        "annotations", help="corrections saved from the Annotate page"
    ).add_subparsers(dest="annotations_command", required=True)
    listing = annotations.add_parser("list", help="saved images of a dataset, newest first")
    listing.add_argument("dataset")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=command_annotations_list)
    export = annotations.add_parser(
        "export", help="write the saved annotations as COCO JSON or class-index PNG masks"
    )
    export.add_argument("dataset")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="coco")
    export.add_argument("--out", required=True, help="folder to write into")
    export.set_defaults(handler=command_annotations_export)
    register = annotations.add_parser(
        "register", help="register the corrections as a dataset for cocoseg prepare"
    )
    register.add_argument("dataset")
    register.add_argument("--name", required=True, help="name of the new dataset")
    register.add_argument(
        "--overlay",
        action="store_true",
        help=(
            "the source dataset's splits with the corrected images' annotations replaced "
            "(default: the corrected images alone)"
        ),
    )
    register.add_argument(
        "--split",
        default="train",
        help="split name of the corrected images without --overlay (default train)",
    )
    register.set_defaults(handler=command_annotations_register)
