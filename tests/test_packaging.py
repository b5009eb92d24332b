"""Installation-level promises: the runtime never imports torch, and the wheel carries the
shipped models and their manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from conftest import ROOT


def test_import_does_not_pull_torch():
    code = "import sys, edge_ae, edge_ae.cli.main; print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_wheel_carries_exported_models(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("edge_ae-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((ROOT / "exported" / "manifest.json").read_text())
    assert "edge_ae/exported/manifest.json" in names
    for entry in manifest["models"]:
        assert f"edge_ae/exported/{entry['file']}" in names, entry["name"]
    assert not any(n.startswith(("training/", "tests/", "tools/")) for n in names)
    # Every runtime subpackage ships (pyproject lists them; a new folder must be added there).
    for init in (ROOT / "edge_ae").rglob("__init__.py"):
        module = init.parent.relative_to(ROOT).as_posix()
        assert f"{module}/__init__.py" in names, f"{module} is missing from pyproject's packages"


def test_public_surface_is_declared_once_and_importable():
    """Everything ``__all__`` names is importable from the top, and the names that documented
    signatures use (sources, the temporal filter, errors, calibration) are among them."""
    import edge_ae

    for name in edge_ae.__all__:
        assert getattr(edge_ae, name) is not None, name
    for name in ("TemporalFilter", "Source", "SourceError", "SinkError", "calibrate_fpr", "calibrate_f1", "EdgeAEError"):
        assert name in edge_ae.__all__, name
