"""Where ImageNet encoder weights come from: the workspace, Keras' cache, a download; and offline refusals.

No test reaches the internet: downloads come from a local HTTP server standing in for the mirror
(``COCOSEG_WEIGHTS_URL``), and "offline" is a port nothing listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cocoseg.errors import ConfigError
from cocoseg.models.encoder_catalog import ENCODERS
from cocoseg.pipeline.training import TrainConfig, create
from cocoseg.pipeline.training.weights import (
    availability_note,
    check_available,
    download,
    progress_line,
    weights_file,
)


def publish(root: Path, encoder: str, content: bytes) -> None:
    target = root / ENCODERS[encoder].weights_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def test_offline_without_a_file_is_one_line_saying_what_to_do(workspace, offline):
    with pytest.raises(ConfigError) as refused:
        check_available(workspace, "resnet50v2")
    message = str(refused.value)
    assert message.startswith("encoder_weights: ImageNet weights for resnet50v2 are not on this machine")
    assert "cocoseg weights import FILE --encoder resnet50v2" in message and "\n" not in message
    assert "ConnectionRefusedError" in message


def test_a_workspace_file_or_keras_cache_needs_no_network(workspace, offline, keras_home):
    (keras_home / "models").mkdir(parents=True)
    (keras_home / "models" / ENCODERS["efficientnetv2_b0"].weights_file).write_bytes(b"cached")
    assert check_available(workspace, "efficientnetv2_b0") == "keras cache"
    workspace.weights_dir.mkdir()
    (workspace.weights_dir / "mobilenet_v2.weights.h5").write_bytes(b"imported")
    assert check_available(workspace, "mobilenet_v2") == "workspace"
    assert weights_file(workspace, "mobilenet_v2").name == "mobilenet_v2.weights.h5"
    assert "in the workspace" in availability_note(workspace, "mobilenet_v2")
    assert "downloaded once (91 MB)" in availability_note(workspace, "resnet50v2")


def test_download_lands_once_atomically_with_progress(workspace, mirror):
    content = bytes(range(256)) * 12_000  # about 3 MB: several progress calls
    publish(mirror, "mobilenet_v2", content)
    assert check_available(workspace, "mobilenet_v2") == "download"
    seen = []
    kept = download(workspace, "mobilenet_v2", lambda received, total: seen.append((received, total)))
    assert kept == workspace.weights_dir / "mobilenet_v2.h5" and kept.read_bytes() == content
    assert len(seen) >= 3 and seen[-1] == (len(content), len(content))
    assert [path.name for path in workspace.weights_dir.iterdir()] == ["mobilenet_v2.h5"]  # no .part left
    (mirror / ENCODERS["mobilenet_v2"].weights_path).unlink()
    assert weights_file(workspace, "mobilenet_v2") == kept  # the second run downloads nothing


def test_a_download_with_the_wrong_digest_is_not_kept(workspace, mirror):
    publish(mirror, "resnet50v2", b"a proxy's error page")
    with pytest.raises(ConfigError, match="not Keras' fac2f116.*it was not kept"):
        download(workspace, "resnet50v2")
    assert not any(workspace.weights_dir.iterdir())


def test_progress_lines_read_as_a_status_message():
    assert progress_line("resnet50v2", 12_000_000, 91_000_000) == (
        "downloading ImageNet weights for resnet50v2: 12 of 91 MB"
    )


def test_a_run_asking_for_imagenet_offline_is_refused_before_its_folder_exists(
    prepared_workspace, prepared_demo, offline
):
    config = TrainConfig(
        prepared_demo.name,
        model="deeplabv3_plus",
        model_options={"encoder": "efficientnetv2_b0", "encoder_weights": "imagenet"},
        epochs=1,
    )
    runs = prepared_workspace.runs_dir
    before = sorted(runs.iterdir()) if runs.exists() else []
    with pytest.raises(ConfigError, match="encoder_weights: ImageNet weights for efficientnetv2_b0"):
        create(prepared_workspace, config)
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before
