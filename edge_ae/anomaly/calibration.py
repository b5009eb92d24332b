"""Choosing an anomaly threshold from scores (numpy only, so a device can re-calibrate itself).

* ``fpr``: only normal images are known; the threshold is the (1 - target FPR) quantile of their
  scores, so about that fraction of normal images would be flagged.
* ``f1``: normal and anomalous validation images are known; the threshold maximises F1 with
  anomalies as the positive class (midway between neighbouring scores, so it does not sit on one).

An image is anomalous when its score is strictly above the threshold.
"""

from __future__ import annotations

import numpy as np

from edge_ae.model.contract import AnomalyCalibration

DEFAULT_FPR = 0.01


def _clean(scores: np.ndarray | list[float], what: str) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError(f"no {what} scores to calibrate on")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} scores contain NaN or infinity")
    return values


def calibrate_fpr(normal: np.ndarray | list[float], *, fpr: float = DEFAULT_FPR) -> AnomalyCalibration:
    """Threshold for a target false-positive rate on normal images."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"target false-positive rate must be between 0 and 1, got {fpr}")
    values = _clean(normal, "normal")
    threshold = float(np.quantile(values, 1.0 - fpr))
    return AnomalyCalibration(threshold=threshold, score_mean=float(values.mean()), score_std=float(values.std()),
                              target_fpr=float(fpr), method="fpr", n_images=int(values.size))


def calibrate_f1(normal: np.ndarray | list[float], anomalous: np.ndarray | list[float]) -> AnomalyCalibration:
    """Threshold with the best F1 on labelled validation scores."""
    neg, pos = _clean(normal, "normal"), _clean(anomalous, "anomalous")
    uniq = np.unique(np.concatenate([neg, pos]))
    # Candidates between neighbouring scores, plus one below all (everything flagged).
    candidates = np.concatenate([[uniq[0] - 1e-6 * max(1.0, abs(uniq[0]))], (uniq[:-1] + uniq[1:]) / 2])
    best_f1, best = -1.0, float(candidates[0])
    for t in candidates:
        tp = float(np.sum(pos > t))
        fp = float(np.sum(neg > t))
        fn = float(pos.size) - tp
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1:
            best_f1, best = f1, float(t)
    return AnomalyCalibration(threshold=best, score_mean=float(neg.mean()), score_std=float(neg.std()),
                              target_fpr=None, method="f1", n_images=int(neg.size + pos.size))
