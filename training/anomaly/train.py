"""The training loop: seeded, time-boxed, with progress and ETA, checkpoints, and early stopping
on a validation score (AUROC of held-out normal images against labelled anomalies when given,
else against synthetic defects pasted into the held-out normal images)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.anomaly import data
from training.anomaly.config import SIZE_MULTIPLE, AnomalyConfig
from training.anomaly.net import ConvAutoencoder
from training.anomaly.scoring import (
    SSIM_SIGMA,
    AnomalyGraph,
    SegmentationGraph,
    apply_exposure,
    error_components,
    gaussian_kernel,
    positional_stats,
    reconstruction_loss,
    top_mean,
)
from training.anomaly.segmenter import DefectSegmenter, focal_loss
from training.loop import Loop, NumpyRNG, Progress, Stateful, TorchRNG, cosine_factor, save_checkpoint, seed_all, set_lr
from training.metrics import auroc


@dataclass
class Prepared:
    channels: int
    train: data.Images
    train_paths: list[Path]
    holdout: data.Images  # normal images never trained on: validation and calibration
    holdout_paths: list[Path]
    anomalous: data.Images | None  # labelled anomalous validation images, if given
    anomalous_paths: list[Path]
    problems: list[str]
    textures: data.Images | None = None  # (N, C, size, size) content for synthetic defects, if given


@dataclass
class Trained:
    net: ConvAutoencoder
    norms: torch.Tensor
    steps: int
    best_step: int
    val_auroc: float
    val_kind: str
    seconds: float
    position: tuple[torch.Tensor, torch.Tensor] | None = None
    segmenter: DefectSegmenter | None = None


def prepare(cfg: AnomalyConfig, log: Callable[[str], None], *, multiple: int = SIZE_MULTIPLE) -> Prepared:
    """The training, held-out and anomalous images as the model sees them (with ``--resize
    keep-aspect``, both sides rounded to ``multiple``: a fused model may need a coarser one)."""
    rng = np.random.default_rng(cfg.holdout_seed)
    paths = data.folder(cfg.normal)
    channels = data.choose_channels(paths, cfg.channels)
    if cfg.val_normal:
        train_paths, hold_paths = paths, data.folder(cfg.val_normal)
    else:
        train_paths, hold_paths = data.split(paths, cfg.holdout, rng)
    options = {"channels": channels, "size": cfg.size, "keep_aspect_multiple": multiple if cfg.keep_aspect else 0}
    train, train_paths, p1 = data.load(train_paths, **options)
    hold, hold_paths, p2 = data.load(hold_paths, **options)
    anomalous: data.Images | None = None
    anom_paths: list[Path] = []
    p3: list[str] = []
    if cfg.val_anomalous:
        anomalous, anom_paths, p3 = data.load(data.folder(cfg.val_anomalous), **options)
    textures = None
    if cfg.textures:
        textures, _, p4 = data.load(data.folder(cfg.textures), channels=channels, size=cfg.size)
        p3 = p3 + p4
    resized = f"shorter side resized to {cfg.size}" if cfg.keep_aspect else f"resized to {cfg.size}x{cfg.size}"
    log(f"{len(train)} training and {len(hold)} held-out normal images"
        f"{f', {len(anomalous)} anomalous' if anomalous is not None else ''}"
        f"{f', {len(textures)} texture images' if textures is not None else ''}; "
        f"{'gray' if channels == 1 else 'color'}, {resized}")
    return Prepared(channels, train, train_paths, hold, hold_paths, anomalous, anom_paths, p1 + p2 + p3, textures)


@torch.no_grad()
def component_norms(net: torch.nn.Module, images: data.Images, kernel: torch.Tensor, batch: int = 32, *,
                    exposure: str = "none") -> torch.Tensor:
    """Mean of each error component over all pixels of normal images (the graph divides by these)."""
    total: Any = 0.0
    pixels = 0
    for chunk in data.chunks(images, batch):
        x = apply_exposure(torch.from_numpy(chunk), exposure)
        parts = error_components(x, net(x), kernel)
        total = total + parts.sum(dim=(0, 2, 3))
        pixels += parts.shape[0] * parts.shape[2] * parts.shape[3]
    return (total / pixels).clamp_min(1e-6)


@torch.no_grad()
def graph_scores(graph: AnomalyGraph | SegmentationGraph, images: data.Images, batch: int = 32) -> np.ndarray:
    return torch.cat([graph(torch.from_numpy(chunk))[1] for chunk in data.chunks(images, batch)]).numpy()


def build_graph(net: torch.nn.Module, norms: torch.Tensor, cfg: AnomalyConfig,
                position: tuple[torch.Tensor, torch.Tensor] | None = None,
                segmenter: torch.nn.Module | None = None) -> AnomalyGraph | SegmentationGraph:
    if segmenter is not None:
        return SegmentationGraph(net, segmenter, size=(cfg.size, cfg.size), topk=cfg.topk,
                                 smooth_sigma=cfg.smooth * cfg.size, exposure=cfg.exposure)
    return AnomalyGraph(net, size=(cfg.size, cfg.size), norms=norms, topk=cfg.topk, smooth_sigma=cfg.smooth * cfg.size,
                        position=position, exposure=cfg.exposure)


@torch.no_grad()
def error_maps(graph: AnomalyGraph, images: data.Images, batch: int = 32) -> torch.Tensor:
    """Maps of images of one size (positional statistics need a fixed size)."""
    return torch.cat([graph.error_map(torch.from_numpy(chunk)) for chunk in data.chunks(images, batch)])


def finish_graph(net: torch.nn.Module, normal: data.Images, cfg: AnomalyConfig, kernel: torch.Tensor) -> AnomalyGraph:
    """The shipped graph's constants from normal images: component scales and, if enabled, the
    per-pixel statistics."""
    norms = component_norms(net, normal, kernel, exposure=cfg.exposure)
    graph = build_graph(net, norms, cfg)
    assert isinstance(graph, AnomalyGraph)  # no segmenter given
    if not cfg.positional:
        return graph
    positional = build_graph(net, norms, cfg, positional_stats(error_maps(graph, normal), graph.smooth_kernel))
    assert isinstance(positional, AnomalyGraph)
    return positional


@torch.no_grad()
def validation_auroc(net: torch.nn.Module, negatives: data.Images, positives: data.Images, cfg: AnomalyConfig,
                     kernel: torch.Tensor, segmenter: torch.nn.Module | None = None) -> float:
    """Image AUROC with the graph's constants taken from ``negatives`` themselves (slightly
    optimistic, equally so for every checkpoint: good enough to pick one and to stop)."""
    if segmenter is not None:
        graph = build_graph(net, torch.ones(1), cfg, segmenter=segmenter)
        return auroc(graph_scores(graph, negatives), graph_scores(graph, positives))
    graph = build_graph(net, component_norms(net, negatives, kernel, exposure=cfg.exposure), cfg)
    assert isinstance(graph, AnomalyGraph)  # no segmenter given
    if not cfg.positional:
        return auroc(graph_scores(graph, negatives), graph_scores(graph, positives))
    neg, pos = error_maps(graph, negatives), error_maps(graph, positives)
    mean, std = positional_stats(neg, graph.smooth_kernel)
    neg, pos = (neg - mean) / std, (pos - mean) / std

    def score(maps: torch.Tensor) -> np.ndarray:
        return top_mean(maps, graph.k).numpy()

    return auroc(score(neg), score(pos))


def seg_state(segmenter: torch.nn.Module | None) -> dict[str, object]:
    return {} if segmenter is None else {"segmenter": segmenter.state_dict()}


def train(cfg: AnomalyConfig, prep: Prepared, run_dir: Path, log: Callable[[str], None], *,
          resume: bool = False) -> Trained:
    """Train until early stopping, the step count or the time budget; with ``resume``, continue
    from ``run_dir/checkpoint.pt`` if it holds this config's run."""
    rng = seed_all(cfg.seed)
    torch.set_num_threads(cfg.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    net = ConvAutoencoder(prep.channels, width=cfg.width, latent_channels=cfg.latent_channels)
    segmenter = DefectSegmenter(prep.channels, width=cfg.seg_width) if cfg.map == "learned" else None
    params = list(net.parameters()) + (list(segmenter.parameters()) if segmenter is not None else [])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    modules = [m for m in (net, segmenter) if m is not None]
    kernel = gaussian_kernel(SSIM_SIGMA)
    batches = data.Batches(prep.train, synthetic_fraction=cfg.synthetic_fraction, input_noise=cfg.input_noise,
                           flips=cfg.flips, rng=rng, patch=cfg.patch, textures=prep.textures, relight=cfg.relight)
    # A fixed subset keeps evaluations cheap; calibration later uses every held-out image.
    val_neg = prep.holdout[: cfg.val_images]
    if prep.anomalous is not None:
        val_pos, val_kind = prep.anomalous[: cfg.val_images], "labelled anomalies"
    else:
        val_pos = data.synthetic_set(val_neg, np.random.default_rng(cfg.seed + 2), relight=cfg.relight)[0]
        val_kind = "synthetic defects"
    state: dict[str, Stateful] = {"model": net, "opt": opt, "rng": NumpyRNG(rng), "torch_rng": TorchRNG()}
    if segmenter is not None:
        state["segmenter"] = segmenter
    running = [0.0]  # smoothed training loss
    log_rows = ["step,loss,val_auroc,seconds"]
    # The schedule is planned on the fly to fit the time budget (``minutes``), if any.
    loop = Loop(steps=cfg.steps, eval_every=cfg.eval_every, checkpoint=run_dir / "checkpoint.pt", state=state,
                extra=lambda: {"config": cfg.to_dict(), "channels": prep.channels, "running": running[0],
                               "log_rows": log_rows},
                patience=cfg.patience, min_delta=1e-4, minutes=cfg.minutes, log=log)
    if resume:
        saved = loop.resume(matching={"config": cfg.to_dict(), "channels": prep.channels})
        if saved is not None:
            running[0], log_rows[:] = saved["running"], saved["log_rows"]
            log(f"resumed at step {loop.step}")

    def step(n: int) -> None:
        lr = cfg.lr * cosine_factor(min(1.0, (n - 1) / max(loop.total, 1)), 1)
        set_lr(opt, max(lr, cfg.lr * 0.02))
        for m in modules:
            m.train()
        x, y, masks = (torch.from_numpy(a) for a in batches.batch(cfg.batch))
        # The graph scales each input by its own mean; the clean target gets the input's gain,
        # so the repair is learnt in the units the networks will see.
        x, y = apply_exposure(x, cfg.exposure), apply_exposure(y, cfg.exposure, like=x)
        recon = net(x)
        loss = reconstruction_loss(recon, y, kernel)
        if segmenter is not None:
            # The repair is an input here, not something to bend: the segmenter's loss does not
            # flow back into the autoencoder.
            loss = loss + focal_loss(segmenter(torch.cat([x, recon.detach()], dim=1)), masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running[0] = loss.item() if n == 1 else 0.95 * running[0] + 0.05 * loss.item()

    def validate(_: int) -> float:
        for m in modules:
            m.eval()
        return validation_auroc(net, val_neg, val_pos, cfg, kernel, segmenter)

    def report(p: Progress) -> None:
        if p.improved:
            save_checkpoint({"model": net.state_dict(), "step": p.step, "val_auroc": p.score, "config": cfg.to_dict(),
                             "channels": prep.channels, **seg_state(segmenter)}, run_dir / "best.pt")
        log_rows.append(f"{p.step},{running[0]:.5f},{p.score:.4f},{p.elapsed_s:.1f}")
        (run_dir / "log.csv").write_text("\n".join(log_rows) + "\n")
        log(f"step {p.step}/{p.total} loss {running[0]:.4f} val AUROC ({val_kind}) {p.score:.4f}"
            f"{' *' if p.improved else ''}  {p.elapsed_s / 60:.1f} min, ETA {p.eta_min:.1f} min")

    loop.run(step=step, evaluate=validate, report=report)
    ckpt = torch.load(run_dir / "best.pt", weights_only=False)
    net.load_state_dict(ckpt["model"])
    net.eval()
    if segmenter is not None:
        segmenter.load_state_dict(ckpt["segmenter"])
        segmenter.eval()
        return Trained(net, torch.ones(1), loop.step, loop.best_step, loop.best, val_kind, loop.elapsed_s,
                       segmenter=segmenter)
    # The graph's constants come from training images, so the held-out images stay untouched
    # for calibration.
    graph = finish_graph(net, prep.train[: min(len(prep.train), 256)], cfg, kernel)
    position = (graph.position_mean, graph.position_std) if graph.positional else None
    return Trained(net, graph.norms.flatten(), loop.step, loop.best_step, loop.best, val_kind, loop.elapsed_s,
                   position)
