"""The training loop: seeded, time-boxed, with progress and ETA, checkpoints, and early stopping
on a validation score (AUROC of held-out normal images against labelled anomalies when given,
else against synthetic defects pasted into the held-out normal images)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
from training.loop import eta_minutes, save_checkpoint
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
    textures: np.ndarray | None = None  # (N, C, size, size) content for synthetic defects, if given


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
    anomalous, anom_paths, p3 = (None, [], [])
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
        f"{'grey' if channels == 1 else 'colour'}, {resized}")
    return Prepared(channels, train, train_paths, hold, hold_paths, anomalous, anom_paths, p1 + p2 + p3, textures)


@torch.no_grad()
def component_norms(net: torch.nn.Module, images: data.Images, kernel: torch.Tensor, batch: int = 32, *,
                    exposure: str = "none") -> torch.Tensor:
    """Mean of each error component over all pixels of normal images (the graph divides by these)."""
    total, pixels = 0.0, 0
    for chunk in data.chunks(images, batch):
        x = apply_exposure(torch.from_numpy(chunk), exposure)
        parts = error_components(x, net(x), kernel)
        total = total + parts.sum(dim=(0, 2, 3))
        pixels += parts.shape[0] * parts.shape[2] * parts.shape[3]
    return (total / pixels).clamp_min(1e-6)


@torch.no_grad()
def graph_scores(graph: AnomalyGraph, images: data.Images, batch: int = 32) -> np.ndarray:
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
def error_maps(graph: AnomalyGraph, images: np.ndarray, batch: int = 32) -> torch.Tensor:
    """Maps of images of one size (positional statistics need a fixed size)."""
    return torch.cat([graph.error_map(torch.from_numpy(chunk)) for chunk in data.chunks(images, batch)])


def finish_graph(net: torch.nn.Module, normal: data.Images, cfg: AnomalyConfig, kernel: torch.Tensor) -> AnomalyGraph:
    """The shipped graph's constants from normal images: component scales and, if enabled, the
    per-pixel statistics."""
    norms = component_norms(net, normal, kernel, exposure=cfg.exposure)
    graph = build_graph(net, norms, cfg)
    if not cfg.positional:
        return graph
    return build_graph(net, norms, cfg, positional_stats(error_maps(graph, normal), graph.smooth_kernel))


@torch.no_grad()
def validation_auroc(net: torch.nn.Module, negatives: data.Images, positives: data.Images, cfg: AnomalyConfig,
                     kernel: torch.Tensor, segmenter: torch.nn.Module | None = None) -> float:
    """Image AUROC with the graph's constants taken from ``negatives`` themselves (slightly
    optimistic, equally so for every checkpoint: good enough to pick one and to stop)."""
    if segmenter is not None:
        graph = build_graph(net, torch.ones(1), cfg, segmenter=segmenter)
        return auroc(graph_scores(graph, negatives), graph_scores(graph, positives))
    graph = build_graph(net, component_norms(net, negatives, kernel, exposure=cfg.exposure), cfg)
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


def train(cfg: AnomalyConfig, prep: Prepared, run_dir: Path, log: Callable[[str], None]) -> Trained:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed + 1)
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
    total = cfg.steps  # re-planned after a few steps to fit the time budget
    start = time.monotonic()
    best = (-1.0, 0)
    stale = 0
    step = 0
    running = 0.0
    log_rows = ["step,loss,val_auroc,seconds"]
    while step < total:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(total, 1))))
        for group in opt.param_groups:
            group["lr"] = max(lr, cfg.lr * 0.02)
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
        step += 1
        running = loss.item() if step == 1 else 0.95 * running + 0.05 * loss.item()
        elapsed = time.monotonic() - start
        budget = cfg.minutes > 0
        if step == 20 and budget:  # plan the schedule to end inside the time budget
            total = max(step + 1, min(cfg.steps, int(cfg.minutes * 60 / (elapsed / step) * 0.92)))
            log(f"{elapsed / step:.2f} s/step: planning {total} steps (budget {cfg.minutes:g} min)")
        over_time = budget and elapsed > cfg.minutes * 60
        if step % cfg.eval_every == 0 or step == total or over_time:
            for m in modules:
                m.eval()
            score = validation_auroc(net, val_neg, val_pos, cfg, kernel, segmenter)
            elapsed = time.monotonic() - start
            eta = eta_minutes(elapsed, step, total - step)
            improved = score > best[0] + 1e-4
            if improved:
                best, stale = (score, step), 0
                save_checkpoint({"model": net.state_dict(), "step": step, "val_auroc": score, "config": cfg.to_dict(),
                                 "channels": prep.channels, **seg_state(segmenter)}, run_dir / "best.pt")
            else:
                stale += 1
            save_checkpoint({"model": net.state_dict(), "opt": opt.state_dict(), "step": step, "config": cfg.to_dict(),
                             "channels": prep.channels, **seg_state(segmenter)}, run_dir / "checkpoint.pt")
            log_rows.append(f"{step},{running:.5f},{score:.4f},{elapsed:.1f}")
            (run_dir / "log.csv").write_text("\n".join(log_rows) + "\n")
            log(f"step {step}/{total} loss {running:.4f} val AUROC ({val_kind}) {score:.4f}"
                f"{' *' if improved else ''}  {elapsed / 60:.1f} min, ETA {eta:.1f} min")
            if stale >= cfg.patience:
                log(f"early stop: no better validation score for {stale} evaluations")
                break
            # Re-plan on the measured speed (other jobs on the machine change it): the cosine
            # schedule then still ends inside the budget.
            if budget:
                left = cfg.minutes * 60 - (time.monotonic() - start)
                total = min(cfg.steps, step + int(left / (elapsed / step)))
            if step >= cfg.steps:
                break
            if over_time or total <= step:
                log(f"time budget of {cfg.minutes:g} min spent at step {step}")
                break
    seconds = time.monotonic() - start
    ckpt = torch.load(run_dir / "best.pt", weights_only=False)
    net.load_state_dict(ckpt["model"])
    net.eval()
    if segmenter is not None:
        segmenter.load_state_dict(ckpt["segmenter"])
        segmenter.eval()
        return Trained(net, torch.ones(1), step, best[1], best[0], val_kind, seconds, segmenter=segmenter)
    # The graph's constants come from training images, so the held-out images stay untouched
    # for calibration.
    graph = finish_graph(net, prep.train[: min(len(prep.train), 256)], cfg, kernel)
    position = (graph.position_mean, graph.position_std) if graph.positional else None
    return Trained(net, graph.norms.flatten(), step, best[1], best[0], val_kind, seconds, position)
