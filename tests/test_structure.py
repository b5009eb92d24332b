"""The code's shape (issue 54), checked so it stays: one PSNR, and (below) layers that point one
way. Reads the source with ast; imports nothing heavy."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("edge_ae", "training", "tools")


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_psnr_is_defined_once():
    """Every PSNR in training, the tools and the ARM check is training.metrics' formula."""
    owners = []
    for path in sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "log10":
                owners.append(str(path.relative_to(ROOT)))
    assert sorted(set(owners)) == ["training/metrics.py"]


def test_onnxruntime_sessions_come_from_one_factory():
    """Tools, exports and the runtime build sessions with edge_ae.model.loading.make_session, so
    a benchmark times the session options a user gets (no spin-waiting, the same threads)."""
    owners = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("InferenceSession", "SessionOptions"):
                owners.add(str(path.relative_to(ROOT)))
    assert owners == {"edge_ae/model/loading.py"}
