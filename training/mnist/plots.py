"""The report's pictures: image grids, loss curves, the 3-D latent scatter, cluster examples.
matplotlib (Agg, no display) is imported only when drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mosaic(images: np.ndarray, *, cols: int, pad: int = 1) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) on [0, 1] -> one gray picture, ``cols`` images a row."""
    images = images.reshape(len(images), *images.shape[-2:])
    rows = (len(images) + cols - 1) // cols
    h, w = images.shape[1:]
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    return out


def image_rows(rows: list[tuple[str, np.ndarray]], path: Path, *, title: str = "") -> Path:
    """One labelled row per (label, images); e.g. originals / noisy / reconstructions."""
    plt = _pyplot()
    n = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.75, len(rows) * 0.95 + 0.4), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows, strict=True):
        ax.imshow(np.clip(mosaic(images, cols=n), 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def loss_curves(histories: dict[str, list[dict[str, float]]], path: Path, *, title: str, ylabel: str = "loss") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, history in histories.items():
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], marker="o", ms=3, label=f"{label} train")
        if history and "val_loss" in history[0]:
            ax.plot(epochs, [h["val_loss"] for h in history], marker="s", ms=3, ls="--", label=f"{label} test")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def scatter3d(latents: np.ndarray, labels: np.ndarray, path: Path, *, title: str) -> Path:
    plt = _pyplot()
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    points = ax.scatter(latents[:, 0], latents[:, 1], latents[:, 2], c=labels, cmap="tab10", s=2, alpha=0.6,
                        vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), shrink=0.6, label="digit")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def cluster_examples(images: np.ndarray, clusters: np.ndarray, labels: np.ndarray, path: Path, *,
                     per_cluster: int = 10, title: str = "") -> Path:
    """One row per cluster: its first ``per_cluster`` images, labelled with the majority digit."""
    rows = []
    for c in range(int(clusters.max()) + 1):
        members = np.flatnonzero(clusters == c)
        if len(members) == 0:
            continue
        majority = int(np.bincount(labels[members]).argmax())
        rows.append((f"cluster {c}\n(n={len(members)}, mostly {majority})", images[members[:per_cluster]]))
    return image_rows(rows, path, title=title)


def auroc_bars(per_class: dict[str, list[float]], path: Path, *, reference: float | None, title: str) -> Path:
    """Grouped bars: AUROC per normal class, one group member per data set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(per_class))
    for i, (label, values) in enumerate(per_class.items()):
        xs = np.arange(len(values)) + (i - (len(per_class) - 1) / 2) * width
        ax.bar(xs, values, width=width, label=f"{label} (mean {np.mean(values):.3f})")
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=f"Deep SVDD MNIST mean {reference:.3f}")
    n = max(len(v) for v in per_class.values())
    ax.set_xticks(range(n))
    ax.set_xlabel("normal class")
    ax.set_ylabel("AUROC")
    ax.set_ylim(0.5, 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
