"""``edge-ae anomaly calibrate``: re-calibrate an anomaly model's threshold on new normal images.

    edge-ae anomaly calibrate [-m MODEL] --normal DIR -o NEW.onnx [--fpr 0.01] [--anomalous DIR]

No torch: it scores the new normal images with the model as it is and writes a copy whose
metadata holds the new threshold and score statistics (the graph and its weights are copied
byte for byte). Use it when the camera moved or the lighting changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
from pathlib import Path

import numpy as np

from edge_ae.anomaly.calibration import DEFAULT_FPR, calibrate_f1, calibrate_fpr
from edge_ae.anomaly.detector import AnomalyDetector
from edge_ae.cli.limits import tidy
from edge_ae.cli.options import (
    add_model,
    add_old_positional_model,
    add_threads,
    default_anomaly_model,
    resolve_threads,
    take_model,
)
from edge_ae.cli.outputs import saved
from edge_ae.cli.progress import Progress
from edge_ae.cli.values import share
from edge_ae.errors import EdgeAEError
from edge_ae.files import batch
from edge_ae.files.imageio import read_image
from edge_ae.files.output_paths import prepare_output_file
from edge_ae.model.contract import METADATA_KEY
from edge_ae.model.onnx_meta import rewrite_metadata_file


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "calibrate", prog="edge-ae anomaly calibrate", help="re-calibrate a model's threshold on new normal images",
        description="Write a copy of an anomaly model whose threshold is re-calibrated on the normal images in "
        "--normal (a target false-positive rate), or for the best F1 when --anomalous images are given too.")
    add_model(p, "anomaly model", default_help="default: the shipped anomaly model, if only one")
    add_old_positional_model(p)
    p.add_argument("--normal", required=True, metavar="DIR", help="folder of normal images (searched recursively)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="NEW.onnx", help="where to write the copy")
    p.add_argument("--anomalous", metavar="DIR", help="folder of anomalous images too: F1-optimal threshold")
    p.add_argument("--fpr", type=share, default=DEFAULT_FPR, help=f"target false-positive rate (default {DEFAULT_FPR})")
    p.add_argument("--name", help="model name recorded in the copy (default: unchanged)")
    add_threads(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def scores_of_folder(detector: AnomalyDetector, folder: str, what: str,
                     map_medians: list[float] | None = None) -> list[float]:
    """Scores of a folder's images; each map's median is appended to ``map_medians`` if given."""
    if not Path(folder).is_dir():
        raise EdgeAEError(f"--{what}: no such folder: {folder}")
    found, _ = batch.find_inputs([folder], recursive=True)
    scores = []
    progress = Progress(len(found), label=f"{what} ")
    for src, _ in found:
        try:
            maps, values = detector.raw([read_image(src)])
            scores.append(float(values[0]))
            if map_medians is not None:
                map_medians.append(float(np.median(maps[0])))
        except Exception as exc:  # one bad file is skipped, never the calibration's end
            progress.note(f"skipped: {batch.failure_message(src, exc)}")
        progress.advance()
    progress.close()
    if not scores:
        raise EdgeAEError(f"--{what}: no readable images in {folder}")
    return scores


def run(args: argparse.Namespace) -> int:
    model = take_model(args, "anomaly calibrate") or default_anomaly_model()
    if args.output.suffix.lower() != ".onnx":
        raise argparse.ArgumentTypeError(f"-o must name an .onnx file, got {args.output}")
    for flag in ("normal", "anomalous"):
        folder = getattr(args, flag)
        if folder is not None and not Path(folder).is_dir():
            raise EdgeAEError(f"--{flag} {folder}: not a folder")
    detector = AnomalyDetector(model, threads=resolve_threads(args.threads))
    source = detector.model.path
    if args.output.resolve() == source.resolve():
        raise EdgeAEError(f"-o {args.output} is the model itself: write a copy")
    prepare_output_file(args.output, label="-o", overwrite=args.overwrite)  # before the scoring, not after
    tidy(args.output.parent, names=(args.output.name,))  # what a killed calibration left (its writer gone)
    medians: list[float] = []
    normal = scores_of_folder(detector, args.normal, "normal", medians)
    if args.anomalous:
        cal = calibrate_f1(normal, scores_of_folder(detector, args.anomalous, "anomalous"))
    else:
        cal = calibrate_fpr(normal, fpr=args.fpr)
        if len(normal) < 1 / args.fpr:
            print(f"note: {len(normal)} normal images are few for a {args.fpr:g} false-positive rate "
                  f"(the threshold is close to their highest score); {int(round(1 / args.fpr))}+ are better",
                  file=sys.stderr)
    cal = dataclasses.replace(cal, map_median=float(np.median(medians)))
    spec = detector.spec
    previous = spec.anomaly.threshold if spec.anomaly else None
    history = {"date": datetime.date.today().isoformat(), "normal": str(args.normal), "anomalous": args.anomalous,
               "method": cal.method, "n_images": cal.n_images, "previous_threshold": previous}
    new_spec = dataclasses.replace(spec, name=args.name or spec.name, anomaly=cal,
                                   provenance={**spec.provenance, "recalibrated": history})
    saved(args.output, lambda: rewrite_metadata_file(source, args.output, METADATA_KEY, new_spec.to_json()))
    AnomalyDetector(args.output, threads=1)  # the copy must load before we say it is done
    old = spec.anomaly.threshold if spec.anomaly else float("nan")
    target = f"target FPR {cal.target_fpr:g}" if cal.method == "fpr" else "best F1"
    print(f"re-calibrated {spec.name} on {cal.n_images} images ({target}): threshold {old:.4g} -> {cal.threshold:.4g}, "
          f"normal scores {cal.score_mean:.4g} +- {cal.score_std:.4g} -> {args.output}")
    return 0
