"""The coreset selection (edge_ae/anomaly/coreset.py): deterministic, covers outliers, the same
picks as the plain greedy, bounded memory. Small data made here; no timings (tools/bench_coreset.py)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edge_ae.anomaly import coreset
from edge_ae.anomaly.coreset import greedy_coreset, plain_greedy_coreset


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Patches in clumps of different spreads, like a pool of normal image patches."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, d)) * 3.0
    spread = rng.uniform(0.1, 1.0, 40)[:, None]
    which = rng.integers(40, size=n)
    return (centres[which] + spread[which] * rng.standard_normal((n, d))).astype(np.float32)


def covering_radius(x: np.ndarray, picks: np.ndarray) -> float:
    x = x.astype(np.float64)
    c = x[picks]
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)
    return float(np.sqrt(max(d.min(1).max(), 0.0)))


@pytest.fixture
def small_epochs(monkeypatch):
    """Epochs of 1/16 of a few thousand patches (the real minimum would keep them all active);
    counts the catch-ups, so a test can check the epoch path ran."""
    monkeypatch.setattr(coreset, "ACTIVE_MIN", 64)
    calls = []
    original = coreset._catch_up

    def counted(*args):
        calls.append(len(args[4]))
        original(*args)

    monkeypatch.setattr(coreset, "_catch_up", counted)
    return calls


def test_same_seed_same_picks_and_another_seed_starts_elsewhere(small_epochs):
    x = clustered(3000, 16)
    a = greedy_coreset(x, 200, seed=3)
    assert np.array_equal(a, greedy_coreset(x, 200, seed=3))
    assert len(set(a.tolist())) == 200
    assert a[0] != greedy_coreset(x, 200, seed=4)[0]


def test_obvious_outliers_are_picked_first(small_epochs):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((4000, 8))).astype(np.float32)
    outliers = rng.choice(4000, 5, replace=False)
    x[outliers] += 50.0 * np.eye(8, dtype=np.float32)[:5]  # five far patches, each in its own direction
    picks = greedy_coreset(x, 12, seed=0)
    assert set(outliers.tolist()) <= set(picks[:6].tolist())


@pytest.mark.parametrize("d, project_dim", [(16, 64), (96, 32)])
def test_same_cover_as_the_plain_greedy(small_epochs, d, project_dim):
    """The epoch greedy picks what the plain greedy picks (it is exact; float rounding may swap
    near-ties), so its covering radius is the plain one's within 0.1 %."""
    x = clustered(5000, d, seed=2)
    fast = greedy_coreset(x, 400, project_dim=project_dim, seed=0)
    plain = plain_greedy_coreset(x, 400, project_dim=project_dim, seed=0)
    assert len(small_epochs) > 3  # several epochs and catch-ups ran
    assert len(np.intersect1d(fast, plain)) >= 0.99 * 400
    assert covering_radius(x, fast) <= 1.001 * covering_radius(x, plain)


def test_progress_reports_every_hundred_picks_and_the_end(small_epochs):
    seen = []
    greedy_coreset(clustered(3000, 8), 250, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(100, 250), (200, 250), (250, 250)]
    seen.clear()
    greedy_coreset(clustered(300, 8), 1, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 1)]


def test_memory_stays_bounded_on_a_large_wide_float64_pool():
    """A 40,000 x 256 float64 pool (82 MB): the selection projects it in row blocks, so it never
    holds a float32 copy of the whole pool (41 MB) beside the 64-dimension projection."""
    x = np.random.default_rng(0).standard_normal((40000, 256))
    tracemalloc.start()
    try:
        picks = greedy_coreset(x, 300, project_dim=64, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(set(picks.tolist())) == 300
    assert peak < 0.5 * x.nbytes, f"peak {peak / 1e6:.1f} MB for a {x.nbytes / 1e6:.1f} MB pool"


def test_size_at_least_the_pool_keeps_everything_and_zero_is_refused():
    x = clustered(50, 4)
    assert np.array_equal(greedy_coreset(x, 50), np.arange(50))
    with pytest.raises(ValueError, match="at least 1"):
        greedy_coreset(x, 0)
