"""Shared ONNX export steps for every model kind: export with dynamic axes, attach the edge-ae
contract, run ``onnx.checker``, check onnxruntime against PyTorch, and record the file in
``exported/manifest.json``."""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch

from edge_ae.model.contract import METADATA_KEY, ModelSpec
from edge_ae.model.loading import make_session
from edge_ae.model.registry import MANIFEST, sha256_of
from training.paths import EXPORTED, ROOT  # noqa: F401  (EXPORTED re-exported for the export scripts)

PARITY_TOLERANCE = 1e-4


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def host() -> dict[str, str]:
    """The CPU (and thread count) that trained the model. With a fixed seed, retrains on one host
    give the same weights, but kernels for other vector instructions or thread counts sum floats in
    another order, the likely reason same-seed runs of one recipe have parted (docs/ANOMALY.md: the
    data preparation was checked and is the same); this record lets a retrain that differs from a
    shipped file be checked against the machine it came from."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: the machine type is all there is
    return {"cpu": cpu, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": str(torch.get_num_threads())}


def libraries() -> dict[str, str]:
    """Versions of the libraries that shape the training data and the file besides torch: OpenCV
    resizes every training image, numpy draws every synthetic defect, onnx and onnxruntime write and
    check the graph. The package pins only lower bounds, so two sessions can differ in them; on
    2026-12-04 a same-seed retrain parted from its shipped file on the same kind of CPU, and these
    versions were what the file could not say (docs/ANOMALY.md)."""
    return {"numpy": np.__version__, "opencv": cv2.__version__, "onnx": onnx.__version__,
            "onnxruntime": ort.__version__}


def provenance(command: str, data: str, metrics: dict[str, float], extra: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "training_command": command,
        "data": data,
        "date": datetime.date.today().isoformat(),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": host(),
        "libraries": libraries(),
        "metrics": metrics,
        **(extra or {}),
    }


def export(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    spec: ModelSpec,
    path: Path,
    *,
    dynamic_axes: dict[str, dict[int, str]],
) -> Path:
    """Export ``module`` to ``path`` with ``spec`` as its edge-ae metadata, then check it."""
    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            module, example_inputs, str(tmp),
            input_names=list(spec.input_names[: len(example_inputs)]),
            output_names=list(spec.output_names),
            dynamic_axes=dynamic_axes, opset_version=17, dynamo=False,
        )
    proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()
    proto.producer_name = "edge-ae"
    proto.doc_string = spec.description
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def check_parity(module: torch.nn.Module, path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Max |onnxruntime - PyTorch| over the first output; raises if above PARITY_TOLERANCE."""
    module.eval()
    with torch.no_grad():
        expected = module(*[torch.from_numpy(v) for v in inputs.values()])
    if isinstance(expected, (tuple, list)):
        expected = expected[0]
    session = make_session(path)
    feeds = {i.name: inputs[i.name] for i in session.get_inputs()}
    got = session.run(None, feeds)[0]
    diff = float(np.max(np.abs(got - expected.numpy())))
    if not diff <= PARITY_TOLERANCE:
        raise AssertionError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {PARITY_TOLERANCE:g})")
    return diff


def update_manifest(spec: ModelSpec, path: Path, *, quality: dict[str, object] | None = None,
                    speed: dict[str, object] | None = None, manifest: Path | None = None) -> None:
    """Add or replace ``spec.name`` in the manifest, keeping measured figures already recorded
    unless new ones are given."""
    manifest = manifest or path.parent / MANIFEST
    data: dict[str, Any] = json.loads(manifest.read_text()) if manifest.exists() else {"schema_version": 1, "models": []}
    old: dict[str, Any] = next((m for m in data["models"] if m["name"] == spec.name), {})
    entry = {
        "name": spec.name,
        "file": path.name,
        "sha256": sha256_of(path),
        "kind": spec.kind,
        "channels": spec.channels,
        "description": spec.description,
        "size_bytes": path.stat().st_size,
        "training_command": spec.provenance.get("training_command", ""),
        "quality": quality if quality is not None else old.get("quality", {}),
        "speed": speed if speed is not None else old.get("speed", {}),
    }
    # Pretrained weights inside the file (a features extractor, or an anomaly model fitted on one):
    # their package, version, sha256 and licence, so the manifest alone says what ships under what terms.
    features = spec.provenance.get("features")
    weights = spec.provenance.get("weights") or (features.get("weights") if isinstance(features, dict) else None)
    if weights:
        entry["weights"] = {k: weights[k] for k in ("package", "version", "file", "sha256", "licence") if k in weights}
    data["models"] = sorted([m for m in data["models"] if m["name"] != spec.name] + [entry], key=lambda m: m["name"])
    manifest.write_text(json.dumps(data, indent=2) + "\n")
