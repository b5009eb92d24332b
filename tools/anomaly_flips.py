"""Would averaging an anomaly model's map over flipped copies of the image find more defects?

    python tools/anomaly_flips.py anomaly-magnetic-tile-fast anomaly-magnetic-tile

For each model (registry name or .onnx file) and each image of the magnetic-tile test split, the
map of the image is averaged with the maps of its flips (each flipped back), and the image score
is the maximum of the averaged map, as the models' own score is the maximum of theirs. Printed:
image AUROC (test/good against every defect type) and per defect type, for the plain score, the
average with the left-right flip, and the average over all four flips. A check, not a feature: the
shipped graphs do not flip (docs/ANOMALY.md says why).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_ae import AnomalyDetector  # noqa: E402
from edge_ae.files.imageio import read_image  # noqa: E402
from tools.bench_anomaly import DATA, test_set  # noqa: E402
from training.metrics import auroc  # noqa: E402

# Axes to flip for: none, left-right, top-bottom, both.
FLIPS: tuple[tuple[int, ...], ...] = ((), (1,), (0,), (0, 1))
VARIANTS = {"plain": 1, "mean with left-right flip": 2, "mean of 4 flips": 4}


def flip_scores(detector: AnomalyDetector, image: np.ndarray) -> dict[str, float]:
    # np.flip over no axes is the array itself, so the plain image needs no special case.
    maps = [np.flip(detector.raw([np.ascontiguousarray(np.flip(image, axis=axes))])[0][0], axis=axes)
            for axes in FLIPS]
    return {label: float(np.mean(maps[:n], axis=0).max()) for label, n in VARIANTS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="registry names or .onnx files")
    ap.add_argument("--data", type=Path, default=DATA, help=f"folder with test/ and ground_truth/ (default {DATA})")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.data / "test").is_dir():
        print(f"error: no test/ folder in {args.data}", file=sys.stderr)
        return 2
    items = test_set(args.data)
    kinds = np.array([kind for _, kind, _ in items])
    defect_types = sorted(set(kinds) - {"good"})
    print("| model | scoring | image AUROC | " + " | ".join(defect_types) + " |")
    print("| --- | --- | --- |" + " --- |" * len(defect_types))
    for model in args.models:
        detector = AnomalyDetector(model, threads=args.threads)
        rows = [flip_scores(detector, read_image(path)) for path, _, _ in items]
        for label in VARIANTS:
            s = np.array([r[label] for r in rows])
            good = s[kinds == "good"]
            per = [f"{auroc(good, s[kinds == k]):.3f}" for k in defect_types]
            print(f"| {detector.spec.name} | {label} | {auroc(good, s[kinds != 'good']):.3f} | " + " | ".join(per) + " |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
