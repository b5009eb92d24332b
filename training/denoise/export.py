"""Export a trained denoiser checkpoint to ONNX under the edge-ae contract.

    python -m training.denoise.export runs/denoise-color/best.pt [--out exported/]

Clipping to [0, 1] is part of the exported graph, so the runtime cannot forget it. A folded
model's first layer is exported as one strided convolution (``UNetDAE.fuse_stem``): the same
sums, faster in onnxruntime; parity is checked against the network as trained. The
receptive field is measured (gradient of one output pixel), not assumed. Parity with PyTorch
is checked on real validation images when ``../shared`` is present, else on synthetic ones.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from edge_ae.model.contract import COLOR_ORDERS, ModelSpec
from training import data
from training.denoise.train import SHARED, DenoiserConfig
from training.nets import build
from training.nets.unet_dae import UNetDAE
from training.onnx_export import EXPORTED, check_parity, export, provenance, update_manifest

CONFIGS = Path(__file__).resolve().parent / "configs"


class DenoiserGraph(torch.nn.Module):
    """What ships: the network plus the fixed post-processing (clip to the value range)."""

    def __init__(self, net: torch.nn.Module, noise_input: bool) -> None:
        super().__init__()
        self.net = net
        self.noise_input = noise_input

    def forward(self, image: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        if sigma is None:
            sigma = torch.zeros(image.shape[0], 1)
        return torch.clamp(self.net(image, sigma), 0.0, 1.0)


def as_shipped(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` in the form that ships: the same sums, written the way onnxruntime runs
    faster (a folded model's first layer as one strided conv, ``UNetDAE.fuse_stem``)."""
    fast = copy.deepcopy(net)
    if isinstance(fast, UNetDAE):
        fast.fuse_stem()
    return fast


def measure_receptive_field(net: torch.nn.Module, channels: int, size: int = 192, largest: int = 1536) -> int:
    """Width in pixels of the input region that can influence one output pixel (centre of a
    ``size`` x ``size`` input), measured from gradients on a copy whose convolutions have
    positive weights and whose max-pools average, so that no ReLU is dead, no pooling window
    hides its losers, and the structural extent shows. When the field fills the probe, the probe
    doubles (up to ``largest``): a field cut off by the probe would make tiles too narrow."""
    while True:
        rf = _receptive_field_in_probe(net, channels, size)
        if rf < size - 2:
            return rf
        if 2 * size > largest:
            raise ValueError(f"receptive field fills the {size}px probe (largest allowed: {largest}px)")
        size *= 2


def _receptive_field_in_probe(net: torch.nn.Module, channels: int, size: int) -> int:
    probe = copy.deepcopy(net).eval()
    for parent in list(probe.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, torch.nn.MaxPool2d):
                setattr(parent, child_name, torch.nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    x = torch.rand(1, channels, size, size, requires_grad=True)
    out = probe(x + 0.5, torch.full((1, 1), 0.1))
    out[0, :, size // 2, size // 2].sum().backward()
    assert x.grad is not None
    grad = x.grad.abs().sum(dim=(0, 1))
    rows = torch.nonzero(grad.sum(dim=1)).flatten()
    cols = torch.nonzero(grad.sum(dim=0)).flatten()
    return int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1


def parity_images(channels: int, rng: np.random.Generator) -> list[np.ndarray]:
    folder = SHARED / "denoise" / "val" / ("Set12" if channels == 1 else "McMaster")
    if folder.is_dir():
        images = [data.load_image(p, channels)[:200, :200] for p in data.list_images(folder)[:2]]
    else:
        images = [rng.random((96, 128, channels), dtype=np.float32)]
    return [im.transpose(2, 0, 1)[None].copy() for im in images]


def init_chain(cfg: DenoiserConfig) -> list[str]:
    """The config names whose runs make this model, oldest first: each ``init_from`` starts from
    the run before it (a name without a config file in training/denoise/configs/ ends the chain)."""
    chain = [cfg.name]
    start = cfg.init_from
    while start and start not in chain:
        chain.append(start)
        path = CONFIGS / f"{start}.json"
        start = DenoiserConfig.load(path).init_from if path.is_file() else ""
    return chain[::-1]


def export_checkpoint(checkpoint: Path, out_dir: Path = EXPORTED, name: str | None = None,
                      manifest: bool = True) -> tuple[Path, ModelSpec]:
    ckpt = torch.load(checkpoint, weights_only=False)
    cfg = DenoiserConfig(**ckpt["config"])
    net = build(cfg.network, channels=cfg.channels, **cfg.network_args)
    net.load_state_dict(ckpt["model"])
    net.eval()
    noise_input = cfg.network != "plain_cae"
    trained = DenoiserGraph(net, noise_input)
    # Parity below is checked against the network as trained, not against its shipped form.
    graph = DenoiserGraph(as_shipped(net), noise_input)
    name = name or cfg.name
    # Trained on from other configs' weights: those runs come first, oldest first.
    command = " && ".join(f"python -m training.denoise.train training/denoise/configs/{step}.json"
                          for step in init_chain(cfg))
    if "qat" in ckpt:  # then fine-tuned for 8 bits, as train_all_denoisers.sh does
        command += f" && python -m training.denoise.qat runs/{cfg.name}/best.pt --out runs/qat"
    spec = ModelSpec(
        name=name,
        kind="denoiser",
        channels=cfg.channels,
        color_order=COLOR_ORDERS[cfg.channels],
        size_multiple=int(net.size_multiple),  # type: ignore[arg-type]
        receptive_field=measure_receptive_field(net, cfg.channels),
        noise_input=noise_input,
        noise_levels=(0.0, float(cfg.sigma_max)),
        description=cfg.description,
        provenance=provenance(
            command=command,
            data=", ".join(cfg.train_dirs) + f" (noise: Gaussian sigma 0-{cfg.sigma_max:g}, "
            f"{cfg.camera_fraction:.0%} camera Poisson-Gaussian + JPEG)"
            + (f" at scales {', '.join(f'{x:g}' for x in cfg.scales)}" if cfg.scales != [1.0] else ""),
            metrics={"holdout_psnr_db": round(float(ckpt.get("val_psnr", float("nan"))), 3),
                     "holdout_sigma": cfg.val_sigma},
            extra={"steps": int(ckpt.get("step", 0)), "seed": cfg.seed, "network": cfg.network,
                   "network_args": cfg.network_args,
                   **({"qat": ckpt["qat"]} if "qat" in ckpt else {}),  # fine-tuned by training.denoise.qat
                   **({"init": ckpt["init"]} if ckpt.get("init") else {})},  # started from these weights
        ),
    )
    example: tuple[torch.Tensor, ...] = (torch.rand(1, cfg.channels, 64, 64), torch.full((1, 1), 0.1))
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "denoised": {0: "batch", 2: "height", 3: "width"}}
    if noise_input:
        dyn["sigma"] = {0: "batch"}
    else:
        example = example[:1]
    path = export(graph, example, spec, out_dir / f"{name}.onnx", dynamic_axes=dyn)
    rng = np.random.default_rng(0)
    worst = 0.0
    for clean in parity_images(cfg.channels, rng):
        noisy = (clean + rng.standard_normal(clean.shape, dtype=np.float32) * 0.1).astype(np.float32)
        feeds = {"image": noisy}
        if noise_input:
            feeds["sigma"] = np.full((1, 1), 0.1, np.float32)
        worst = max(worst, check_parity(trained, path, feeds))
    if manifest:
        update_manifest(spec, path)
    print(f"exported {path} (receptive field {spec.receptive_field}px, parity {worst:.1e})")
    return path, spec


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, default=EXPORTED)
    ap.add_argument("--name", help="model name (default: the config's)")
    args = ap.parse_args(argv)
    export_checkpoint(args.checkpoint, args.out, args.name)


if __name__ == "__main__":
    main()
