"""Greedy k-centre coreset (PatchCore's memory subsampling), numpy only.

Patches are picked one at a time, each the one farthest from all picked so far, so the memory
covers every kind of normal patch (rare ones included) with a fraction of them. Distances are
measured on a fixed random projection to ``project_dim`` dimensions (Johnson-Lindenstrauss: close
enough for choosing, several times cheaper); the chosen patches are kept at full dimension.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

REPORT_EVERY = 100  # picks between two progress reports


def greedy_coreset(features: np.ndarray, size: int, *, project_dim: int = 64, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Indices of ``size`` rows of ``features`` (n, d) chosen by greedy k-centre selection;
    ``progress(picked, size)`` is called every ``REPORT_EVERY`` picks and at the end."""
    n = features.shape[0]
    if size >= n:
        if progress is not None:
            progress(n, n)
        return np.arange(n)
    if size < 1:
        raise ValueError(f"coreset size must be at least 1, got {size}")
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] > project_dim:
        proj = rng.standard_normal((x.shape[1], project_dim)).astype(np.float32) / np.sqrt(project_dim)
        x = x @ proj
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(size, np.int64)
    chosen[0] = int(rng.integers(n))
    best = np.full(n, np.inf, np.float32)  # squared distance to the nearest chosen patch
    for i in range(1, size + 1):
        c = chosen[i - 1]
        d = sq - 2.0 * (x @ x[c]) + sq[c]
        np.minimum(best, d, out=best)
        if progress is not None and (i % REPORT_EVERY == 0 or i == size):
            progress(i, size)
        if i == size:
            break
        chosen[i] = int(np.argmax(best))
    return chosen
