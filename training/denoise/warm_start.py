"""Start a denoiser's training from another model's weights instead of random ones.

A config names its starting point with ``init_from`` (another config, whose run's ``best.pt`` is
used) or the command line with ``--init FILE`` (a ``.pt`` checkpoint, or an exported edge-ae
``.onnx`` whose initializers are the network's weights). Every parameter whose name and shape
match is copied; the others keep their seeded random start. So a network that changes one layer
keeps everything it learnt elsewhere and trains the new layer. One change is converted rather
than restarted: a 3x3 head becoming a separable one (``unet_dae``'s ``head``) starts from the
closest separable filter, the best rank-1 factorisation of each input channel's 3x3 taps, since
a random head would first undo what the rest of the network knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edge_ae.model.registry import sha256_of
from training.nets.unet_dae import StridedStem

ONNX_PREFIX = "net."  # export_denoiser.DenoiserGraph holds the network as ``net``


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    """The network weights stored in a training checkpoint or an exported denoiser."""
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        weights = {i.name[len(ONNX_PREFIX):]: torch.from_numpy(numpy_helper.to_array(i).copy())
                   for i in model.graph.initializer if i.name.startswith(ONNX_PREFIX)}
        if "stem.conv.weight" in weights:
            # A folded model ships its first layer fused into one strided conv (export_denoiser.as_shipped);
            # training runs the fold and the conv on the folded grid, so map the weights back.
            weights["enc1.0.weight"] = StridedStem.folded_weight(weights.pop("stem.conv.weight"))
            weights["enc1.0.bias"] = weights.pop("stem.conv.bias")
        return weights
    checkpoint = torch.load(path, weights_only=False, map_location="cpu")
    return checkpoint["model"]


def load_matching(net: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Copy into ``net`` the weights of ``path`` that fit it; return what was done, for provenance."""
    if not path.is_file():
        raise FileNotFoundError(f"initial weights not found: {path}")
    source = weights_of(path)
    state = net.state_dict()
    copied = {k: v for k, v in source.items() if k in state and state[k].shape == v.shape}
    if not copied:
        raise ValueError(f"{path}: no weight fits this network (names or shapes differ everywhere)")
    converted = separable_head_from_full(source, state)
    copied.update(converted)
    state.update(copied)
    net.load_state_dict(state)
    return {"file": path.name, "sha256": sha256_of(path), "copied": len(copied) - len(converted),
            **({"converted": "3x3 head -> separable head (rank-1 factorisation per input channel)"} if converted else {}),
            "kept_random": sorted(k for k in state if k not in copied)}


def separable_head_from_full(source: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Depthwise and pointwise weights closest (least squares) to a full 3x3 head in ``source``,
    when ``state`` has a separable head of the same channels; else nothing. For each input channel
    c the (outputs x 9) matrix of its taps is replaced by its first singular pair: pointwise
    column ``u * s``, depthwise filter ``v``."""
    full = source.get("head.weight")
    depthwise, pointwise = state.get("head.depthwise.weight"), state.get("head.pointwise.weight")
    if full is None or depthwise is None or pointwise is None or full.dim() != 4:
        return {}
    cout, cin, kh, kw = full.shape
    if depthwise.shape != (cin, 1, kh, kw) or pointwise.shape != (cout, cin, 1, 1):
        return {}
    dw, pw = torch.empty_like(depthwise), torch.empty_like(pointwise)
    for c in range(cin):
        u, s, vh = torch.linalg.svd(full[:, c].reshape(cout, kh * kw).double(), full_matrices=False)
        dw[c, 0] = vh[0].reshape(kh, kw).float()
        pw[:, c, 0, 0] = (u[:, 0] * s[0]).float()
    out = {"head.depthwise.weight": dw, "head.pointwise.weight": pw}
    if "head.bias" in source and source["head.bias"].shape == state["head.pointwise.bias"].shape:
        out["head.pointwise.bias"] = source["head.bias"]
    return out
