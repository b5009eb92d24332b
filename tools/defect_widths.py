"""How wide the labelled defects are once an image is resized for a model: for each mask, twice
the largest distance from a defect pixel to the mask's edge (its widest point), at a given
shorter side. Used to judge whether a model's input size can resolve a defect type
(docs/ANOMALY.md, "160 px on the shorter side").

    python tools/defect_widths.py --kind crack --short-side 128
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.bench_anomaly import DATA  # noqa: E402


def widest(mask: np.ndarray, short_side: int) -> float:
    """Twice the largest inside distance of the mask (thresholded at half) resized so that its
    shorter side is ``short_side``; 0 for an empty mask."""
    h, w = mask.shape
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(mask.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_AREA) >= 0.5
    if not small.any():
        return 0.0
    padded = np.pad(small.astype(np.uint8), 1)  # so a defect at the border still has an edge
    return 2.0 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 5).max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with ground_truth/<kind>/*_mask.png")
    ap.add_argument("--kind", default="crack", help="defect type (default crack)")
    ap.add_argument("--short-side", type=int, default=128, help="shorter side after resizing (default 128)")
    args = ap.parse_args(argv)
    paths = sorted((args.data / "ground_truth" / args.kind).glob("*_mask.png"))
    if not paths:
        print(f"error: no masks in {args.data / 'ground_truth' / args.kind}", file=sys.stderr)
        return 2
    widths = [widest(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), args.short_side) for p in paths]
    widths = np.array([x for x in widths if x > 0])
    p10, p50, p90 = np.percentile(widths, [10, 50, 90])
    print(f"{args.kind}: {widths.size} non-empty masks at a shorter side of {args.short_side} px; widest point "
          f"10th / 50th / 90th percentile: {p10:.1f} / {p50:.1f} / {p90:.1f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
