"""Recipe 6: clustering. A deep AE 784 -> 256 -> 100 is trained on 3000 row-standardised
training images (each image to mean 0, std 1); k-means (10 clusters, k-means++, 10 restarts)
on its 100-number codes is scored against the labels (purity, NMI, ARI), next to k-means on
the same standardised pixels and on their PCA(100) projection."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from training.mnist import metrics, plots
from training.mnist.context import Context
from training.mnist.nets import StandardizedAE
from training.mnist.recipes import common
from training.mnist.train import fit, predict

CONFIG: dict[str, Any] = {
    "network": "dense 784-256-100 (linear code), mirrored decoder", "images": 3000, "loss": "mse (standardised)",
    "optimizer": "adam", "lr": 1e-3, "epochs": 50, "batch": 256, "kmeans": "k-means++, 10 clusters, n_init 10"}


def kmeans(features: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=10, init="k-means++", n_init=10, random_state=seed).fit_predict(features)


def standardize(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    return (flat - flat.mean(axis=1, keepdims=True)) / (flat.std(axis=1, keepdims=True) + 1e-6)


def run(ctx: Context) -> dict[str, Any]:
    # sklearn's OpenMP/BLAS pools would take every core and spin on a shared machine.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=ctx.threads):
        return _run(ctx)


def _run(ctx: Context) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    name = "cluster"
    folder = ctx.folder(name)
    torch.set_num_threads(ctx.threads)
    subset = ctx.data().train.head(CONFIG["images"])
    model = StandardizedAE((784, 256, 100))
    history = fit(model, subset.x, loss_fn=lambda m, x, gen: model.standardized_loss(x), epochs=ctx.n_epochs(CONFIG["epochs"]),
                  batch=CONFIG["batch"], seed=ctx.seed, lr=CONFIG["lr"])
    model.set_scale(torch.from_numpy(subset.x))
    pixels = standardize(subset.x)
    features = {
        "k-means on AE codes (100-D)": predict(model.encoder, subset.x),
        "k-means on standardised pixels (784-D)": pixels,
        "k-means on PCA(100)": PCA(n_components=min(100, len(pixels) - 1), random_state=ctx.seed).fit_transform(pixels),
    }
    assignments = {label: kmeans(f, ctx.seed) for label, f in features.items()}
    scores = {label: metrics.clustering_scores(subset.y, a) for label, a in assignments.items()}
    ae_clusters = assignments["k-means on AE codes (100-D)"]
    plots.cluster_examples(subset.x, ae_clusters, subset.y, folder / "clusters.png",
                           title="k-means on AE codes: first 10 images of each cluster")
    plots.loss_curves({"784-256-100": history}, folder / "loss.png", title="clustering AE, MSE on standardised images")
    trained = common.Trained(model, history, {f"{k} {m}": v for k, s in scores.items() for m, v in s.items()}, 0.0)
    export = common.export(ctx, name, trained, name="mnist-cluster", ship=False, config=CONFIG,
                           description="MNIST clustering autoencoder 784-256-100 on row-standardised images")
    return {
        "title": "Clustering: AE 784-256-100 codes + k-means vs raw pixels and PCA(100)",
        "config": CONFIG,
        "results": scores,
        "headline": {"metric": "purity / NMI / ARI (AE codes)",
                     "value": [scores["k-means on AE codes (100-D)"][k] for k in ("purity", "nmi", "ari")],
                     "better": "higher"},
        "figures": ["clusters.png", "loss.png"],
        "history": common.history_table(history),
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "export": export,
    }
