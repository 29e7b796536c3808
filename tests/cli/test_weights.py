"""``cocoseg weights import | list`` and ``cocoseg train --encoder-weights imagenet`` offline."""

from __future__ import annotations

import h5py
import pytest

from cocoseg import cli
from cocoseg.pipeline.core.tf_runtime import tensorflow
from tests.cli.test_cli import run_cocoseg

tensorflow()
import keras  # noqa: E402
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory):
    """Random MobileNetV2 weights in Keras Applications' file layout."""
    path = tmp_path_factory.mktemp("carried") / "mobilenet_v2_notop.h5"
    model = keras.applications.MobileNetV2((96, 96, 3), include_top=False, weights=None)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return path


def test_import_keeps_a_checked_file_and_list_shows_it(workspace, keras_home, mobilenet_file, capsys):
    assert cli.main(["weights", "import", str(mobilenet_file), "--encoder", "mobilenet_v2"]) == 0
    output = capsys.readouterr().out
    assert "imported" in output and "weight tensors checked" in output
    assert (workspace.weights_dir / "mobilenet_v2.h5").is_file()
    assert cli.main(["weights", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(line.startswith("mobilenet_v2") and "workspace" in line for line in listing)
    assert any(line.startswith("resnet50v2") and "not here" in line for line in listing)


def test_import_refuses_another_encoder_and_a_truncated_file_keeping_nothing(
    workspace,
    keras_home,
    mobilenet_file,
    tmp_path,
    capsys,
):
    assert cli.main(["weights", "import", str(mobilenet_file), "--encoder", "efficientnetv2_b0"]) == 3
    assert "is not a EfficientNetV2B0 weights file: it has no 'stem_conv/kernel'" in capsys.readouterr().err
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(mobilenet_file.read_bytes()[:100_000])
    assert cli.main(["weights", "import", str(truncated), "--encoder", "mobilenet_v2"]) == 3
    assert "cut.h5 is not a readable Keras weights file" in capsys.readouterr().err
    assert cli.main(["weights", "import", str(tmp_path / "absent.h5"), "--encoder", "mobilenet_v2"]) == 3
    assert not workspace.weights_dir.exists() or not any(workspace.weights_dir.iterdir())


def test_train_with_imagenet_offline_says_what_to_do_in_one_line(
    prepared_workspace,
    prepared_demo,
    offline,
):
    runs = prepared_workspace.runs_dir
    before = sorted(runs.iterdir()) if runs.exists() else []
    trained = run_cocoseg(
        *("train", prepared_demo.name, "--model", "pretrained_unet", "--encoder-weights", "imagenet"),
        home=prepared_workspace.root,
    )
    assert trained.returncode == 3
    error_lines = [line for line in trained.stderr.splitlines() if line.startswith("cocoseg: error:")]
    assert len(error_lines) == 1
    assert "cocoseg weights import FILE --encoder mobilenet_v2" in error_lines[0]
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before


def test_download_fetches_once_from_the_mirror(workspace, mirror, capsys):
    from cocoseg.models.encoder_catalog import ENCODERS

    published = mirror / ENCODERS["mobilenet_v2"].weights_path
    published.parent.mkdir(parents=True)
    published.write_bytes(b"weights" * 1000)
    assert cli.main(["weights", "download", "--encoder", "mobilenet_v2"]) == 0
    assert "downloaded the ImageNet weights of mobilenet_v2" in capsys.readouterr().out
    assert (workspace.weights_dir / "mobilenet_v2.h5").read_bytes() == published.read_bytes()
    assert cli.main(["weights", "download", "--encoder", "mobilenet_v2"]) == 0
    assert "already here" in capsys.readouterr().out
