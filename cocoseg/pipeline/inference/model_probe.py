"""Open an untrusted ONNX file in a throw-away process and describe it.

``probe(path)`` runs ``python -m cocoseg.pipeline.inference.model_probe PATH [SIZE]`` with a time limit:
the child checks the graph, refuses external data outside the file's folder, creates a
CPU session, optionally runs one zero image of SIZE, and prints one JSON line with the
inputs and outputs. A malformed file that crashes the ONNX or ORT native code kills
only the child; the caller (the web server, the CLI) gets a ``ModelError``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cocoseg.pipeline.inference.model_store import ModelError

PROBE_TIMEOUT_SECONDS = 120


def _describe(values) -> list[dict]:
    return [
        {
            "name": value.name,
            "type": value.type,
            "shape": [dim if isinstance(dim, int) else None for dim in value.shape],
        }
        for value in values
    ]


def _run_child(path: Path, size: int | None) -> dict:
    """The child's work (no isolation here: only ever called in the child)."""
    import numpy as np
    import onnx
    import onnxruntime

    from cocoseg.pipeline.inference.onnx_graph import check_external_data

    model = onnx.load(str(path), load_external_data=False)
    check_external_data(model, path.parent)
    onnx.checker.check_model(str(path))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    report = {
        "inputs": _describe(session.get_inputs()),
        "outputs": _describe(session.get_outputs()),
        "opset": next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0),
    }
    if size:
        outputs = session.run(
            None, {session.get_inputs()[0].name: np.zeros((1, size, size, 3), dtype=np.uint8)}
        )
        report["run"] = [{"shape": list(output.shape), "dtype": str(output.dtype)} for output in outputs]
    return report


def probe(path: Path, size: int | None = None) -> dict:
    """Describe an ONNX file from a child process.

    Raises:
        ModelError: the file is invalid, crashed the loader, or took too long.
    """
    command = [sys.executable, "-m", "cocoseg.pipeline.inference.model_probe", str(Path(path).resolve())] + (
        [str(size)] if size else []
    )
    try:
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            cwd=Path(__file__).resolve().parents[3],
        )
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"{Path(path).name}: loading took longer than {PROBE_TIMEOUT_SECONDS} s; not a usable model"
        ) from None
    if finished.returncode < 0:
        raise ModelError(
            f"{Path(path).name} is not a valid ONNX model: it crashed the loader (signal {-finished.returncode})"
        )
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    payload = (
        json.loads(lines[-1])
        if lines
        else {"error": finished.stderr.strip().splitlines()[-1:] or ["no answer"]}
    )
    if "error" in payload:
        reason = payload["error"] if isinstance(payload["error"], str) else " ".join(payload["error"])
        raise ModelError(f"{Path(path).name} is not a valid ONNX model: {reason[:300]}")
    return payload


def main(arguments: list[str]) -> int:
    path = Path(arguments[0])
    size = int(arguments[1]) if len(arguments) > 1 else None
    try:
        report = _run_child(path, size)
    except Exception as error:  # noqa: BLE001 - every failure is reported as one line
        sys.stdout.write(
            json.dumps(
                {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
            )
            + "\n"
        )
        return 1
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
