"""The inference benchmarks run end to end at a tiny size (figures are not asserted, only that they exist)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.extended
def test_cpu_benchmark_reports_rates_ratios_and_targets():
    from benchmarks.inference import format_table, run

    results = run(
        ["unet", "attention_unet"], size=64, repeats=1, warmup=1, calibration_images=2, matmul_runs=1
    )
    assert [row["name"] for row in results["rows"]] == ["unet", "attention_unet"]
    assert results["matmul_gflops"] > 0 and results["cores_used"] >= 1
    for row in results["rows"]:
        assert set(row["batches"]) == {1, 8}
        for engines in row["batches"].values():
            assert all(engine["images_per_second"] > 0 and engine["ms"] > 0 for engine in engines.values())
        assert row["ort_vs_predict_b1"] > 0 and row["ort_vs_tf_function_b1"] > 0
        assert all(ratio > 0 for ratio in row["int8_vs_fp32"].values())
        assert (
            row["flops_per_image"] > 0
            and row["ort_fp32_gflops_per_second"] > 0
            and row["fraction_of_matmul"] > 0
        )
        assert all(milliseconds > 0 for milliseconds in row["end_to_end_ms"].values())
    table = format_table(results)
    for header in (
        "| model | batch | Keras predict | tf.function | ORT FP32 | ORT INT8 |",
        "ORT FP32 vs predict (b1)",
        "INT8 vs FP32 (b8)",
        "of matmul rate",
        "| target | measured | met |",
        "INT8 accuracy is not measured",
    ):
        assert header in table


@pytest.mark.slow
def test_gpu_benchmark_skips_cleanly_without_cuda(capsys):
    from benchmarks import gpu
    from cocoseg.pipeline.inference.predictor import usable_providers

    if "CUDAExecutionProvider" in usable_providers().usable:
        pytest.skip("a CUDA GPU is usable here: the skip path is not taken")
    results = gpu.run(["unet"], size=64, repeats=1, warmup=1)
    assert results["skipped"] == gpu.SKIPPED and results["rows"] == []
    assert gpu.main(["--size", "64", "--repeats", "1"]) == 0
    assert "no CUDA GPU visible: skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_gpu_payload_skeleton_is_small_and_fills_to_a_runnable_model(tmp_path):
    """The weights-free graph that travels to a GPU machine runs after filling, with finite outputs."""
    import numpy as np
    import onnx
    import onnxruntime

    from benchmarks import gpu
    from cocoseg.pipeline.inference.onnx_graph import INPUT_NAME, MASK_OUTPUT, PROBABILITIES_OUTPUT

    path, _ = gpu.export_architecture("unet", 64, tmp_path)
    skeleton = tmp_path / "unet.skeleton.onnx"
    onnx.save(gpu.strip_weights(onnx.load(str(path))), str(skeleton))
    assert skeleton.stat().st_size * 20 < path.stat().st_size
    (tmp_path / "filled").mkdir()
    fp32_path, fp16_path = gpu.filled_files(skeleton, tmp_path / "filled")
    images = gpu.demo_images("val2017", 2, 64)
    for model_path in (fp32_path, fp16_path):
        session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        mask, probabilities = session.run([MASK_OUTPUT, PROBABILITIES_OUTPUT], {INPUT_NAME: images})
        assert mask.shape == (2, 64, 64) and mask.dtype == np.uint8 and int(mask.max()) < gpu.NUM_CLASSES
        assert np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=-1), 1.0, atol=1e-2)
    first = onnx.load(str(fp32_path))
    gpu.filled_files(skeleton, tmp_path)
    assert (
        onnx.load(str(tmp_path / "unet.onnx")).graph.initializer == first.graph.initializer
    )  # seeded: the same weights
