"""The metrics every part of training and the tools report, one copy each: PSNR, AUROC and the
detection counts at a threshold. numpy only: no torch, no scikit-learn, no edge_ae, so the
benchmarks and the emulated-ARM check (tools/arm64_check.py, which runs with the runtime's
packages alone) import the same PSNR as training."""

from __future__ import annotations

import numpy as np


def psnr_of_mse(mse: float | np.ndarray, *, peak: float = 1.0) -> float | np.ndarray:
    """The PSNR formula itself: ``10 log10(peak^2 / mse)`` in dB, infinite for a perfect match
    (``mse`` 0). ``peak`` is the data range: 1.0 for float images, 255 for 8-bit ones."""
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore"):
        db = np.where(mse == 0, np.inf, 10 * np.log10(peak**2 / np.where(mse == 0, 1.0, mse)))
    return float(db) if db.ndim == 0 else db


def psnr(reference: np.ndarray, test: np.ndarray, *, peak: float = 1.0) -> float:
    """PSNR in dB of ``test`` against ``reference`` over all their values (one image, or a set
    taken as one), computed in float64 whatever the dtypes (8-bit images: ``peak=255``)."""
    ref, out = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"expected two arrays of one shape, got {ref.shape} and {out.shape}")
    return float(psnr_of_mse(float(np.mean((ref - out) ** 2)), peak=peak))


def mean_psnr(reference: np.ndarray, test: np.ndarray, *, peak: float = 1.0) -> float:
    """Mean over images (the first axis) of each image's PSNR in dB."""
    ref, out = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"expected two arrays of one shape, got {ref.shape} and {out.shape}")
    mse = ((ref - out) ** 2).reshape(len(ref), -1).mean(axis=1)
    return float(np.mean(psnr_of_mse(mse, peak=peak)))


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); positives should score higher."""
    neg = np.asarray(negatives, np.float64).ravel()
    pos = np.asarray(positives, np.float64).ravel()
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    values = np.concatenate([neg, pos])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, np.float64)
    sorted_values = values[order]
    # Average rank over runs of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[neg.size :].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (neg.size * pos.size))


def binned_auroc(neg_hist: np.ndarray, pos_hist: np.ndarray) -> float:
    """AUROC from histograms of negative and positive values over the same ascending bins (for
    hundreds of millions of pixels); ties within a bin count half, so the error is below one
    bin's share of pairs."""
    neg = np.asarray(neg_hist, np.float64)
    pos = np.asarray(pos_hist, np.float64)
    n_neg, n_pos = neg.sum(), pos.sum()
    if n_neg == 0 or n_pos == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives in lower bins
    return float((pos * (below + neg / 2.0)).sum() / (n_neg * n_pos))


def precision_recall_f1(neg_scores: np.ndarray, pos_scores: np.ndarray, threshold: float) -> dict[str, float]:
    tp = float(np.sum(np.asarray(pos_scores) > threshold))
    fp = float(np.sum(np.asarray(neg_scores) > threshold))
    fn = float(len(pos_scores)) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = fp / len(neg_scores) if len(neg_scores) else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": fpr}
