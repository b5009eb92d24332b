"""python -m training.anomaly --normal DIR [--val-normal DIR] [--val-anomalous DIR] --name NAME

Trains a convolutional autoencoder on normal images only, calibrates the threshold on held-out
normal images (target false-positive rate) or, with --val-anomalous, for the best F1, and exports
exported/NAME.onnx with its manifest entry. Progress goes to stderr; checkpoints to runs/NAME/.

With --sizes 128,256 it trains one model per size instead (the smallest on whole images, the
others on crops of the smallest size, so each costs about the same per step), one after another,
and fuses them into exported/NAME.onnx (python -m training.anomaly.fuse); the members go to
runs/NAME/members/.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from training.anomaly.config import AnomalyConfig
from training.anomaly.options import parse as parse_options


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, AnomalyConfig]:
    """This command's options as parsed arguments and the training config they make."""
    return parse_options(argv, description=__doc__)


def member_argv(argv: list[str], size: int, smallest: int, name: str, out: Path) -> list[str]:
    """A single-size training command for one member of a --sizes run: the same options, its own
    size (and crops of the smallest size when larger), name and folder, no manifest entry."""
    drop_with_value = {"--sizes", "--name", "--out", "--description"}
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        key = a.split("=")[0]
        if key in drop_with_value:
            skip = "=" not in a
            continue
        if key == "--no-manifest":
            continue
        kept.append(a)
    crops = ["--patch", str(smallest)] if size > smallest else []
    return kept + ["--name", f"{name}-{size}", "--size", str(size), *crops, "--out", str(out), "--no-manifest"]


def shown(path: Path) -> str:
    """A path as it goes into a recorded command: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def train_sizes(args: argparse.Namespace, argv: list[str]) -> int:
    from training.anomaly.fuse import main as fuse_main

    members = Path(shown(args.runs / args.name / "members"))
    paths = []
    for size in args.sizes:
        rc = main(member_argv(argv, size, args.sizes[0], args.name, members))
        if rc:
            return rc
        paths.append(members / f"{args.name}-{size}.onnx")
    fuse = [*map(str, paths), "--name", args.name, "--out", shown(args.out)]
    fuse += ["--no-manifest"] * args.no_manifest + (["--description", args.description] if args.description else [])
    return fuse_main(fuse)


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse(argv)
    if args.sizes is not None:
        return train_sizes(args, sys.argv[1:] if argv is None else list(argv))
    # Heavy imports after argument parsing, so --help is instant.
    from training.anomaly.export import export_anomaly
    from training.anomaly.train import prepare, train

    start = time.monotonic()

    def log(message: str) -> None:
        stamp = time.monotonic() - start
        print(f"[{int(stamp // 60):3d}:{int(stamp % 60):02d}] {message}", file=sys.stderr, flush=True)

    command = "python -m training.anomaly " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        prep = prepare(cfg, log)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in prep.problems:
        log(f"skipped: {problem}")
    trained = train(cfg, prep, args.runs / cfg.name, log, resume=args.resume)
    log(f"trained {trained.steps} steps in {trained.seconds / 60:.1f} min; best step {trained.best_step} "
        f"(val AUROC {trained.val_auroc:.4f} on {trained.val_kind})")
    export_anomaly(cfg, prep, trained, args.out, command=command, manifest=not args.no_manifest, log=log,
                   description=args.description)
    return 0

