"""Installation-level promises: the runtime never imports torch, and the wheel carries the
shipped models and their manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


def test_runtime_never_imports_torch_and_the_cli_starts_without_onnx():
    """Every module of edge_ae imports without torch; ``import edge_ae`` and every CLI command
    module also without onnx (it is needed only to write a fitted graph, and costs start-up time)."""
    code = (
        "import importlib, pkgutil, sys, edge_ae, edge_ae.cli\n"
        "for m in pkgutil.iter_modules(edge_ae.cli.__path__, 'edge_ae.cli.'): importlib.import_module(m.name)\n"
        "startup = sorted(m for m in ('torch', 'onnx') if m in sys.modules)\n"
        "for m in pkgutil.walk_packages(edge_ae.__path__, 'edge_ae.'):\n"
        "    if m.name not in ('edge_ae.__main__',): importlib.import_module(m.name)\n"
        "print(startup, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[0] == "[] False"


def test_wheel_carries_exported_models(tmp_path):
    # The build backend is a dev dependency (pyproject's license field needs setuptools >= 77).
    pytest.importorskip("setuptools", minversion="77", reason="building the wheel needs setuptools >= 77 (dev extra)")
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
    assert "edge_ae/video/web/index.html" in names  # the page of `edge-ae camera --serve`
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
