"""Calibrate the trained graph on held-out images and export it under the edge-ae contract."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from edge_ae.anomaly.calibration import calibrate_f1, calibrate_fpr
from edge_ae.model.contract import COLOR_ORDERS, AnomalyCalibration, ModelSpec
from edge_ae.model.loading import make_session
from training.anomaly import data
from training.anomaly.config import SIZE_MULTIPLE, AnomalyConfig
from training.anomaly.train import Prepared, Trained, build_graph, graph_scores
from training.metrics import auroc, precision_recall_f1
from training.onnx_export import PARITY_TOLERANCE, export, provenance, update_manifest

METHOD_DESCRIPTIONS = {
    "learned": "a convolutional autoencoder repairs the image and a U-Net segmenter trained on synthetic defects "
    "maps where image and repair differ; score: the map's top pixels.",
    "error": "convolutional autoencoder, multi-scale L1+SSIM error map, top-k score.",
}
IO_AXES = {"image": {0: "batch"}, "anomaly_map": {0: "batch"}, "score": {0: "batch"}}
# A model that keeps the aspect ratio takes every image at its own size.
IO_AXES_ANY_SIZE = {"image": {0: "batch", 2: "height", 3: "width"}, "anomaly_map": {0: "batch", 2: "height", 3: "width"},
                    "score": {0: "batch"}}
RESIZE_WORDS = {"stretch": "stretch to input_size (aspect not kept)",
                "keep-aspect": "shorter side to short_side, longer side in proportion (multiple of size_multiple)"}


def calibrate(cfg: AnomalyConfig, normal: np.ndarray, anomalous: np.ndarray | None) -> AnomalyCalibration:
    if anomalous is not None and len(anomalous):
        return calibrate_f1(normal, anomalous)
    return calibrate_fpr(normal, fpr=cfg.fpr)


def check_outputs(graph: torch.nn.Module, path: Path, images: data.Images) -> float:
    """Max |onnxruntime - PyTorch| over both outputs, scaled by the score range; raises above
    tolerance. Images of different shapes are run one shape at a time."""
    session = make_session(path)
    diff = 0.0
    for chunk in data.chunks(images, 16):
        with torch.no_grad():
            tm, ts = graph(torch.from_numpy(chunk))
        om, os_ = session.run(["anomaly_map", "score"], {"image": chunk})
        scale = max(1.0, float(ts.abs().max()))
        diff = max(diff, float(np.abs(om - tm.numpy()).max()) / scale, float(np.abs(os_ - ts.numpy()).max()) / scale)
    if not diff <= PARITY_TOLERANCE:
        raise AssertionError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (relative; > {PARITY_TOLERANCE:g})")
    return diff


def validation_metrics(normal: np.ndarray, anomalous: np.ndarray | None, cal: AnomalyCalibration) -> dict[str, float]:
    """What training records about the held-out images: how many, and with labelled anomalies the
    image AUROC and precision/recall/F1 at the calibrated threshold."""
    metrics: dict[str, float] = {"holdout_normal_images": len(normal)}
    if anomalous is not None:
        metrics["val_image_auroc"] = round(auroc(normal, anomalous), 4)
        prf = precision_recall_f1(normal, anomalous, cal.threshold)
        metrics.update({f"val_{k}": round(v, 4) for k, v in prf.items()})
    return metrics


def time_and_record(session: ort.InferenceSession, one: np.ndarray, spec: ModelSpec, path: Path,
                    cal: AnomalyCalibration, metrics: dict[str, float], *, manifest: bool, check: str,
                    log: Callable[[str], None]) -> float:
    """Milliseconds per image through the graph alone (one warm-up, ten timed runs), recorded with
    the training-time metrics in the manifest when asked, and the export's one-line summary
    (``check``: how the file was checked, e.g. its parity) logged."""
    session.run(None, {"image": one})
    t0 = time.perf_counter()
    for _ in range(10):
        session.run(None, {"image": one})
    ms = (time.perf_counter() - t0) / 10 * 1000
    if manifest:
        update_manifest(spec, path, quality={"holdout_fpr_target": cal.target_fpr, **metrics},
                        speed={"ms_per_image_graph": round(ms, 2)})
    log(f"exported {path}: threshold {cal.threshold:.4g} ({cal.method}), normal scores {cal.score_mean:.4g} "
        f"+- {cal.score_std:.4g}, {check}, {ms:.1f} ms per image (graph only)")
    return ms


def export_anomaly(cfg: AnomalyConfig, prep: Prepared, trained: Trained, out_dir: Path, *, command: str,
                   manifest: bool, log: Callable[[str], None], description: str = "") -> tuple[Path, ModelSpec]:
    graph = build_graph(trained.net, trained.norms, cfg, trained.position, trained.segmenter).eval()
    normal_scores = graph_scores(graph, prep.holdout)
    anom_scores = graph_scores(graph, prep.anomalous) if prep.anomalous is not None else None
    cal = calibrate(cfg, normal_scores, anom_scores)
    metrics = {"val_auroc": round(trained.val_auroc, 4), **validation_metrics(normal_scores, anom_scores, cal)}
    source = "/".join(Path(cfg.normal).parts[-3:])
    shape = f"shorter side {cfg.size} px" if cfg.keep_aspect else f"{cfg.size}x{cfg.size}"
    spec = ModelSpec(
        name=cfg.name,
        kind="anomaly",
        channels=prep.channels,
        color_order=COLOR_ORDERS[prep.channels],
        size_multiple=SIZE_MULTIPLE if cfg.keep_aspect else 1,
        receptive_field=1,
        input_size=None if cfg.keep_aspect else (cfg.size, cfg.size),
        short_side=cfg.size if cfg.keep_aspect else None,
        anomaly=cal,
        description=description or (f"Anomaly detector ({'gray' if prep.channels == 1 else 'color'}, "
                                    f"{shape}) learnt from the normal images in {source}: "
                                    + METHOD_DESCRIPTIONS[cfg.map]),
        provenance=provenance(
            command=command,
            data=f"{cfg.normal} ({len(prep.train)} training images; {len(prep.holdout)} held out for validation "
            f"and calibration{'' if not cfg.val_anomalous else f', anomalous {cfg.val_anomalous}'})",
            metrics=metrics,
            extra={"steps": trained.steps, "best_step": trained.best_step, "seed": cfg.seed,
                   "split_seed": cfg.holdout_seed,
                   "train_seconds": round(trained.seconds), "validation": trained.val_kind,
                   "resize": RESIZE_WORDS[cfg.resize], "width": cfg.width,
                   "latent_channels": cfg.latent_channels, "map": cfg.map, "seg_width": cfg.seg_width,
                   "topk": cfg.topk, "smooth": cfg.smooth,
                   "positional": cfg.positional, "patch": cfg.patch, "exposure": cfg.exposure,
                   # The whole config, read back by fuse.py (no re-parsing of the command above).
                   "training_config": cfg.to_dict()},
        ),
    )
    # Traced on a non-square example so that nothing in the graph silently assumes a square.
    example = torch.rand(1, prep.channels, cfg.size, cfg.size + SIZE_MULTIPLE * cfg.keep_aspect)
    path = export(graph, (example,), spec, out_dir / f"{cfg.name}.onnx",
                  dynamic_axes=IO_AXES_ANY_SIZE if cfg.keep_aspect else IO_AXES)
    parity = check_outputs(graph, path, prep.holdout[:8])
    session = make_session(path)
    time_and_record(session, prep.holdout[0][None], spec, path, cal, metrics, manifest=manifest,
                    check=f"parity {parity:.1e}", log=log)
    return path, spec
