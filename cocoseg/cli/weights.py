"""``cocoseg weights list | import | download``: pretrained encoder weights, offline and online."""

from __future__ import annotations

import sys
from pathlib import Path

from cocoseg.cli.output import with_progress_bar, write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.training import ENCODERS
from cocoseg.pipeline.training.weights import download, keras_cache_file, workspace_file

EXIT_INPUT = 3


def command_weights_list(arguments, settings: Settings, workspace: Workspace) -> int:
    for name, info in ENCODERS.items():
        found = workspace_file(workspace, name)
        cached = keras_cache_file(info)
        where = (
            f"workspace ({found})"
            if found
            else f"Keras cache ({cached})"
            if cached
            else f"not here: downloaded on first use ({info.megabytes} MB) or `cocoseg weights import`"
        )
        write(f"{name:18} {info.label:52} {where}")
    return 0


def command_weights_import(arguments, settings: Settings, workspace: Workspace) -> int:
    from cocoseg.models.encoders import WeightsFileError
    from cocoseg.pipeline.training.weights_import import import_weights

    try:
        kept, checked = import_weights(workspace, Path(arguments.file), arguments.encoder)
    except (WeightsFileError, OSError) as error:
        sys.stderr.write(f"cocoseg: error: {error}\n")
        return EXIT_INPUT
    write(f"imported {arguments.file} as the ImageNet weights of {arguments.encoder} -> {kept}")
    write(f"  {checked} weight tensors checked; ImageNet weights for this encoder now work offline")
    return 0


def command_weights_download(arguments, settings: Settings, workspace: Workspace) -> int:
    if found := workspace_file(workspace, arguments.encoder):
        write(f"already here: {found}")
        return 0
    kept = with_progress_bar(
        f"downloading {arguments.encoder}",
        "B",
        lambda progress: download(workspace, arguments.encoder, progress),
    )
    write(f"downloaded the ImageNet weights of {arguments.encoder} -> {kept}")
    return 0


def add_weights_commands(commands) -> None:
    """Register ``weights list | import | download`` on the top-level subparsers."""
    weights = commands.add_parser("weights", help="pretrained encoder weights (ImageNet)").add_subparsers(
        dest="weights_command", required=True
    )
    weights.add_parser("list", help="each encoder and where its weights are").set_defaults(
        handler=command_weights_list
    )
    carried = weights.add_parser(
        "import", help="check a carried-in Keras weights file (.h5 / .weights.h5) and keep it for offline use"
    )
    carried.add_argument(
        "file", help="the weights file (Keras Applications' *_notop.h5, or save_weights output)"
    )
    carried.add_argument("--encoder", required=True, choices=tuple(ENCODERS))
    carried.set_defaults(handler=command_weights_import)
    fetch = weights.add_parser("download", help="fetch the ImageNet weights now, into the workspace")
    fetch.add_argument("--encoder", required=True, choices=tuple(ENCODERS))
    fetch.set_defaults(handler=command_weights_download)
