"""``edge-ae anomaly check``: does a model still score its held-out normal images as it did when
it was calibrated?

    edge-ae anomaly check -m MODEL --normal DIR

Calibration writes the mean and standard deviation of the held-out normal images' scores into
the model beside the threshold. Scoring the same images again with the runtime as installed now
(image reading, resizing, onnxruntime) must give the same statistics to float precision. If it
does not, the libraries or the folder changed, and the threshold may no longer mean its
false-positive rate: ``edge-ae anomaly calibrate`` re-calibrates. Exit status 0 when equal, 1
when not, 2 on an error. (A model trained on a seeded split of one folder: ``python -m
tools.anomaly_holdout_scores`` recovers the split, which needs the training package.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge_ae.anomaly.detector import AnomalyDetector
from edge_ae.cli.options import add_model, add_old_positional_model, add_threads, deprecated, resolve_threads, take_model
from edge_ae.errors import EdgeAEError
from edge_ae.files import batch
from edge_ae.files.imageio import read_image

# Training scores the held-out images through the PyTorch graph, this check through onnxruntime:
# the two agree to about 1e-7 (the export's parity check); a changed resize moves scores by 1e-3+.
TOLERANCE = 1e-5


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("check", prog="edge-ae anomaly check", help="do a model's held-out images still score "
                            "as at calibration?", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "anomaly model")
    add_old_positional_model(p)
    p.add_argument("--normal", type=Path, metavar="DIR",
                   help="the held-out normal images the model was calibrated on (required)")
    p.add_argument("--val-normal", type=Path, help=argparse.SUPPRESS)  # the old name, still accepted
    add_threads(p)
    p.set_defaults(func=run)


def holdout_report(detector: AnomalyDetector, paths: list[Path]) -> tuple[bool, str]:
    """(same to float precision?, the lines that say so) for ``paths`` scored now."""
    if not paths:
        raise EdgeAEError("no held-out images to score")
    scores = np.array([float(detector.score(read_image(p))) for p in paths])
    cal = detector.calibration
    same = (len(scores) == cal.n_images and abs(scores.mean() - cal.score_mean) <= TOLERANCE
            and abs(scores.std() - cal.score_std) <= TOLERANCE)
    lines = [
        f"{detector.spec.name}: {len(scores)} held-out images",
        f"  recorded at calibration: {cal.score_mean:.8f} +- {cal.score_std:.8f} ({cal.n_images} images)",
        f"  scored now:              {scores.mean():.8f} +- {scores.std():.8f}",
        "  the same to float precision" if same else
        f"  DIFFERENT (tolerance {TOLERANCE:g}): other images, or they reach the graph otherwise than in training",
    ]
    return same, "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    model = take_model(args, "anomaly check", required=True)
    if args.val_normal is not None:
        if args.normal is not None:
            raise argparse.ArgumentTypeError("--normal and --val-normal are the same option: give --normal")
        deprecated("--val-normal", "--normal")
        args.normal = args.val_normal
    if args.normal is None:
        raise argparse.ArgumentTypeError("edge-ae anomaly check: --normal DIR is required (the held-out normal images)")
    if not args.normal.is_dir():
        raise EdgeAEError(f"--normal: no such folder: {args.normal}")
    detector = AnomalyDetector(model, threads=resolve_threads(args.threads))
    found, _ = batch.find_inputs([str(args.normal)], recursive=True)
    same, text = holdout_report(detector, [src for src, _ in found])
    print(text)
    return 0 if same else 1
