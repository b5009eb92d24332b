"""Score a fit recipe on the magnetic tiles' VALIDATION data only (the design trials of
docs/experiments/2026-12-06-anomaly-v3.md), never on the part of the test split that is reported.

    python -m tools.anomaly_validate --out OUT/base.json                      # the fit defaults
    python -m tools.anomaly_validate --out OUT/m8k.json --memory 8000 --backbone lite1
    python -m tools.anomaly_validate --out OUT/again.json --model OUT/base.onnx   # score a fitted file

Validation set: negatives are the train/good images the fit holds out for its threshold (its own
seeded 15 %, never fitted on); positives are the defects that ``tools.split_anomalies.choose`` sets
aside (30 % of each type, seed 0), with their masks. ``tools/bench_anomaly.py`` reports on the rest.
The fit is `edge-ae anomaly fit` itself (``fit_anomaly_model`` with the given options), so what is
scored is what would ship. Prints and writes JSON: image and pixel AUROC, per defect type, recall at
1 % and 5 % false positives (on the validation normals), the fit's seconds (a busy shared host: use
them as ratios within one run of trials only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_ae import AnomalyDetector
from edge_ae.anomaly.fit import FitOptions, fit_anomaly_model, holdout_split, list_images
from tools.bench_anomaly import DATA, VALIDATION_FRACTION, VALIDATION_SEED, score_items, summarise
from tools.split_anomalies import choose


def validation_items(data: Path, options: FitOptions) -> tuple[list[Path], list[tuple[Path, str, Path | None]]]:
    """(train/good images to fit on, validation items: held-out train/good + defects set aside)."""
    train = list_images(data / "train" / "good")
    fit, held = holdout_split(train, options, np.random.default_rng(options.seed))
    aside, _ = choose(data, fraction=VALIDATION_FRACTION, seed=VALIDATION_SEED)
    return [Path(str(p)) for p in fit], [(Path(str(p)), "good", None) for p in held] + aside


def options_from(args: argparse.Namespace) -> FitOptions:
    fields = {f.name for f in dataclasses.fields(FitOptions)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return FitOptions(**given)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="JSON to write (the fitted model goes beside it)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--model", type=Path, help="score this fitted model instead of fitting one")
    ap.add_argument("--threads", type=int, default=1)
    defaults = FitOptions()
    for f in dataclasses.fields(FitOptions):
        kind = type(getattr(defaults, f.name))
        ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, help=f"FitOptions.{f.name} "
                        f"(default {getattr(defaults, f.name)})")
    args = ap.parse_args(argv)
    options = options_from(args)
    fit_items, items = validation_items(args.data, options)
    t0 = time.perf_counter()
    if args.model is None:
        result = fit_anomaly_model(fit_items, val_normal=[p for p, k, _ in items if k == "good"], name=args.out.stem,
                                   options=options, threads=args.threads)
        model_path = args.out.with_suffix(".onnx")
        model_path.write_bytes(result.data)
    else:
        model_path = args.model
    fit_seconds = time.perf_counter() - t0
    detector = AnomalyDetector(model_path, threads=args.threads)
    r: dict[str, Any] = summarise(score_items(detector, items), detector.calibration.threshold)
    report = {"options": dataclasses.asdict(options), "model": str(model_path), "fit_seconds": round(fit_seconds, 1),
              "load": os.getloadavg()[0], "validation": r}
    args.out.write_text(json.dumps(report, indent=1, default=str))
    types = " ".join(f"{k} {v['auroc']:.3f}" for k, v in r["per_type"].items())
    rec = r["recall_at_fpr"]
    print(f"{args.out.stem}: image {r['image_auroc']:.3f} pixel {r['pixel_auroc']:.3f} | {types} | recall@1% "
          f"{rec['0.01']:.3f} @5% {rec['0.05']:.3f} | fit {fit_seconds:.0f} s, {r['ms_per_image']:.1f} ms/img "
          f"(load {report['load']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
