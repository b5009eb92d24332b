"""What a denoiser config would cost before training it: parameters, multiply-adds per pixel and
milliseconds per 640x480 frame of the exported graph, with untrained weights.

    python tools/time_config.py training/configs/denoise-gray-fast.json training/configs/trials/denoise-gray-fast-fold4.json
    python tools/time_config.py exported/denoise-gray-fast.onnx exported/denoise-gray-fast-int8.onnx

An ``.onnx`` argument (an exported denoiser, e.g. a float model and its 8-bit version) is timed
as it is, the same way.

Each config's network is built with random weights, exported to ONNX in a temporary folder
(the same graph as ``training/export_denoiser.py``: network plus clipping) and timed with
onnxruntime at 2 threads on one 640x480 frame, the median of ``--repeat`` runs after a warm-up.
The time is the graph's alone, as in the "graph ms" column of ``tools/bench_denoise.py``;
weights do not change it. Needs the ``train`` extra (torch). Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_ae import load_model  # noqa: E402
from tools.macs import count as count_macs  # noqa: E402
from training.export_denoiser import DenoiserGraph  # noqa: E402
from training.nets import build  # noqa: E402
from training.train_denoiser import DenoiserConfig  # noqa: E402

THREADS = 2
HEIGHT, WIDTH = 480, 640


def graph_ms(path: Path, channels: int, noise_input: bool, repeat: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {"image": np.random.default_rng(0).random((1, channels, HEIGHT, WIDTH), dtype=np.float32)}
    if noise_input:
        feeds["sigma"] = np.full((1, 1), 25 / 255, np.float32)
    session.run(None, feeds)  # warm-up: the first run allocates
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(config_path: Path, repeat: int, folder: Path) -> tuple[str, int, float, float]:
    cfg = DenoiserConfig.load(config_path)
    torch.manual_seed(0)
    net = build(cfg.network, channels=cfg.channels, **cfg.network_args).eval()
    noise_input = cfg.network != "plain_cae"
    example: tuple[torch.Tensor, ...] = (torch.rand(1, cfg.channels, 64, 64),)
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "denoised": {0: "batch", 2: "height", 3: "width"}}
    names = ["image"]
    if noise_input:
        example += (torch.full((1, 1), 0.1),)
        names.append("sigma")
        axes["sigma"] = {0: "batch"}
    path = folder / f"{cfg.name}.onnx"
    torch.onnx.export(DenoiserGraph(net, noise_input), example, str(path), input_names=names,
                      output_names=["denoised"], dynamic_axes=axes, opset_version=17, dynamo=False)
    params, macs = count_macs(path)
    return cfg.name, params, macs, graph_ms(path, cfg.channels, noise_input, repeat)


def measure_onnx(path: Path, repeat: int) -> tuple[str, int, float, float]:
    spec = load_model(path, kind="denoiser").spec  # channels and noise input from the metadata
    params, macs = count_macs(path)
    return spec.name, params, macs, graph_ms(path, spec.channels, spec.noise_input, repeat)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", type=Path,
                    help="denoiser JSON configs (training/configs/) or exported denoisers (.onnx)")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per config (default 30)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"| config | parameters | multiply-adds / pixel | graph ms, 640x480, {THREADS} threads |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            if config.suffix == ".onnx":
                name, params, macs, ms = measure_onnx(config, args.repeat)
            else:
                name, params, macs, ms = measure(config, args.repeat, Path(tmp))
            print(f"| {name} | {params:,} | {macs:,.0f} | {ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
