"""Time two anomaly models on the same images, interleaved image by image, so that a busy shared
host slows both alike; prints each median and the median per-image ratio (second / first).

    python -m tools.anomaly_time_ratio OLD.onnx anomaly-magnetic-tile --threads 1

A ratio measured this way carries over to a quiet host better than either time does (the v3
record, docs/experiments/2026-12-06-anomaly-v3.md, estimates the 2-thread time from it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from edge_ae import AnomalyDetector
from edge_ae.files.imageio import read_image
from tools.bench_anomaly import DATA


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--images", type=Path, default=DATA / "test" / "good", help="folder of images (first 20 by name)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    images = [read_image(p) for p in sorted(args.images.iterdir())[:20]]
    models = [AnomalyDetector(m, threads=args.threads) for m in (args.first, args.second)]
    for model in models:
        model(images[0])  # warm-up
    times: list[list[float]] = [[], []]
    for _ in range(args.rounds):
        for image in images:
            for i, model in enumerate(models):
                t0 = time.perf_counter()
                model(image)
                times[i].append(time.perf_counter() - t0)
    for name, t in zip((args.first, args.second), times, strict=True):
        print(f"{name}: median {1000 * statistics.median(t):.1f} ms per image ({args.threads} threads)")
    ratio = statistics.median(b / a for a, b in zip(*times, strict=True))
    print(f"median per-image ratio second / first: {ratio:.2f} (load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
