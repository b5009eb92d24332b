"""The benchmark tools themselves: counts are right, and the denoise benchmark runs end to end
on a slice of the validation data (the full run is the command in docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, export_tiny_unet, needs_shared
from tools.macs import count


def test_macs_of_a_single_conv(tmp_path, rng):
    weight = numpy_helper.from_array(rng.random((8, 1, 3, 3)).astype("float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["denoised"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, "h", "w"])],
        [helper.make_tensor_value_info("denoised", TensorProto.FLOAT, [1, 8, "h", "w"])], [weight],
    )
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert count(path) == (72, 72.0)  # 8 outputs x 9 taps per pixel


def test_macs_of_tiny_unet(tmp_path):
    params, per_pixel = count(export_tiny_unet(tmp_path, channels=1))
    assert params > 0 and 500 < per_pixel < 5000


def test_macs_of_the_hand_built_tiny_denoiser(tiny_models):
    assert count(tiny_models["gray"])[1] == 2 * 4 * 9  # two 3x3 convolutions, 1 -> 4 -> 1 planes


@pytest.mark.slow
@needs_shared("denoise", "val", "Set12")
def test_bench_denoise_quick_run(tmp_path):
    out = tmp_path / "denoise.md"
    cmd = [sys.executable, "-m", "tools.bench_denoise", "--limit", "1", "--sigmas", "25", "--sets", "Set12",
           "--methods", "nlm", "--repeat", "1", "--out", str(out), "--json", str(tmp_path / "d.json")]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert "| OpenCV NLM (tuned h) |" in text and "python -m tools.bench_denoise --limit 1" in text


@pytest.mark.slow
@needs_shared("denoise", "val", "Set12")
def test_bench_denoise_takes_a_trial_file_beside_the_shipped_models(tmp_path, tiny_models):
    manifest = (ROOT / "exported" / "manifest.json").read_bytes()
    base = [sys.executable, "-m", "tools.bench_denoise", "--limit", "1", "--sigmas", "25", "--sets", "Set12",
            "--methods", "models", "--repeat", "1", "--model", str(tiny_models["gray"])]
    refused = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "pass --out" in refused.stderr
    out = tmp_path / "trial.md"
    result = subprocess.run([*base, "--out", str(out), "--json", str(tmp_path / "t.json")], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert f"| {tiny_models['gray']} |" in text and "| denoise-gray-fast |" in text  # both, in one table
    assert (ROOT / "exported" / "manifest.json").read_bytes() == manifest


@pytest.mark.slow
def test_time_config_reports_the_cost_of_an_untrained_config(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"name": "tiny", "network": "unet_dae", "channels": 1, "train_dirs": ["x"],
                                  "network_args": {"width": 4, "depths": [1, 1, 1], "unshuffle": 2}}))
    cmd = [sys.executable, "-m", "tools.time_config", str(config), "--repeat", "1"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| tiny |"))
    _, name, params, macs, ms, _ = (cell.strip() for cell in row.split("|"))
    pytest.importorskip("torch", reason="counts a network built by training: needs torch")
    from training.nets import build

    built = build("unet_dae", channels=1, width=4, depths=[1, 1, 1], unshuffle=2)
    built.fuse_stem()  # as exported: the stem's strided conv stands for enc1's first conv
    shipped = sum(p.numel() for n, p in built.named_parameters() if not n.startswith("enc1.0."))
    assert int(params.replace(",", "")) == shipped
    assert 0 < float(macs.replace(",", "")) < 1000 and float(ms) > 0


@pytest.mark.slow
def test_time_config_times_exported_models_as_they_are():
    cmd = [sys.executable, "-m", "tools.time_config", "exported/denoise-gray-fast.onnx", "exported/denoise-gray-fast-int8.onnx",
           "--repeat", "1"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| denoise")}
    assert set(rows) == {"denoise-gray-fast", "denoise-gray-fast-int8"}
    macs = {name: row.split("|")[3].strip() for name, row in rows.items()}
    # Same multiply-adds, float or 8-bit, and within the fast models' 5k budget.
    assert macs["denoise-gray-fast"] == macs["denoise-gray-fast-int8"]
    assert 1000 < float(macs["denoise-gray-fast"].replace(",", "")) <= 5000


@pytest.mark.slow
def test_profile_graph_lists_every_node_once_with_its_share(tiny_models):
    from tools.profile_graph import profile

    path, times = profile(str(tiny_models["color"]), repeat=2)
    graph_ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    profiled_ops = [op for op, _ in times]
    # onnxruntime renames nodes and fuses each ReLU into its convolution, but every convolution
    # of the graph is timed, once.
    assert graph_ops.count("Conv") >= 2  # the tiny model (tests/conftest.py) has two convolutions
    for op in ("Conv", "ConvTranspose"):
        assert profiled_ops.count(op) == graph_ops.count(op), op
    assert all(us >= 0 for us in times.values()) and sum(times.values()) > 0
    cmd = [sys.executable, "-m", "tools.profile_graph", str(tiny_models["color"]), "--top", "3", "--repeat", "1"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and not line.startswith("| op")]
    assert len(rows) == 3 and all(row.rstrip().endswith("% |") for row in rows)


def test_split_anomalies_sets_defects_aside_without_overlap(tmp_path):
    from tools.split_anomalies import main

    data = tmp_path / "data"
    for kind, n in (("good", 4), ("crack", 10), ("fray", 3)):
        (data / "test" / kind).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(data / "test" / kind / f"{kind}{i}.png"), np.zeros((8, 8), np.uint8))
            if kind != "good":
                (data / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(data / "ground_truth" / kind / f"{kind}{i}_mask.png"), np.zeros((8, 8), np.uint8))
    val, ev = tmp_path / "val", tmp_path / "eval"
    assert main(["--data", str(data), "--val", str(val), "--eval", str(ev), "--fraction", "0.3"]) == 0
    aside = {p.name for p in val.iterdir()}
    assert len(aside) == 3 + 1 and all(n.startswith(("crack_", "fray_")) for n in aside)
    kept = {p.name for p in (ev / "test" / "crack").iterdir()} | {p.name for p in (ev / "test" / "fray").iterdir()}
    assert len(kept) == 13 - 4 and not {n.split("_", 1)[1] for n in aside} & kept
    assert len(list((ev / "test" / "good").iterdir())) == 4
    assert {p.name for p in (ev / "ground_truth" / "crack").iterdir()} == {
        f"{p.stem}_mask.png" for p in (ev / "test" / "crack").iterdir()}
    # A second split into the same folders would mix two splits: refused.
    assert main(["--data", str(data), "--val", str(val), "--eval", str(ev)]) == 2
