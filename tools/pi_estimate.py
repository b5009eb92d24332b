"""ESTIMATE (not a measurement) of each shipped model's frame time on a Raspberry Pi 4 and 5,
from published Pi figures for a reference network and the models' multiply-adds.

    python tools/pi_estimate.py [--threads 2] [--repeat 5] [--out FILE.md]

No Pi was used. The method:

1. Published: ncnn's benchmark table (Tencent/ncnn, benchmark/README.md, at commit a4d2ea1,
   "benchncnn 10 4 0 -1 1", 4 threads) gives ResNet-18 at 224x224 on a Pi 4 (Cortex-A72,
   1.8 GHz) and a Pi 5 (Cortex-A76, 2.4 GHz), float and int8. Divided into ResNet-18's
   multiply-adds (counted here from the graph by tools/macs.py), that is each board's rate
   on a dense 3x3-convolution network.
2. Measured here: the same ResNet-18 architecture (random weights: only its speed matters),
   exported to ONNX and timed with onnxruntime on this host, and each shipped model's graph at
   the frame's size, same threads, as the median of --repeat runs. A model's *efficiency* is its
   multiply-adds per second divided by ResNet-18's: how much of a dense network's rate its
   layers (few channels, large images, element-wise work) get.
3. Estimate: multiply-adds per frame / (board rate x efficiency); 8-bit: the float estimate
   times the board's published int8/float ratio for ResNet-18 (ncnn's, a framework with
   hand-written int8 kernels for both cores; onnxruntime's A72 path has no dot product and may
   gain less).

Likely optimistic: ncnn is faster than onnxruntime on these boards, and 640x480 activations do
not fit the Pis' caches as well as this host's. Use ``edge-ae bench`` on the board for real
figures. Needs the dev venv (torch builds the stand-in network, onnx counts multiply-adds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_ae.anomaly.inputs import model_input_size  # noqa: E402
from edge_ae.errors import EdgeAEError  # noqa: E402
from edge_ae.model.loading import load_model, make_session  # noqa: E402
from edge_ae.model.registry import list_models  # noqa: E402
from tools.macs import count  # noqa: E402

SOURCE = "Tencent/ncnn benchmark/README.md (commit a4d2ea1), benchncnn, 4 threads, average of 10 runs"
# ms for ResNet-18 at 224x224 (float, int8), from SOURCE
PUBLISHED: dict[str, dict[str, Any]] = {
    "Pi 4": {"core": "Cortex-A72 1.8 GHz x4, no 8-bit dot product", "fp32": 123.12, "int8": 83.92},
    "Pi 5": {"core": "Cortex-A76 2.4 GHz x4, 8-bit dot product", "fp32": 19.96, "int8": 16.74},
}
SIZES = ((320, 240), (640, 480))
SKIP_KINDS = ("autoencoder", "encoder", "decoder")  # 28x28 MNIST models: not frame models


def resnet18_onnx(folder: Path) -> Path:
    """ResNet-18 (He et al. 2016; torchvision's layout), random weights, as ONNX."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(y)) + self.down(x))

    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)).eval()
    path = folder / "resnet18.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 224, 224),), str(path), input_names=["image"], output_names=["logits"],
                      opset_version=17, dynamo=False)
    return path


def session(path: Path, threads: int) -> ort.InferenceSession:
    return make_session(path, threads)


def time_graph(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], repeat: int) -> float:
    sess.run(None, feeds)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_feeds(model, width: int, height: int) -> tuple[dict[str, np.ndarray], int, int]:
    """Graph inputs for one frame of this size, and the image size the graph sees."""
    spec = model.spec
    if spec.kind == "anomaly":
        h, w = model_input_size(spec, height, width)
    elif spec.input_size:
        h, w = spec.input_size
    else:
        m = spec.size_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
    feeds = {}
    for i in model.session.get_inputs():
        if len(i.shape) == 4:
            feeds[i.name] = np.random.default_rng(0).random((1, spec.channels, h, w), dtype=np.float32)
        else:
            feeds[i.name] = np.full([d if isinstance(d, int) and d > 0 else 1 for d in i.shape], 0.1, np.float32)
    return feeds, h, w


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime threads for the measurements here")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", nargs="+", help="only these shipped models")
    ap.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ref_path = resnet18_onnx(Path(tmp))
        _, ref_per_pixel = count(ref_path, 224, 224)
        ref_macs = ref_per_pixel * 224 * 224
        ref_sess = session(ref_path, args.threads)
        ref_feeds = {"image": np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)}
        rows = []
        ref_times = []
        shipped = {e.name for e in list_models()}
        for entry in list_models():
            if entry.kind in SKIP_KINDS or (args.models and entry.name not in args.models):
                continue
            if entry.name.endswith("-int8"):
                continue  # estimated from its float sibling: this host's 8-bit speed (VNNI) says nothing of a Pi's
            try:
                model = load_model(entry.name, threads=args.threads)
            except EdgeAEError as exc:  # e.g. a model being rewritten in a shared tree
                print(f"  skipped {entry.name}: {exc}", file=sys.stderr, flush=True)
                continue
            sess = session(entry.path, args.threads)
            # ResNet-18 timed right before each model, so a busy spell of this shared host
            # slows both sides of the ratio alike
            ref_s = time_graph(ref_sess, ref_feeds, args.repeat)
            ref_times.append(ref_s)
            per_size = []
            for width, height in SIZES:
                feeds, h, w = model_feeds(model, width, height)
                _, per_pixel = count(entry.path, h, w)
                macs = per_pixel * h * w
                per_size.append((macs, time_graph(sess, feeds, args.repeat)))
            rows.append((entry, per_size, ref_macs / ref_s))
            print(f"  measured {entry.name}", file=sys.stderr, flush=True)

    if not rows:
        raise SystemExit("pi_estimate: no shipped frame models to estimate")
    lines = [
        "ESTIMATE, not a measurement: no Pi was used. Frame time of each model's graph (4 threads), from "
        f"ResNet-18's published time on each board ({SOURCE}) and the model's multiply-adds, scaled by its "
        "efficiency relative to ResNet-18 measured with onnxruntime on this host "
        f"({args.threads} threads; ResNet-18 {ref_macs / 1e9:.2f} G multiply-adds, timed before each model: "
        f"{1000 * min(ref_times):.1f}-{1000 * max(ref_times):.1f} ms).",
        "",
        "| model | G multiply-adds per frame (320x240 / 640x480) | efficiency vs ResNet-18 here | "
        "Pi 4 fp32 | Pi 4 int8 | Pi 5 fp32 | Pi 5 int8 |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry, per_size, ref_rate in rows:
        # efficiency at 640x480 (the larger frame; the smaller one is similar) from this host's times
        macs_big, secs_big = per_size[-1]
        eff = (macs_big / secs_big) / ref_rate
        cells = []
        for board in ("Pi 4", "Pi 5"):
            pub = PUBLISHED[board]
            rate = ref_macs / (pub["fp32"] / 1000.0)
            fp32 = [macs / (rate * eff) * 1000.0 for macs, _ in per_size]
            int8 = [ms * pub["int8"] / pub["fp32"] for ms in fp32]
            has_int8 = f"{entry.name}-int8" in shipped
            cells += [" / ".join(f"{ms:.0f}" for ms in fp32), " / ".join(f"{ms:.0f}" for ms in int8) if has_int8 else "-"]
        macs_text = " / ".join(f"{m / 1e9:.2f}" for m, _ in per_size)
        lines.append(f"| {entry.name} | {macs_text} | {eff:.2f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Times in ms per frame, 320x240 / 640x480. 'int8' columns scale the float estimate by the board's "
        f"published ResNet-18 int8/float ratio (Pi 4 {PUBLISHED['Pi 4']['int8'] / PUBLISHED['Pi 4']['fp32']:.2f}, "
        f"Pi 5 {PUBLISHED['Pi 5']['int8'] / PUBLISHED['Pi 5']['fp32']:.2f}): the model's -int8 copy, where one ships. "
        "Anomaly models resize every frame to their own input size, so their cost barely depends on the frame's.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
