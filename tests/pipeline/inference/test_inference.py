"""ONNX Runtime provider probe: honest about what runs here, and quiet about what does not."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from cocoseg.pipeline.inference.model_store import ModelEntry, ModelError, get_entry
from cocoseg.pipeline.inference.onnx_graph import GraphError, check_external_data
from cocoseg.pipeline.inference.predictor import (
    InferenceInputError,
    Predictor,
    ProviderReport,
    _one_line,
    cached_session_count,
    choose_providers,
    clear_sessions,
    load_session,
    provider_label,
    usable_providers,
)


def test_probe_reports_cpu_and_only_providers_that_open_a_session(capfd):
    usable_providers.cache_clear()
    report = usable_providers()
    assert "CPUExecutionProvider" in report.usable
    assert set(report.usable) <= set(onnxruntime.get_available_providers())
    assert report.version == onnxruntime.__version__
    captured = capfd.readouterr()
    assert "EP Error" not in captured.out + captured.err and "Falling back" not in captured.out + captured.err
    assert usable_providers() is report  # probed once per process
    assert bool(report.cuda_build) == ("CUDAExecutionProvider" in report.built)  # "13.0" for the GPU wheel


def test_device_follows_usable_providers():
    assert (
        ProviderReport(
            "1", ("CUDAExecutionProvider", "CPUExecutionProvider"), ("CPUExecutionProvider",)
        ).device
        == "CPU"
    )
    assert (
        ProviderReport(
            "1",
            ("CUDAExecutionProvider", "CPUExecutionProvider"),
            ("CUDAExecutionProvider", "CPUExecutionProvider"),
        ).device
        == "GPU"
    )


def test_provider_labels():
    assert [
        provider_label(name)
        for name in (
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
            "OpenVINOExecutionProvider",
        )
    ] == ["TensorRT", "CUDA", "CPU", "OpenVINO"]


TENSORRT_REFUSAL_ON_AN_H200 = (  # the reason onnxruntime-gpu 1.31.1 gave on an H200 without TensorRT
    "Please install TensorRT libraries as mentioned in the GPU requirements page, make sure they're in the "
    "PATH or LD_LIBRARY_PATH, and that your GPU is supported."
)


def test_a_refusal_reads_as_one_line_of_what_to_do():
    """ORT's wrapper print()s a banner, the C++ location and its fallback notice around the reason
    (``onnxruntime_inference_collection.py``); on the H200 the notice's tail still reached the report."""
    printed = (
        "*************** EP Error ***************\n"
        "EP Error /onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:1300 "
        "void onnxruntime::python::CreateInferencePybindStateModule(...) "
        f"{TENSORRT_REFUSAL_ON_AN_H200} when using ['TensorrtExecutionProvider']\n"
        "Falling back to ['CPUExecutionProvider'] and retrying.\n"
        "****************************************\n"
    )
    assert _one_line(printed) == TENSORRT_REFUSAL_ON_AN_H200
    assert _one_line(TENSORRT_REFUSAL_ON_AN_H200) == TENSORRT_REFUSAL_ON_AN_H200


# --- sessions and prediction (real exported models) -----------------------------------


@pytest.fixture
def model_copy(prepared_workspace, exported_models, workspace):
    """A private copy of an exported model that a test may damage."""
    shutil.copytree(prepared_workspace.models_dir / exported_models[0], workspace.models_dir / "copy")
    clear_sessions()
    yield get_entry(workspace, "copy")
    clear_sessions()


@pytest.mark.slow
def test_one_cached_session_per_model_file(model_copy):
    first = Predictor(model_copy)
    count = cached_session_count()
    second = Predictor(model_copy)
    assert second.session is first.session and cached_session_count() == count
    assert first.provider == provider_label(choose_providers()[0])  # CUDA where it loads, else CPU
    assert choose_providers("int8") == ["CPUExecutionProvider"]
    assert Predictor(model_copy, "int8").session is not first.session


@pytest.mark.slow
def test_opening_one_model_holds_up_no_request_for_a_model_already_open(model_copy, monkeypatch):
    """Opening a model takes seconds (a TensorRT engine minutes): the cache's lock is not held meanwhile,
    so a request for a model already open is answered while another is being opened."""
    from cocoseg.pipeline.inference import predictor

    first = Predictor(model_copy)
    opening, release = threading.Event(), threading.Event()
    check = predictor._check_external_data

    def held_open(path):
        opening.set()
        release.wait(120)  # a hang guard: the test releases it
        check(path)

    monkeypatch.setattr(predictor, "_check_external_data", held_open)
    other = threading.Thread(target=Predictor, args=(model_copy, "int8"))
    other.start()
    try:
        assert opening.wait(60), "the int8 model never started opening"
        answered = []
        reader = threading.Thread(target=lambda: answered.append(Predictor(model_copy)))
        reader.start()
        reader.join(30)  # a hang guard: without the fix it waits for the release
        assert answered and answered[0].session is first.session, "the open model waited for another"
    finally:
        release.set()
        other.join(60)
    assert Predictor(model_copy, "int8").session is not first.session


def test_importing_the_app_creates_no_session(tmp_path):
    script = (
        "import sys; from pathlib import Path; from cocoseg.pipeline.core.workspace import Workspace; "
        "from cocoseg.app.main import create_app; "
        "import cocoseg.pipeline.inference.predictor as inference; create_app(Workspace(Path(sys.argv[1]))); "
        "print(inference.cached_session_count(), 'tensorflow' in sys.modules)"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["0", "False"]


@pytest.mark.slow
def test_a_changed_or_truncated_model_file_is_refused(model_copy):
    path = model_copy.folder / "model.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="does not match the hash"):
        Predictor(model_copy)
    from cocoseg.pipeline.core.cache import sha256_of

    truncated = ModelEntry(model_copy.folder, {**model_copy.card, "sha256": sha256_of(path)})
    with pytest.raises(ModelError, match="not a model ONNX Runtime can load"):
        Predictor(truncated)
    path.unlink()
    with pytest.raises(ModelError, match="missing"):
        Predictor(model_copy)


def _external_data_model(location: str) -> onnx.ModelProto:
    weight = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    with pytest.raises(GraphError, match="outside the model's folder"):
        check_external_data(_external_data_model(location), tmp_path)
    path = tmp_path / "model.onnx"
    onnx.save(_external_data_model(location), str(path))
    with pytest.raises(ModelError, match="outside the model's folder"):
        load_session(path, None, ["CPUExecutionProvider"])


def test_external_data_inside_the_folder_is_allowed(tmp_path):
    assert check_external_data(_external_data_model("weights.bin"), tmp_path) == ["weights.bin"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "batch",
    [
        np.zeros((128, 128, 3), np.uint8),  # rank 3
        np.zeros((1, 128, 128, 3), np.float32),  # dtype
        np.zeros((1, 64, 64, 3), np.uint8),  # size
        np.zeros((1, 128, 128, 4), np.uint8),  # channels
        np.zeros((0, 128, 128, 3), np.uint8),  # empty batch
        [[1, 2, 3]],  # not an array
    ],
)
def test_wrong_tensors_are_refused_before_session_run(model_copy, batch):
    predictor = Predictor(model_copy)

    class NoRun:
        def run(self, *args, **kwargs):
            raise AssertionError("session.run must not be reached")

    predictor.session = NoRun()
    with pytest.raises(InferenceInputError, match=r"uint8 \(batch, 128, 128, 3\)"):
        predictor.run_batch(batch)


@pytest.mark.slow
@pytest.mark.parametrize("resize", ["stretch", "letterbox", "shorter-crop"])
@pytest.mark.parametrize("shape", [(1, 1), (100, 20000), (20000, 100), (3, 7)])
def test_extreme_image_shapes_come_back_at_their_own_size(model_copy, resize, shape):
    entry = dataclasses.replace(
        model_copy, card={**model_copy.card, "input": {**model_copy.card["input"], "resize": resize}}
    )
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    mask = Predictor(entry).predict(image).mask
    assert mask.shape == shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= set(range(21)) | {255}


@pytest.mark.slow
@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_non_rgb_images_are_refused_with_a_message(model_copy, image):
    with pytest.raises(InferenceInputError, match="RGB uint8"):
        Predictor(model_copy).predict(image)


@pytest.mark.slow
@pytest.mark.parametrize("resize", ["letterbox", "shorter-crop"])
def test_the_uncertainty_map_comes_back_at_the_image_size_beside_the_same_mask(model_copy, resize):
    """Entropy levels 0-254 where the square covered the image, 255 only where it did not."""
    from cocoseg.pipeline.data.geometry import resize_image
    from cocoseg.pipeline.inference.predictor import ENTROPY_LEVELS
    from cocoseg.pipeline.inference.uncertainty import pixel_entropy

    entry = dataclasses.replace(
        model_copy, card={**model_copy.card, "input": {**model_copy.card["input"], "resize": resize}}
    )
    image = np.random.default_rng(2).integers(0, 256, (90, 240, 3), dtype=np.uint8)
    predictor = Predictor(entry)
    prediction, uncertainty = predictor.predict_with_uncertainty(image)
    assert np.array_equal(prediction.mask, predictor.predict(image).mask)
    assert uncertainty.shape == (90, 240) and uncertainty.dtype == np.uint8
    covered = uncertainty != 255
    assert covered.all() == (resize == "letterbox") and covered.any()
    _mask, probabilities = predictor.run_batch(resize_image(image, 128, resize)[None], probabilities=True)
    expected = np.round(pixel_entropy(probabilities[0]) * ENTROPY_LEVELS)
    assert set(np.unique(uncertainty[covered])) <= set(np.unique(expected).astype(int).tolist())


@pytest.mark.slow
def test_masks_map_back_with_nearest_neighbour(model_copy):
    from cocoseg.pipeline.data.geometry import resize_image, undo_mask

    image = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    predictor = Predictor(model_copy)
    square = predictor.run_batch(resize_image(image, 128, "stretch")[None])[0]
    mask = predictor.predict(image).mask
    assert np.array_equal(mask, undo_mask(square, 200, 300, "stretch"))
    assert set(np.unique(mask)) == set(np.unique(square))  # no interpolated in-between classes
    assert json.loads((model_copy.folder / "model.json").read_text())["input"]["resize"] == "stretch"


@pytest.mark.slow
def test_model_files_outside_the_model_folder_are_refused(model_copy, tmp_path):
    escaping = ModelEntry(model_copy.folder, {**model_copy.card, "file": "../other/model.onnx"})
    with pytest.raises(ModelError, match="points outside its folder"):
        Predictor(escaping)
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(model_copy.folder / "model.onnx", outside)
    (model_copy.folder / "model.onnx").symlink_to(outside)
    with pytest.raises(ModelError, match="points outside its folder"):
        Predictor(model_copy)
    from cocoseg.pipeline.core.workspace import Workspace

    with pytest.raises(ModelError, match="not allowed"):
        get_entry(Workspace(model_copy.folder.parent.parent), "../models/copy")


@pytest.mark.slow
def test_a_forked_child_starts_without_the_parents_sessions(model_copy):
    import os

    Predictor(model_copy)
    assert cached_session_count() >= 1
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports its cache size and leaves at once
        os.write(writer, str(cached_session_count()).encode())
        os._exit(0)
    os.close(writer)
    reported = os.read(reader, 16).decode()
    os.waitpid(child, 0)
    assert reported == "0" and cached_session_count() >= 1


def test_a_model_is_opened_by_one_request_at_a_time_even_after_an_open_failed(tmp_path, monkeypatch):
    """Requests for a model that is being opened wait for that open; when it fails, the next tries alone,
    and a request arriving meanwhile waits for that try rather than opening the model beside it."""
    from cocoseg.pipeline.inference import predictor

    path = tmp_path / "model.onnx"
    path.write_bytes(b"stand-in: opening is replaced below")
    opening, calls, lock, failed = [], [], threading.Lock(), threading.Event()

    def open_once_at_a_time(*_arguments):
        with lock:
            opening.append(1)
            calls.append(len(opening))  # how many opens were under way, this one included
        try:
            if len(calls) == 1:
                threading.Event().wait(0.2)  # room for the second request to come and wait
                raise ModelError("the first open fails")
            failed.wait(60)
            threading.Event().wait(0.5)  # room for a late request to start an open, if it could
            return object()
        finally:
            with lock:
                opening.pop()
            if len(calls) == 1:
                failed.set()

    monkeypatch.setattr(predictor, "_open_session", open_once_at_a_time)
    results = []

    def request():
        try:
            results.append(predictor.load_session(path, None, ["CPUExecutionProvider"]))
        except ModelError:
            results.append(None)

    early = [threading.Thread(target=request) for _ in range(2)]
    for thread in early:
        thread.start()
    assert failed.wait(60)
    late = [threading.Thread(target=request) for _ in range(2)]  # while the second request opens it
    for thread in late:
        thread.start()
    for thread in early + late:
        thread.join(60)
    opened = [result for result in results if result is not None]
    assert max(calls) == 1, "two opens of one model at once"
    assert len(calls) == 2 and results.count(None) == 1 and len({id(result) for result in opened}) == 1
    predictor.clear_sessions()
