"""Greedy k-centre coreset (PatchCore's memory subsampling), numpy only.

Patches are picked one at a time, each the one farthest from all picked so far, so the memory
covers every kind of normal patch (rare ones included) with a fraction of them. Distances are
measured on a fixed random projection to ``project_dim`` dimensions (Johnson-Lindenstrauss: close
enough for choosing, several times cheaper); the chosen patches are kept at full dimension.

The plain greedy reads the whole pool once per pick (a matrix-vector product, bound by memory
bandwidth: 15 MB per pick for 60,000 x 64 patches). ``greedy_coreset`` picks the same patches
with far less reading: each pick is the farthest patch, so only the patches that are currently far
can be picked next. An *epoch* keeps the ``ACTIVE_SHARE`` farthest patches up to date pick by pick;
the others ("parked") are all at most ``tau`` from a picked patch, and their distances only
shrink, so while the farthest active patch is farther than ``tau`` it is the farthest patch of the
whole pool, exactly as the plain greedy would pick it. When it is not, the parked patches catch up
on the epoch's picks at once (one matrix-matrix product, several times faster per patch than the
pick-by-pick product, in bounded row blocks) and a new epoch starts. Same picks as the plain
greedy (up to float rounding on exact ties), a fraction of its time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

REPORT_EVERY = 100  # picks between two progress reports
# Share of the pool an epoch keeps up to date pick by pick (at least ACTIVE_MIN patches). Smaller
# shares read less per pick but end epochs sooner (more catch-ups, each a thinner product). The
# time is flat around it: 8000 picks of a 60,000 x 64 pool of tile features took 1.4-1.9 s for
# every share from 1/4 to 1/64, 1/8 the fastest (docs/experiments/2026-12-06-anomaly-v3.md).
ACTIVE_SHARE = 1 / 8
ACTIVE_MIN = 2048
# Largest temporary block of the catch-up (rows x epoch picks), in elements: 4 M float32 = 16 MB.
BLOCK_ELEMENTS = 1 << 22
Progress = Callable[[int, int], None]


def project(features: np.ndarray, *, project_dim: int, rng: np.random.Generator) -> np.ndarray:
    """(n, project_dim) float32 rows: ``features`` times a seeded Gaussian matrix (or the rows as
    float32 when they have no more than ``project_dim`` columns); computed in row blocks, so a large
    float64 input is never copied whole."""
    n, d = features.shape
    if d <= project_dim:
        return np.ascontiguousarray(features, dtype=np.float32)
    proj = rng.standard_normal((d, project_dim)).astype(np.float32) / np.float32(np.sqrt(project_dim))
    out = np.empty((n, project_dim), np.float32)
    step = max(1, BLOCK_ELEMENTS // d)
    for s in range(0, n, step):
        np.matmul(np.asarray(features[s:s + step], dtype=np.float32), proj, out=out[s:s + step])
    return out


def _trivial(n: int, size: int, progress: Progress | None) -> np.ndarray | None:
    if size >= n:
        if progress is not None:
            progress(n, n)
        return np.arange(n)
    if size < 1:
        raise ValueError(f"coreset size must be at least 1, got {size}")
    return None


def _start(features: np.ndarray, size: int, project_dim: int, seed: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What both selections start from, drawn alike so their picks can be compared: the projected
    pool, its squared norms, the pick array with its seeded first pick, no distances known yet."""
    n = features.shape[0]
    rng = np.random.default_rng(seed)
    x = project(features, project_dim=project_dim, rng=rng)
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(size, np.int64)
    chosen[0] = int(rng.integers(n))
    best = np.full(n, np.inf, np.float32)  # squared distance to the nearest chosen patch
    return x, sq, chosen, best


def greedy_coreset(features: np.ndarray, size: int, *, project_dim: int = 64, seed: int = 0,
                   progress: Progress | None = None) -> np.ndarray:
    """Indices of ``size`` rows of ``features`` (n, d) chosen by greedy k-centre selection (the
    picks of ``plain_greedy_coreset``, faster: see the module doc); ``progress(picked, size)`` is
    called every ``REPORT_EVERY`` picks and at the end."""
    n = features.shape[0]
    trivial = _trivial(n, size, progress)
    if trivial is not None:
        return trivial
    x, sq, chosen, best = _start(features, size, project_dim, seed)
    _catch_up(x, sq, best, np.arange(n), chosen[:1])
    picked = 1
    if size == 1 and progress is not None:
        progress(1, 1)
    m = min(n, max(ACTIVE_MIN, round(n * ACTIVE_SHARE)))
    while picked < size:
        # Every distance in ``best`` is exact here. The epoch's active patches: the m farthest.
        active = np.arange(n) if m == n else np.sort(np.argpartition(best, n - m)[n - m:])
        tau = -np.inf if m == n else float(best[active].min())  # a parked patch is no farther
        xa, sqa, ba = x[active], sq[active], best[active]
        start = picked
        while picked < size:
            j = int(np.argmax(ba))
            if picked > start and not ba[j] > tau:
                break  # a parked patch may be as far: catch up first
            c = int(active[j])
            chosen[picked] = c
            picked += 1
            np.minimum(ba, sqa - 2.0 * (xa @ x[c]) + sq[c], out=ba)
            if progress is not None and (picked % REPORT_EVERY == 0 or picked == size):
                progress(picked, size)
        best[active] = ba
        if picked < size and m < n:
            parked = np.ones(n, bool)
            parked[active] = False
            _catch_up(x, sq, best, np.flatnonzero(parked), chosen[start:picked])
    return chosen


def _catch_up(x: np.ndarray, sq: np.ndarray, best: np.ndarray, rows: np.ndarray, centres: np.ndarray) -> None:
    """``best[rows]`` lowered to the squared distance to the nearest of ``centres``, in blocks of at
    most ``BLOCK_ELEMENTS`` temporary values."""
    xc = x[centres]
    sqc = sq[centres]
    step = max(1, BLOCK_ELEMENTS // max(1, len(centres)))
    for s in range(0, len(rows), step):
        r = rows[s:s + step]
        d = x[r] @ xc.T
        d *= -2.0
        d += sqc
        d += sq[r, None]
        best[r] = np.minimum(best[r], d.min(axis=1))


def plain_greedy_coreset(features: np.ndarray, size: int, *, project_dim: int = 64, seed: int = 0,
                         progress: Progress | None = None) -> np.ndarray:
    """The textbook greedy (one pass over the pool per pick): the reference ``greedy_coreset`` is
    checked and timed against (tests, ``tools/bench_coreset.py``)."""
    n = features.shape[0]
    trivial = _trivial(n, size, progress)
    if trivial is not None:
        return trivial
    x, sq, chosen, best = _start(features, size, project_dim, seed)
    for i in range(1, size + 1):
        c = chosen[i - 1]
        np.minimum(best, sq - 2.0 * (x @ x[c]) + sq[c], out=best)
        if progress is not None and (i % REPORT_EVERY == 0 or i == size):
            progress(i, size)
        if i == size:
            break
        chosen[i] = int(np.argmax(best))
    return chosen
