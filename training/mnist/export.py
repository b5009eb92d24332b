"""Export an autoencoder as three graphs under the edge-ae contract: the full model (kind
``autoencoder``, listing the other two in ``parts``), its encoder and its decoder. Each is
checked against PyTorch; shipped ones also get manifest entries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_ae.model.contract import ModelSpec
from edge_ae.model.loading import make_session
from training.onnx_export import check_parity, export, update_manifest

INPUT_SIZE = (28, 28)


def specs(name: str, latent_dim: int, description: str, prov: dict[str, Any], *, with_parts: bool = True) -> dict[str, ModelSpec]:
    """The contract of each part; the file of part ``p`` is ``{spec.name}.onnx``."""
    common: dict[str, Any] = dict(channels=1, color_order="GRAY", input_size=INPUT_SIZE, receptive_field=28,
                  latent_dim=latent_dim, provenance=prov)
    return {
        "autoencoder": ModelSpec(name=name, kind="autoencoder", description=description,
                                 parts={"encoder": f"{name}-encoder.onnx", "decoder": f"{name}-decoder.onnx"} if with_parts
                                 else {}, **common),
        "encoder": ModelSpec(name=f"{name}-encoder", kind="encoder", description=f"Encoder of {name}: {description}",
                             **common),
        "decoder": ModelSpec(name=f"{name}-decoder", kind="decoder", description=f"Decoder of {name}: {description}",
                             **common),
    }


def latency_ms(path: Path, feeds: dict[str, np.ndarray], *, repeats: int = 50) -> float:
    """Median single-image latency on one CPU thread, in milliseconds."""
    session = make_session(path, 1)
    session.run(None, feeds)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 3)


def export_autoencoder(
    model: torch.nn.Module,
    *,
    name: str,
    folder: Path,
    description: str,
    provenance: dict[str, Any],
    parity_images: np.ndarray,
    ship: bool = False,
    quality: dict[str, Any] | None = None,
    measure_speed: bool = True,
    with_parts: bool = True,
) -> dict[str, Any]:
    """Write ``name.onnx``, ``name-encoder.onnx`` and ``name-decoder.onnx`` into ``folder``;
    with ``ship``, record all three in ``folder/manifest.json``. Returns files and parity."""
    model.eval()
    images = np.ascontiguousarray(parity_images[:64], dtype=np.float32)
    encoder, decoder = model.encoder, model.decoder
    assert isinstance(encoder, torch.nn.Module) and isinstance(decoder, torch.nn.Module)
    with torch.no_grad():
        latents = encoder(torch.from_numpy(images)).numpy()
    parts = specs(name, int(model.latent_dim), description, provenance, with_parts=with_parts)  # type: ignore[arg-type]
    example_image = (torch.from_numpy(images[:2]),)
    example_latent = (torch.from_numpy(latents[:2]),)
    plan = {
        "autoencoder": (model, example_image, {"image": images}, {"image": {0: "batch"}, "reconstruction": {0: "batch"}}),
        "encoder": (encoder, example_image, {"image": images}, {"image": {0: "batch"}, "latent": {0: "batch"}}),
        "decoder": (decoder, example_latent, {"latent": latents}, {"latent": {0: "batch"}, "image": {0: "batch"}}),
    }
    result: dict[str, Any] = {"files": {}, "parity_max_abs_diff": {}, "size_bytes": {}, "latency_ms_1thread": {}}
    if not with_parts:  # the whole model only (the one-class recipe's twenty per-class models)
        plan = {"autoencoder": plan["autoencoder"]}
    for kind, (module, example, feeds, dyn) in plan.items():
        spec = parts[kind]
        path = export(module, example, spec, folder / f"{spec.name}.onnx", dynamic_axes=dyn)
        result["parity_max_abs_diff"][kind] = check_parity(module, path, feeds)
        result["files"][kind] = path.name
        result["size_bytes"][kind] = path.stat().st_size
        if measure_speed:
            result["latency_ms_1thread"][kind] = latency_ms(path, {k: v[:1] for k, v in feeds.items()})
        if ship:
            speed = {"latency_ms_per_image_1thread": result["latency_ms_1thread"][kind]} if measure_speed else {}
            # Parts carry the whole model's quality, marked as such.
            q = dict(quality or {}) if kind == "autoencoder" else dict(quality or {}, part_of=name)
            update_manifest(spec, path, quality=q, speed=speed)
    return result
