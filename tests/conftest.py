"""Shared fixtures: the real demo dataset, a private workspace per test, small COCO builders."""

from __future__ import annotations

import copy
import functools
import http.server
import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from cocoseg.pipeline.core import settings as settings_module
from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training import weights

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEMO_TRAIN_JSON = DEMO_DATASET_DIR / "annotations" / "instances_train2017.json"
DEMO_VAL_JSON = DEMO_DATASET_DIR / "annotations" / "instances_val2017.json"
DEMO_TRAIN_IMAGES = DEMO_DATASET_DIR / "train2017"
DEMO_VAL_IMAGES = DEMO_DATASET_DIR / "val2017"
LIMIT = 1024**3
# The click-to-mask tools' time limit in tests about what a tool does: a hang guard, not the page's 2 s,
# which a busy machine can overrun (the limit itself has its own tests).
TOOL_HANG_GUARD_SECONDS = 60
PREPARED_CONFIG = PrepareConfig("demo", labels="voc21", size=128, shards=3, workers=2)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own COCOSEG_HOME, so nothing writes ./workspace."""
    home = tmp_path_factory.mktemp("cocoseg-home")
    monkeypatch.setenv("COCOSEG_HOME", str(home))
    settings_module.get_settings.cache_clear()
    yield home
    settings_module.get_settings.cache_clear()


@pytest.fixture
def workspace(isolated_home) -> Workspace:
    return Workspace(isolated_home).ensure()


@pytest.fixture
def test_jobs(monkeypatch, workspace):
    """Enable the test-only job kinds (``sleep``, ``linger``); job processes still alive at the end are
    killed.
    """
    from cocoseg.pipeline.jobs.registry import RunFolder, kill_job

    monkeypatch.setenv("COCOSEG_TEST_JOBS", "1")
    yield workspace
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        for folder in parent.iterdir() if parent.is_dir() else ():
            if (folder / "status.json").is_file():
                kill_job(RunFolder(folder), "the test ended")


DEMO_SIZES = {
    image["file_name"]: (image["width"], image["height"])
    for image in json.loads(DEMO_VAL_JSON.read_text())["images"]
}
PICTURES = sorted(DEMO_SIZES)[:3]


@pytest.fixture
def photos(tmp_path):
    """Three real JPEGs, a garbage ``.jpg``, and things that are not images (a text file, a folder)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in reversed(PICTURES):  # copied out of order: the listing sorts them
        shutil.copy(DEMO_VAL_IMAGES / name, folder / name)
    (folder / "zz-broken.jpg").write_bytes(b"not a jpeg at all, just bytes")
    (folder / "notes.txt").write_text("not an image")
    (folder / "nested.jpg").mkdir()
    return folder


@pytest.fixture(scope="session")
def demo_val_data() -> dict:
    """The parsed real demo val annotations (read-only: copy before changing)."""
    return json.loads(DEMO_VAL_JSON.read_text())


@pytest.fixture
def demo_val_copy(demo_val_data) -> dict:
    """A deep copy of the demo val annotations that a test may break."""
    return copy.deepcopy(demo_val_data)


def write_json(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload))
    return path


def tiny_coco(images=None, annotations=None, categories=None) -> dict:
    """A minimal valid COCO dict: one 10x8 image, one square annotation, two categories."""
    return {
        "images": images
        if images is not None
        else [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 8}],
        "annotations": annotations
        if annotations is not None
        else [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "area": 16.0,
                "bbox": [2.0, 2.0, 4.0, 4.0],
                "segmentation": [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0, 2.0, 6.0]],
            },
        ],
        "categories": categories
        if categories is not None
        else [
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
        ],
    }


@pytest.fixture(scope="session")
def prepared_workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("prepared-home")).ensure()


@pytest.fixture(scope="session")
def prepared_demo(prepared_workspace):
    """``cocoseg prepare demo --labels voc21 --size 128`` written once per test session."""
    return prepare(prepared_workspace, PREPARED_CONFIG, LIMIT)


TINY_MODELS = (("unet", {"base_filters": 8, "depth": 3}), ("attention_unet", {"base_filters": 8, "depth": 3}))


@pytest.fixture(scope="session")
def exported_models(prepared_workspace, prepared_demo) -> list[str]:
    """Two tiny models trained for 2 epochs on the prepared demo and exported with INT8/FP16 variants.

    Returns the model names (= run names) in ``prepared_workspace``; tests must not change them.
    """
    from cocoseg.pipeline.training.config import TrainConfig
    from cocoseg.pipeline.training.export import ExportConfig, export_run
    from cocoseg.pipeline.training.loop import run

    names = []
    for model, options in TINY_MODELS:
        config = TrainConfig(
            prepared_demo.name,
            model=model,
            model_options=options,
            epochs=2,
            batch_size=8,
            learning_rate=3e-3,
            augment=False,
            seed=1,
        )
        names.append(run(prepared_workspace, config).folder.name)
    for name in names:
        export_run(prepared_workspace, ExportConfig(name), LIMIT)
    return names


@pytest.fixture
def processes():
    """Start real child processes in the project root; every one still running is killed and reaped at the
    end.

    ``start(arguments, log=None)``: with ``log``, stdout and stderr go to that file (never a
    pipe, which a chatty child such as TensorFlow could fill and block on); without, stdout is
    dropped and stderr kept in a pipe for the test to read when the child fails.
    """
    started: list[subprocess.Popen] = []

    def start(arguments: list[str], log: Path | None = None) -> subprocess.Popen:
        if log is None:
            child = subprocess.Popen(
                arguments, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        else:
            with open(log, "wb") as output:
                child = subprocess.Popen(arguments, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT)
        started.append(child)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        if child.stderr:
            child.stderr.close()


# --- pretrained encoder weights without the internet ---------------------------------------------
# ImageNet weights come from the workspace, Keras' cache or a download (``training.weights``);
# these give each test an empty Keras cache and a download source it controls.


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras cache, so a file in the user's real ~/.keras cannot make a test pass."""
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch, keras_home) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(weights.MIRROR_ENVIRONMENT, f"http://127.0.0.1:{port}")  # closed: connection refused
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def mirror(tmp_path, monkeypatch, keras_home):
    """A local web server laid out as Keras Applications' storage; yields its folder."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(weights.MIRROR_ENVIRONMENT, f"http://127.0.0.1:{server.server_address[1]}/")
    yield root
    server.shutdown()
    server.server_close()
