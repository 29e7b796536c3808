"""What TensorFlow sees here: its version, the CUDA and cuDNN it was built for, its devices.

Imports TensorFlow, so only ``cocoseg doctor`` and job processes call it; the Home page gets
the same facts from a ``doctor`` job (``jobs.bodies.doctor``).
"""

from __future__ import annotations

from cocoseg.pipeline.core.tf_runtime import tensorflow


def tensorflow_facts() -> dict:
    """``{"version", "built_cuda", "built_cudnn", "devices": [{"type", "name", "compute_capability"}]}``;
    ``{"error": ...}`` when TensorFlow cannot be imported."""
    try:
        tf = tensorflow()
    except Exception as error:  # noqa: BLE001 - a broken install is a fact to report, not a crash
        return {"error": f"TensorFlow cannot be imported: {' '.join(str(error).split())[:300]}"}
    build = dict(tf.sysconfig.get_build_info())
    devices = []
    for device in tf.config.list_physical_devices():
        entry = {"type": device.device_type, "name": device.name, "compute_capability": ""}
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            capability = details.get("compute_capability")
            entry["name"] = details.get("device_name", device.name)
            entry["compute_capability"] = ".".join(str(part) for part in capability) if capability else ""
        devices.append(entry)
    return {
        "version": tf.__version__,
        "built_cuda": str(build.get("cuda_version", "")),
        "built_cudnn": str(build.get("cudnn_version", "")),
        "devices": devices,
    }
