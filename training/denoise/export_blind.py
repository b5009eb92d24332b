"""Export a blind-denoiser run (training/denoise/train_blind.py) as two edge-ae models: the
denoiser, whose ``sigma`` input is now a per-pixel, per-channel noise map, and the noise-level
estimator it was trained with (kind ``noise-level``), named in the denoiser's metadata so the
runtime's blind path runs it first.

    python -m training.denoise.export_blind runs/blind-color-fast/best.pt \\
        --denoiser denoise-color-fast --estimator noise-level-color-fast [--out exported/]

Parity with PyTorch is checked for both files; manifest entries are added or replaced.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from edge_ae.model.contract import COLOR_ORDERS, ModelSpec
from training.denoise.export import DenoiserGraph, as_shipped, measure_receptive_field, parity_images
from training.denoise.train_blind import ROOT, BlindConfig, build_denoiser
from training.nets.noise_estimator import NoiseEstimator
from training.onnx_export import EXPORTED, check_parity, export, provenance, update_manifest


class EstimatorAsDenoiser(torch.nn.Module):
    """The estimator under the (image, sigma) call the receptive-field probe makes."""

    def __init__(self, est: NoiseEstimator) -> None:
        super().__init__()
        self.est = est

    def forward(self, image: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.est(image)


def config_path(name: str) -> Path:
    config = Path("training/denoise/configs") / f"{name}.json"
    return config if (ROOT / config).is_file() else config.parent / "trials" / config.name  # else a trial's


def command_for(checkpoint: Path, cfg: BlindConfig, denoiser: str, estimator: str, *, estimator_only: bool = False) -> str:
    """The whole recipe: how the starting denoiser was trained (its manifest entry, up to any
    earlier blind run), the run the estimator starts from (``estimator_init`` in runs/), then this
    run and its export."""
    own = (f"python -m training.denoise.train_blind {config_path(cfg.name)} && python -m training.denoise.export_blind "
           f"runs/{cfg.name}/{checkpoint.name} --denoiser {denoiser} --estimator {estimator}"
           + (" --estimator-only" if estimator_only else ""))
    init = Path(cfg.estimator_init)
    if init.parts[:1] == ("runs",) and len(init.parts) > 2:
        own = f"python -m training.denoise.train_blind {config_path(init.parts[1])} && {own}"
    start = Path(cfg.denoiser_init)
    manifest = ROOT / start.parent / "manifest.json"
    if start.suffix == ".onnx" and manifest.is_file():
        entry = next((m for m in json.loads(manifest.read_text())["models"] if m["file"] == start.name), None)
        before = entry.get("training_command", "") if entry else ""
        before = before.split(" && python -m training.denoise.train_blind")[0]  # the denoiser's own training
        if before:
            return f"{before} && {own}"
    return own


def export_run(checkpoint: Path, *, denoiser_name: str, estimator_name: str, out_dir: Path = EXPORTED,
               manifest: bool = True, estimator_only: bool = False) -> tuple[Path | None, Path]:
    ckpt = torch.load(checkpoint, weights_only=False, map_location="cpu")
    cfg = BlindConfig(**ckpt["config"])
    den = build_denoiser(cfg)
    den.load_state_dict(ckpt["denoiser"])
    den.eval()
    est = NoiseEstimator(channels=cfg.channels, **cfg.estimator_args)
    est.load_state_dict(ckpt["estimator"])
    est.eval()
    command = command_for(checkpoint, cfg, denoiser_name, estimator_name, estimator_only=estimator_only)
    metrics = {"real_psnr_db_polyu_crops": round(float(ckpt.get("real_psnr", float("nan"))), 3),
               "holdout_psnr_db": round(float(ckpt.get("holdout_psnr25", float("nan"))), 3), "holdout_sigma": 25.0}
    data = (", ".join(cfg.train_dirs) + f" through the camera pipeline ({cfg.camera_fraction:.0%}), "
            f"Poisson-Gaussian + JPEG ({cfg.poisson_fraction:.0%}) and Gaussian sigma 0-{cfg.sigma_max:g} (the rest)")
    extra = {"steps": int(ckpt.get("step", 0)), "seed": cfg.seed, "config": cfg.name,
             "denoiser_init": cfg.denoiser_init, "freeze_steps": cfg.freeze_steps,
             "denoiser_lr": cfg.denoiser_lr}
    rng = np.random.default_rng(0)
    images = parity_images(cfg.channels, rng)

    est_spec = ModelSpec(
        name=estimator_name, kind="noise-level", channels=cfg.channels, color_order=COLOR_ORDERS[cfg.channels],
        size_multiple=int(est.size_multiple),
        receptive_field=measure_receptive_field(EstimatorAsDenoiser(est), cfg.channels),
        description=f"Noise-level estimator for {denoiser_name}: per-pixel, per-channel map of the level that "
        "denoiser cleans real camera photos best at (learnt end to end through it, CBDNet-style, beside clean, "
        "JPEG-only and white-noise samples; the runtime reads white noise classically, edge_ae/denoise/white_noise.py)",
        provenance=provenance(command=command, data=data, metrics=metrics,
                              extra={**extra, "estimator_args": cfg.estimator_args}),
    )
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "noise_map": {0: "batch", 2: "height", 3: "width"}}
    est_path = export(est, (torch.rand(1, cfg.channels, 64, 64),), est_spec, out_dir / f"{estimator_name}.onnx",
                      dynamic_axes=dyn)
    worst_est = max(check_parity(est, est_path, {"image": im}) for im in images)
    if estimator_only:  # the denoiser's weights never change here, so its file (and 8-bit twin) can stay
        if manifest:
            update_manifest(est_spec, est_path)
        print(f"exported {est_path} (receptive field {est_spec.receptive_field}px, parity {worst_est:.1e})")
        return None, est_path

    den_spec = ModelSpec(
        name=denoiser_name, kind="denoiser", channels=cfg.channels, color_order=COLOR_ORDERS[cfg.channels],
        size_multiple=int(den.size_multiple), receptive_field=measure_receptive_field(den, cfg.channels),
        noise_input=True, noise_map=True, noise_estimator=estimator_name, noise_levels=(0.0, float(cfg.sigma_max)),
        description=cfg.description,
        provenance=provenance(command=command, data=data, metrics=metrics,
                              extra={**extra, "network": "unet_dae",
                                     "network_args": {**cfg.denoiser_args, "noise_channels": cfg.noise_channels}}),
    )
    trained = DenoiserGraph(den, True)
    graph = DenoiserGraph(as_shipped(den), True)
    example = (torch.rand(1, cfg.channels, 64, 64), torch.full((1, cfg.noise_channels, 64, 64), 0.05))
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "sigma": {0: "batch", 2: "height", 3: "width"},
           "denoised": {0: "batch", 2: "height", 3: "width"}}
    den_path = export(graph, example, den_spec, out_dir / f"{denoiser_name}.onnx", dynamic_axes=dyn)
    worst_den = 0.0
    for clean in images:
        noisy = (clean + rng.standard_normal(clean.shape, dtype=np.float32) * 0.05).astype(np.float32)
        with torch.no_grad():
            level = est(torch.from_numpy(noisy)).numpy()
        worst_den = max(worst_den, check_parity(trained, den_path, {"image": noisy, "sigma": level}))
    if manifest:
        update_manifest(est_spec, est_path)
        update_manifest(den_spec, den_path)
    print(f"exported {est_path} (receptive field {est_spec.receptive_field}px, parity {worst_est:.1e}) and "
          f"{den_path} (receptive field {den_spec.receptive_field}px, parity {worst_den:.1e})")
    return den_path, est_path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--denoiser", required=True, help="name of the exported denoiser")
    ap.add_argument("--estimator", required=True, help="name of the exported noise-level model")
    ap.add_argument("--out", type=Path, default=EXPORTED)
    ap.add_argument("--no-manifest", action="store_true", help="do not touch the manifest (trial exports)")
    ap.add_argument("--estimator-only", action="store_true",
                    help="export only the estimator (the frozen denoiser's file and its 8-bit twin stay as they are)")
    args = ap.parse_args(argv)
    export_run(args.checkpoint, denoiser_name=args.denoiser, estimator_name=args.estimator, out_dir=args.out,
               manifest=not args.no_manifest, estimator_only=args.estimator_only)


if __name__ == "__main__":
    main()
