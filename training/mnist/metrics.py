"""The numbers the recipes report."""

from __future__ import annotations

import numpy as np

from training.metrics import auroc, mean_psnr  # noqa: F401  (the recipes' metrics in one namespace)


def per_image_mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of images whose cluster's majority label is their own."""
    total = 0
    for c in np.unique(clusters):
        total += np.bincount(labels[clusters == c]).max()
    return total / len(labels)


def clustering_scores(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "purity": round(float(purity(labels, clusters)), 4),
        "nmi": round(float(normalized_mutual_info_score(labels, clusters)), 4),
        "ari": round(float(adjusted_rand_score(labels, clusters)), 4),
    }
