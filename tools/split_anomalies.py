"""Set a few labelled defects aside for validation (`--val-anomalous`) and keep the rest for the
benchmark, so that choosing a checkpoint on real defects never sees an image it is scored on.

From a folder laid out as tools/bench_anomaly.py expects (test/<type>/ and ground_truth/<type>/),
a seeded fraction of each defect type goes to VAL/ (one flat folder, names prefixed by the type);
the rest of the defects, their masks and every test/good image go to EVAL/ in the same layout.
Files are linked, not copied (symbolic links; the source stays untouched).

    python -m tools.split_anomalies --val /tmp/split/val --eval /tmp/split/eval --fraction 0.15
    python -m tools.bench_anomaly --model FILE --data /tmp/split/eval --out REPORT.md
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tools.anomaly_sets import DATA, VALIDATION_FRACTION, VALIDATION_SEED, test_set  # the benchmark's listing

GOOD = "good"


Item = tuple[Path, str, Path | None]  # (image, defect type or "good", mask or None)


def choose(data: Path, *, fraction: float = VALIDATION_FRACTION, seed: int = VALIDATION_SEED) -> tuple[list[Item], list[Item]]:
    """(defects set aside for validation, everything else: test/good and the remaining defects), the
    same seeded draw for a given data folder, fraction and seed (test/good is never set aside)."""
    by_kind: dict[str, list[Item]] = defaultdict(list)
    for item in test_set(data):
        by_kind[item[1]].append(item)
    if GOOD not in by_kind or len(by_kind) < 2:
        raise ValueError(f"expected test/{GOOD}/ and at least one defect type under {data / 'test'}, "
                         f"found {sorted(by_kind)}")
    rng = np.random.default_rng(seed)
    val: list[Item] = []
    rest: list[Item] = []
    for kind in sorted(by_kind):
        items = by_kind[kind]
        chosen = set() if kind == GOOD else set(rng.permutation(len(items))[: round(fraction * len(items))].tolist())
        for i, item in enumerate(items):
            (val if i in chosen else rest).append(item)
    return val, rest


def split(data: Path, val: Path, evaluation: Path, *, fraction: float, seed: int = 0) -> dict[str, tuple[int, int]]:
    """Link the files; returns, per defect type, (images set aside, images kept for evaluation)."""
    aside, kept = choose(data, fraction=fraction, seed=seed)
    for folder in (val, evaluation):
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"{folder} is not empty: choose a new folder so that no earlier split is mixed in")
    val.mkdir(parents=True, exist_ok=True)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for image, kind, _mask in aside:
        (val / f"{kind}_{image.name}").symlink_to(image.resolve())
        counts[kind][0] += 1
    for image, kind, mask in kept:
        for source, part in ((image, "test"), (mask, "ground_truth")):
            if source is not None:
                (evaluation / part / kind).mkdir(parents=True, exist_ok=True)
                (evaluation / part / kind / source.name).symlink_to(source.resolve())
        counts[kind][1] += 1
    return {kind: (a, k) for kind, (a, k) in sorted(counts.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with test/<type>/ and ground_truth/<type>/")
    ap.add_argument("--val", type=Path, required=True, help="new folder for the defects set aside")
    ap.add_argument("--eval", type=Path, required=True, dest="evaluation", help="new folder for the rest")
    ap.add_argument("--fraction", type=float, default=0.15, help="share of each defect type set aside (default 0.15)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 0 < args.fraction < 1:
        print(f"error: --fraction must be between 0 and 1, got {args.fraction}", file=sys.stderr)
        return 2
    if not (args.data / "test").is_dir():
        print(f"error: no test/ folder under {args.data}", file=sys.stderr)
        return 2
    try:
        counts = split(args.data, args.val, args.evaluation, fraction=args.fraction, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for kind, (aside, kept) in counts.items():
        print(f"{kind}: {aside} set aside, {kept} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
