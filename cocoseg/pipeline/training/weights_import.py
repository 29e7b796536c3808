"""``cocoseg weights import``: take in a weights file carried to an offline machine, after checking it.

The file is copied into ``<workspace>/weights`` under a temporary name, checked layer by layer
against the encoder (``models.encoders.check_weights_file``, which builds it: TensorFlow, so
the CLI imports this module by path), and only then renamed into place. A refused file
leaves nothing behind and an earlier good file untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cocoseg.models.encoder_catalog import encoder_info
from cocoseg.models.encoders import WeightsFileError, check_weights_file, weights_file_format
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.training.weights import SUFFIXES, workspace_file


def import_weights(workspace: Workspace, source: Path, encoder: str) -> tuple[Path, int]:
    """Check ``source`` against ``encoder`` and keep it as the workspace's ImageNet weights.

    Returns:
        (the kept file, the number of weight tensors checked).

    Raises:
        WeightsFileError: missing, truncated, another format, or another encoder's weights (named).
        ConfigError: an unknown encoder.
    """
    encoder_info(encoder)
    source = Path(source)
    if not source.is_file():
        raise WeightsFileError(f"{source} does not exist or is not a file")
    workspace.weights_dir.mkdir(parents=True, exist_ok=True)
    # Keras picks its reader by suffix, so the kept name says the format the content has
    suffix = SUFFIXES[0] if weights_file_format(source) == "keras3" else SUFFIXES[1]
    temporary = workspace.weights_dir / f".import-{os.getpid()}-{encoder}{suffix}"
    try:
        shutil.copyfile(source, temporary)
        checked = check_weights_file(temporary, encoder)
        previous = workspace_file(workspace, encoder)
        target = workspace.weights_dir / f"{encoder}{suffix}"
        os.replace(temporary, target)
        if previous is not None and previous != target:
            previous.unlink(missing_ok=True)
    finally:
        temporary.unlink(missing_ok=True)
    return target, checked
