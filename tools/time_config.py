"""What a denoiser config would cost before training it: parameters, multiply-adds per pixel and
milliseconds per 640x480 frame of the exported graph, with untrained weights.

    python -m tools.time_config training/denoise/configs/denoise-gray-fast.json \
        training/denoise/configs/trials/denoise-gray-fast-fold4.json
    python -m tools.time_config exported/denoise-gray-fast.onnx exported/denoise-gray-fast-int8.onnx
    python -m tools.time_config exported/denoise-color-fast.onnx exported/noise-level-color-fast.onnx

An ``.onnx`` argument (an exported denoiser, e.g. a float model and its 8-bit version) is timed
as it is, the same way.

Each config's network is built with random weights, exported to ONNX in a temporary folder
(the same graph as ``training/denoise/export.py``: network plus clipping, first layer fused)
and timed with onnxruntime at 2 threads on one 640x480 frame: the median of ``--repeat`` runs,
taken in rounds over all the arguments as in ``tools/bench_denoise.py`` (``time_in_passes``), so
that the models compared see the same fast and slow spells of a shared machine. The time is the
graph's alone, as in the "graph ms" column of ``tools/bench_denoise.py``; weights do not change
it. Needs the ``train`` extra (torch). Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edge_ae import load_model, make_session
from tools.bench_denoise import PASSES, time_in_passes
from tools.macs import count as count_macs
from training.denoise.export import DenoiserGraph, as_shipped
from training.denoise.train import DenoiserConfig
from training.nets import build

THREADS = 2
HEIGHT, WIDTH = 480, 640


def graph_call(path: Path, channels: int, noise_input: bool) -> Callable[[object], object]:
    """One 640x480 run of the graph at ``path``, ready to time (session built, warmed up)."""
    session = make_session(path, THREADS)
    feeds = {"image": np.random.default_rng(0).random((1, channels, HEIGHT, WIDTH), dtype=np.float32)}
    sigma = next((i for i in session.get_inputs() if i.name == "sigma"), None)
    if noise_input and sigma is not None:  # a noise-map model takes it per pixel and channel
        shape = (1, channels, HEIGHT, WIDTH) if len(sigma.shape) == 4 else (1, 1)
        feeds["sigma"] = np.full(shape, 25 / 255, np.float32)
    session.run(None, feeds)  # warm-up: the first run allocates
    return lambda _: session.run(None, feeds)


def export_config(config_path: Path, folder: Path) -> tuple[str, Path, int, bool]:
    """Build the config's network with random weights and export it; (name, path, channels, noise input)."""
    cfg = DenoiserConfig.load(config_path)
    torch.manual_seed(0)
    net = as_shipped(build(cfg.network, channels=cfg.channels, **cfg.network_args).eval())
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
    return cfg.name, path, cfg.channels, noise_input


def describe_onnx(path: Path) -> tuple[str, Path, int, bool]:
    # channels and noise input from the metadata; a noise-level estimator is timed the same way
    spec = load_model(path, kind=("denoiser", "noise-level")).spec
    return spec.name, path, spec.channels, spec.noise_input


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", type=Path,
                    help="denoiser JSON configs (training/denoise/configs/) or exported denoisers (.onnx)")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per config (default 30)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        graphs = [describe_onnx(c) if c.suffix == ".onnx" else export_config(c, Path(tmp)) for c in args.configs]
        calls = {i: (graph_call(path, channels, noise), None, args.repeat)
                 for i, (_, path, channels, noise) in enumerate(graphs)}
        ms = time_in_passes(calls, PASSES)
        print(f"| config | parameters | multiply-adds / pixel | graph ms, 640x480, {THREADS} threads |")
        print("|---|---|---|---|")
        for i, (name, path, _, _) in enumerate(graphs):
            params, macs = count_macs(path)
            print(f"| {name} | {params:,} | {macs:,.0f} | {ms[i]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
