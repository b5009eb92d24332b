"""python -m training.anomaly --normal DIR [--val-normal DIR] [--val-anomalous DIR] --name NAME

Trains a convolutional autoencoder on normal images only, calibrates the threshold on held-out
normal images (target false-positive rate) or, with --val-anomalous, for the best F1, and exports
exported/NAME.onnx with its manifest entry. Progress goes to stderr; checkpoints to runs/NAME/.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from training.anomaly.config import AnomalyConfig

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = ROOT / "exported"

# Config fields that are plain command-line options (--size, --width, ...).
OPTIONS = ("size", "holdout", "width", "latent_channels", "seg_width", "batch", "patch", "val_images", "steps", "minutes", "lr",
           "eval_every", "patience", "synthetic_fraction", "input_noise", "fpr", "topk", "smooth", "seed", "threads")


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, AnomalyConfig]:
    ap = argparse.ArgumentParser(prog="python -m training.anomaly", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = AnomalyConfig(name="", normal="")
    ap.add_argument("--normal", required=True, help="folder of normal images (searched recursively)")
    ap.add_argument("--val-normal", help="held-out normal images (default: a seeded split of --normal)")
    ap.add_argument("--val-anomalous", help="anomalous validation images: early stop on their AUROC, F1-optimal threshold")
    ap.add_argument("--name", required=True, help="model name; writes OUT/NAME.onnx")
    ap.add_argument("--out", type=Path, default=EXPORTED, help="export folder (default exported/)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="checkpoints go to RUNS/NAME (default runs/)")
    ap.add_argument("--no-manifest", action="store_true", help="do not add the model to OUT/manifest.json")
    ap.add_argument("--description", default="", help="one line for the manifest")
    for key in OPTIONS:
        default = getattr(defaults, key)
        ap.add_argument("--" + key.replace("_", "-"), type=type(default), default=default, help=f"default {default}")
    ap.add_argument("--map", default=defaults.map, choices=["learned", "error"],
                    help="learned: a segmenter trained on synthetic defects compares image and repair (default); "
                    "error: the reconstruction error alone")
    ap.add_argument("--channels", default="auto", choices=["auto", "1", "3"], help="default auto (grey if all images are)")
    ap.add_argument("--no-positional", action="store_true",
                    help="--map error only: no per-pixel normal statistics (views that are not from a fixed camera)")
    ap.add_argument("--no-flips", action="store_true", help="no flipped copies of normal images (orientation matters)")
    args = ap.parse_args(argv)
    values = {k: getattr(args, k) for k in OPTIONS}
    cfg = AnomalyConfig(name=args.name, normal=args.normal, val_normal=args.val_normal, val_anomalous=args.val_anomalous,
                        map=args.map, channels=args.channels if args.channels == "auto" else int(args.channels),
                        flips=not args.no_flips, positional=not args.no_positional, **values)
    return args, cfg


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse(argv)
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
    trained = train(cfg, prep, args.runs / cfg.name, log)
    log(f"trained {trained.steps} steps in {trained.seconds / 60:.1f} min; best step {trained.best_step} "
        f"(val AUROC {trained.val_auroc:.4f} on {trained.val_kind})")
    export_anomaly(cfg, prep, trained, args.out, command=command, manifest=not args.no_manifest, log=log,
                   description=args.description)
    return 0


if __name__ == "__main__":
    sys.exit(main())
