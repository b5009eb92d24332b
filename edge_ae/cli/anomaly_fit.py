"""``edge-ae anomaly fit``: teach a detector "normal" from a folder of good images, on the device.

    edge-ae anomaly fit --normal DIR -o my-line.onnx [--val-normal DIR] [--anomalous DIR]
                        [--size N] [--resize stretch|keep-aspect]

No torch: the shipped pretrained feature extractor describes the images, a memory of normal
patches is chosen, and one self-contained ONNX file is written (``edge_ae.anomaly.fit``) that
``edge-ae anomaly``, ``anomaly calibrate`` and ``camera --anomaly`` use like any anomaly model.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from edge_ae.anomaly.fit import (
    FEATURES,
    MAX_SIZE,
    MIN_CALIBRATION_IMAGES,
    MIN_SIZE,
    RESIZE_MODES,
    FitOptions,
    fit_anomaly_model,
)
from edge_ae.cli.limits import tidy
from edge_ae.cli.options import add_threads, deprecated, resolve_threads
from edge_ae.cli.outputs import saved
from edge_ae.cli.progress import Progress
from edge_ae.cli.values import finite_float, int_range, non_negative_int, positive_int, share
from edge_ae.errors import EdgeAEError
from edge_ae.files.atomic import write_bytes_atomic
from edge_ae.files.output_paths import prepare_output_file
from edge_ae.model.registry import list_models

BACKBONE_DEFAULT = FEATURES.removeprefix("features-")
STAGES = {"features": "features ", "memory": "memory ", "calibrate": "calibrate ",
          "calibrate anomalous": "calibrate anomalous "}


def score_share(text: str) -> float:
    """A share in [0, 1) (0: the map's maximum), as --score-top takes it."""
    value = finite_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text}")
    return value


def add_parser(commands: argparse._SubParsersAction) -> None:
    defaults = FitOptions()
    p = commands.add_parser(
        "fit", prog="edge-ae anomaly fit", help="build a detector from a folder of normal images (no torch)",
        description="Fit an anomaly detector on a folder of normal images, without torch: pretrained features, a "
        "memory of normal patches, a threshold from held-out normal images. Writes one ONNX file.")
    p.add_argument("--normal", required=True, metavar="DIR", help="folder of normal (good) images")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="MODEL.onnx", help="where to write the model")
    p.add_argument("--val-normal", metavar="DIR",
                   help="other normal images to set the threshold on, as 'anomaly calibrate --normal' does "
                   "(default: hold out a share of --normal)")
    p.add_argument("--anomalous", dest="val_anomalous", metavar="DIR",
                   help="folder of anomalous images too: F1-optimal threshold")
    p.add_argument("--val-anomalous", dest="old_val_anomalous", help=argparse.SUPPRESS)  # the old name
    p.add_argument("--size", type=int_range(MIN_SIZE, MAX_SIZE), default=defaults.size,
                   help=f"input size in pixels, {MIN_SIZE}-{MAX_SIZE} (stretch: size x size; keep-aspect: shorter "
                   f"side; default {defaults.size})")
    p.add_argument("--resize", choices=RESIZE_MODES, default=defaults.resize,
                   help=f"stretch to a square or keep the aspect ratio (default {defaults.resize})")
    p.add_argument("--memory", type=positive_int, default=defaults.memory_patches,
                   help=f"normal patches the model keeps (more: finer, slower; default {defaults.memory_patches})")
    p.add_argument("--project-dim", type=non_negative_int, default=defaults.project_dim,
                   help="features projected on this many principal axes before the search (0: all; "
                   f"default {defaults.project_dim})")
    p.add_argument("--score-top", type=score_share, default=defaults.score_top, metavar="SHARE",
                   help="image score: mean of this share of the map's highest pixels (0: its maximum; default "
                   f"{defaults.score_top})")
    p.add_argument("--backbone", default=BACKBONE_DEFAULT, metavar="NAME",
                   help="pretrained feature extractor: a shipped features-NAME model (lite0: the fastest, the default; "
                   "lite0-deep: adds a deeper block, finds more defects on the magnetic tiles, slower)")
    p.add_argument("--fpr", type=share, default=defaults.fpr,
                   help=f"target false-positive rate on held-out normal images (default {defaults.fpr})")
    p.add_argument("--name", help="model name recorded in the file (default: the output's file name)")
    add_threads(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


class _Bars:
    """One progress line per stage, switched when the fit reports another stage."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage or self.bar is None:
            self.close()
            self.stage, self.bar = stage, Progress(total, label=STAGES.get(stage, stage + " "))
        while self.bar.count < done:  # a stage may report several items at once (the memory's picks)
            self.bar.advance()

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.note(message)
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


FLAGS = {"normal": "--normal", "val_normal": "--val-normal", "val_anomalous": "--anomalous", "name": "--name"}


def run(args: argparse.Namespace) -> int:
    if args.old_val_anomalous is not None:
        if args.val_anomalous is not None:
            raise argparse.ArgumentTypeError("--anomalous and --val-anomalous are the same option: give --anomalous")
        deprecated("--val-anomalous", "--anomalous")
        args.val_anomalous = args.old_val_anomalous
    out: Path = args.output
    if out.suffix.lower() != ".onnx":
        raise EdgeAEError(f"output must be an .onnx file, got {out}")
    for flag in ("normal", "val_normal", "val_anomalous"):
        folder = getattr(args, flag)
        if folder is not None and not Path(folder).is_dir():
            raise EdgeAEError(f"{FLAGS[flag]} {folder}: not a folder")
    shipped = sorted(e.name.removeprefix("features-") for e in list_models("features"))
    if args.backbone not in shipped:
        raise argparse.ArgumentTypeError(f"--backbone: expected one of {', '.join(shipped)} (shipped features-NAME "
                                         f"models), got {args.backbone!r}")
    try:
        options = FitOptions(size=args.size, resize=args.resize, memory_patches=args.memory,
                             pool_patches=max(FitOptions().pool_patches, args.memory), fpr=args.fpr,
                             project_dim=args.project_dim, features=f"features-{args.backbone}",
                             score_top=args.score_top)
    except ValueError as exc:
        raise EdgeAEError(str(exc)) from None
    prepare_output_file(out, label="-o", overwrite=args.overwrite)  # before minutes of work, not after
    tidy(out.parent, names=(out.name,))  # what a killed fit left beside the output (its writer gone)
    bars = _Bars()
    words = ["--normal", args.normal, "-o", str(out), "--size", str(args.size), "--resize", args.resize,
             "--memory", str(args.memory), "--project-dim", str(args.project_dim), "--fpr", str(args.fpr),
             "--score-top", str(args.score_top), "--backbone", args.backbone]
    for flag in ("val_normal", "val_anomalous", "name"):
        if getattr(args, flag) is not None:
            words += [FLAGS[flag], getattr(args, flag)]
    command = "edge-ae anomaly fit " + shlex.join(words)
    try:
        result = fit_anomaly_model(args.normal, name=args.name or out.stem, val_normal=args.val_normal,
                                   val_anomalous=args.val_anomalous, options=options, threads=resolve_threads(args.threads),
                                   progress=bars, on_skip=lambda m: bars.note(f"skipped: {m}"), command=command)
    finally:
        bars.close()
    saved(out, lambda: write_bytes_atomic(out, result.data))
    cal = result.spec.anomaly
    assert cal is not None
    how = (f"best F1 on {cal.n_images} validation images" if cal.method == "f1"
           else f"false-positive rate {cal.target_fpr} on {cal.n_images} held-out normal images")
    if cal.n_images < MIN_CALIBRATION_IMAGES:
        print(f"warning: the threshold rests on {cal.n_images} normal image(s) only; {MIN_CALIBRATION_IMAGES}+ "
              "make it steadier (more --normal images, or --val-normal)", file=sys.stderr)
    print(f"fitted {out}: {result.fit_images} normal images, {result.memory_patches} memory patches, "
          f"threshold {cal.threshold:.4g} ({how}), {result.seconds:.1f} s"
          + (f"; {len(result.skipped)} image(s) skipped (unreadable or unusable)" if result.skipped else ""))
    return 0
