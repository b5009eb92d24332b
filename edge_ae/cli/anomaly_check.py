"""``edge-ae anomaly check``: does a model still score its held-out normal images as it did when
it was calibrated?

    edge-ae anomaly check -m MODEL --normal DIR [--anomalous DIR]

Calibration writes the mean and standard deviation of the held-out normal images' scores into
the model beside the threshold. Scoring the same images again with the runtime as installed now
(image reading, resizing, onnxruntime) must give the same statistics to float precision. If it
does not, the libraries or the folder changed, and the threshold may no longer mean its
false-positive rate: ``edge-ae anomaly calibrate`` re-calibrates. Exit status 0 when equal, 1
when not, 2 on an error. (A model trained on a seeded split of one folder: ``python -m
tools.anomaly_holdout_scores`` recovers the split, which needs the training package.)

It also shows the trade of the operating point: how many of these normal images the model's
threshold flags, and the thresholds that would flag 1 %, 5 % and 10 % of them (with
``--anomalous``, the share of those defective images each threshold finds), so a user can pick
a ``--fpr`` for ``edge-ae anomaly calibrate``.
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
FPR_POINTS = (0.01, 0.05, 0.10)  # operating points shown beside the model's own threshold


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("check", prog="edge-ae anomaly check", help="do a model's held-out images still score "
                            "as at calibration?", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "anomaly model")
    add_old_positional_model(p)
    p.add_argument("--normal", type=Path, metavar="DIR",
                   help="the held-out normal images the model was calibrated on (required)")
    p.add_argument("--val-normal", type=Path, help=argparse.SUPPRESS)  # the old name, still accepted
    p.add_argument("--anomalous", type=Path, metavar="DIR", help="defective images too: the share each threshold finds")
    add_threads(p)
    p.set_defaults(func=run)


def scores_of(detector: AnomalyDetector, paths: list[Path]) -> np.ndarray:
    return np.array([float(detector.score(read_image(p))) for p in paths])


def holdout_report(detector: AnomalyDetector, paths: list[Path]) -> tuple[bool, str]:
    """(same to float precision?, the lines that say so) for ``paths`` scored now."""
    if not paths:
        raise EdgeAEError("no held-out images to score")
    return compare(detector, scores_of(detector, paths))


def compare(detector: AnomalyDetector, scores: np.ndarray) -> tuple[bool, str]:
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


def trade_report(threshold: float, normal: np.ndarray, anomalous: np.ndarray | None) -> str:
    """The model's threshold and those for ``FPR_POINTS`` on ``normal``: normal images flagged and,
    with ``anomalous``, defective images found."""
    def row(label: str, t: float) -> str:
        flagged = int(np.sum(normal > t))
        found = "" if anomalous is None else f"   defects found {np.mean(anomalous > t):6.1%}"
        return f"  {label:<22} {t:12.6g}   normal flagged {flagged:4d}/{normal.size} ({flagged / normal.size:6.1%}){found}"

    lines = ["operating points on these images (an image is flagged when its score is above the threshold):",
             row("the model's threshold", threshold)]
    for fpr in FPR_POINTS:
        lines.append(row(f"for {fpr:.0%} false positives", float(np.quantile(normal, 1.0 - fpr))))
    lines.append("  another point: edge-ae anomaly calibrate MODEL --normal DIR --fpr RATE -o NEW.onnx")
    return "\n".join(lines)


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
    if args.anomalous is not None and not args.anomalous.is_dir():
        raise EdgeAEError(f"--anomalous: no such folder: {args.anomalous}")
    found, _ = batch.find_inputs([str(args.normal)], recursive=True)
    paths = [src for src, _ in found]
    if not paths:
        raise EdgeAEError("no held-out images to score")
    normal = scores_of(detector, paths)
    anomalous = None
    if args.anomalous is not None:
        bad, _ = batch.find_inputs([str(args.anomalous)], recursive=True)
        if not bad:
            raise EdgeAEError(f"--anomalous {args.anomalous}: no images")
        anomalous = scores_of(detector, [src for src, _ in bad])
    same, text = compare(detector, normal)
    print(text)
    print(trade_report(detector.calibration.threshold, normal, anomalous))
    return 0 if same else 1
