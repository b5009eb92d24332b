"""Does an anomaly model still score its own held-out normal images as it did when it was calibrated?

    python -m tools.anomaly_holdout_scores anomaly-magnetic-tile-fast
    python -m tools.anomaly_holdout_scores my-line.onnx --normal path/to/normal      # any model
    python -m tools.anomaly_holdout_scores my-line.onnx --val-normal path/to/held-out

Training holds out a seeded share of ``--normal`` (or takes ``--val-normal``), scores it and
writes the mean and standard deviation of those scores into the model beside the threshold. This
tool recovers the same images (the split seed is in the model's provenance), scores them with
the runtime as installed now (image reading, resizing, onnxruntime) and prints both. Equal to
float precision: the images reach the graph as they did in training, so a retrain that gives
other weights did not get other data (docs/ANOMALY.md, "A fourth run"). Different: the libraries
or the folder changed, and the threshold may no longer mean its false-positive rate
(``edge-ae anomaly calibrate`` re-calibrates). Exit status 0 when equal, 1 when not, 2 on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge_ae import AnomalyDetector
from edge_ae.cli.anomaly_check import holdout_report
from edge_ae.errors import EdgeAEError
from edge_ae.model.contract import ModelSpec
from tools.bench_anomaly import DATA
from training.anomaly.config import AnomalyConfig
from training.anomaly.data import folder, split

ROOT = Path(__file__).resolve().parent.parent

HOLDOUT = AnomalyConfig.holdout  # training's default share (its --holdout)


def training_split(spec: ModelSpec, normal: Path, fraction: float = HOLDOUT) -> tuple[list[Path], list[Path]]:
    """(trained on, held out) of ``normal`` as the model's training command split it: the same
    seeded permutation (training/anomaly/train.py), the seed from the model's provenance."""
    seed = int(spec.provenance.get("split_seed", spec.provenance.get("seed", 0)))
    return split(folder(normal), fraction, np.random.default_rng(seed))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="registry name or .onnx file of an anomaly model")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--normal", type=Path, default=DATA / "train" / "good",
                       help="the folder the model was trained on (default: the magnetic tiles' train/good)")
    where.add_argument("--val-normal", type=Path, help="the held-out folder, when training was given one")
    ap.add_argument("--holdout", type=float, default=HOLDOUT, help="the share training held out (its --holdout)")
    args = ap.parse_args(argv)
    try:
        detector = AnomalyDetector(args.model, threads=2)
        paths = folder(args.val_normal) if args.val_normal else training_split(detector.spec, args.normal, args.holdout)[1]
        same, text = holdout_report(detector, paths)
    except (EdgeAEError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
