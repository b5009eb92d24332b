"""Coreset selection: the epoch greedy (``greedy_coreset``) against the plain greedy on a real pool.

    python -m tools.bench_coreset --threads 1                                # defaults: lite0, 200 images, 4000
    python -m tools.bench_coreset --backbone lite0-deep --images 647 --memory 8000 12000 16000

Builds the patch pool exactly as ``edge-ae anomaly fit`` does (the first ``--images`` train/good
images by name, at most 60,000 random patches, the 64 principal axes), then times both selections
on it, alternately, ``--rounds`` times each (the host is shared: the ratio within one run is the
figure; the seconds say the load), and compares their picks: the share of picks in common and the
covering radius (the largest distance from a pool patch to its nearest pick, what the greedy keeps
small) of each. Prints a Markdown table for docs/experiments/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from edge_ae.anomaly import fit as fit_module
from edge_ae.anomaly.coreset import greedy_coreset, plain_greedy_coreset

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "anomaly" / "magnetic_tile" / "tile" / "train" / "good"


def pool_of(folder: Path, images: int, options: fit_module.FitOptions, threads: int) -> np.ndarray:
    """The fit's projected pool for the first ``images`` images of ``folder`` (its own code path)."""
    items = fit_module.list_images(folder)[:images]
    rng = np.random.default_rng(options.seed)
    read = fit_module._Reader(None, None)
    fit_items, _ = fit_module.holdout_split(items, options, rng, read)
    extractor = fit_module._Extractor(options, threads)
    per_image = max(1, -(-options.pool_patches // len(fit_items)))
    pool, _, _ = fit_module._collect(read(fit_items, "features"), extractor, per_image, rng)
    projection = fit_module._principal_axes(pool, options.project_dim)
    return pool if projection is None else (pool - projection[0]) @ projection[1]


def covering_radius(pool: np.ndarray, picks: np.ndarray, block: int = 4096) -> float:
    """Largest Euclidean distance from a pool row to its nearest picked row."""
    centres = pool[picks].astype(np.float64)
    sqc = np.einsum("ij,ij->i", centres, centres)
    worst = 0.0
    for s in range(0, len(pool), block):
        x = pool[s:s + block].astype(np.float64)
        d = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * x @ centres.T + sqc
        worst = max(worst, float(d.min(1).max()))
    return float(np.sqrt(max(worst, 0.0)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--normal", type=Path, default=DATA)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--backbone", default="lite0", help="shipped features-NAME")
    ap.add_argument("--memory", type=int, nargs="+", default=[4000])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the features")
    args = ap.parse_args(argv)
    if not args.normal.is_dir():
        print(f"no folder {args.normal}", file=sys.stderr)
        return 2
    options = fit_module.FitOptions(features=f"features-{args.backbone}")
    pool = pool_of(args.normal, args.images, options, args.threads)
    print(f"pool {pool.shape[0]} x {pool.shape[1]} ({args.backbone}, {args.images} images); load "
          f"{os.getloadavg()[0]:.1f}; BLAS threads as set by OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    print("\n| memory | plain greedy (s) | epoch greedy (s) | ratio | picks in common | covering radius plain / epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in args.memory:
        times: dict[str, list[float]] = {"plain": [], "epoch": []}
        picks = {}
        for _ in range(args.rounds):
            for name, select in (("plain", plain_greedy_coreset), ("epoch", greedy_coreset)):
                t0 = time.perf_counter()
                picks[name] = select(pool, size, seed=options.seed)
                times[name].append(time.perf_counter() - t0)
        plain, epoch = min(times["plain"]), min(times["epoch"])
        common = len(np.intersect1d(picks["plain"], picks["epoch"])) / size
        print(f"| {size} | {plain:.2f} | {epoch:.2f} | {plain / epoch:.1f}x | {common:.4f} | "
              f"{covering_radius(pool, picks['plain']):.4f} / {covering_radius(pool, picks['epoch']):.4f} |", flush=True)
    print(f"\nload after {os.getloadavg()[0]:.1f}; `python -m tools.bench_coreset {' '.join(argv or sys.argv[1:])}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
