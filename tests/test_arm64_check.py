"""tools/arm64_check.py, the Python half of the emulated-aarch64 check (tools/arm64_check.sh needs
root and minutes, so it is not run here): on x86, on a subset of the shipped models, it runs,
agrees with itself, and notices a difference beyond its bounds."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from tools import arm64_check

SUBSET = ["denoise-gray-fast", "denoise-gray-fast-int8", "anomaly-magnetic-tile-fast", "mnist-dense36",
          "mnist-dense36-encoder", "mnist-dense36-decoder"]


def _run(out, *extra):
    cmd = [sys.executable, "-m", "tools.arm64_check", "run", "--samples", str(ROOT / "samples"), "--out", str(out),
           "--crop", "64", "--count", "2", "--models", *SUBSET, *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_run_and_compare_on_x86(tmp_path):
    ref = tmp_path / "ref"
    result = _run(ref)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((ref / "results.json").read_text())
    assert sorted(results["models"]) == sorted(SUBSET)
    assert results["models"]["denoise-gray-fast-int8"]["int8"] is True
    assert results["models"]["denoise-gray-fast"]["int8"] is False
    assert {r["exit"] for r in results["cli"].values()} == {0}
    assert set(results["cli"]) == {"denoise", "anomaly", "camera", "bench"}
    assert results["cli"]["bench"]["outputs"] == 2  # denoise-color-fast and its -int8 twin were timed
    platform = json.loads((ref / "platform.json").read_text())
    assert platform["machine"] and platform["eight_bit_path"] and platform["inputs"]["photos"]

    same = subprocess.run([sys.executable, "-m", "tools.arm64_check", "compare", str(ref), str(ref),
                           "--report", str(tmp_path / "r.md")], cwd=ROOT, capture_output=True, text=True)
    assert same.returncode == 0, same.stdout[-2000:]
    assert "All checks passed." in (tmp_path / "r.md").read_text()

    # A float model whose output moved by 2 gray levels must fail the 1-level bound.
    other = tmp_path / "other"
    subprocess.run(["cp", "-r", str(ref), str(other)], check=True)
    arrays = arm64_check.load_npz(other / "denoise-gray-fast.npz")
    key = next(k for k, v in arrays.items() if v.dtype == np.uint8)
    moved = arrays[key].astype(np.int32)
    moved[0, 0] = moved[0, 0] + 2 if moved[0, 0] < 250 else moved[0, 0] - 2
    arrays[key] = moved.astype(np.uint8)
    np.savez_compressed(other / "denoise-gray-fast.npz", **{k.replace("/", "__"): v for k, v in arrays.items()})
    differ = subprocess.run([sys.executable, "-m", "tools.arm64_check", "compare", str(ref), str(other)],
                            cwd=ROOT, capture_output=True, text=True)
    assert differ.returncode == 1
    assert "denoise-gray-fast: uint8 outputs differ by 2 levels" in differ.stdout


def test_generic_driver_runs_any_model_by_its_graph():
    # Models of a kind added later (no driver yet) still run, through their raw graph.
    inputs = arm64_check.Inputs(ROOT / "samples", crop=32, count=1)
    arrays, info = arm64_check.drive_generic("denoise-gray-fast", inputs, 1)
    assert info == {"generic": True}
    (out,) = arrays.values()
    assert out.ndim == 4 and out.shape[1] == 1 and np.isfinite(out).all()


def test_eight_bit_path_reads_the_dot_product_bit():
    assert "asimddp=0" in arm64_check.eight_bit_path("aarch64", 0, 0)
    assert "asimddp=1" in arm64_check.eight_bit_path("aarch64", arm64_check.HWCAP_ASIMDDP, 0)
    assert "not arm64" in arm64_check.eight_bit_path("x86_64", 0, 0)
