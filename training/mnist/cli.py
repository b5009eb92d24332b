"""``python -m training.mnist <recipe>|all``: run recipes with a fixed seed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.mnist.context import RUNS, Context
from training.mnist.recipes import RECIPES, run_recipe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.mnist", description=__doc__)
    ap.add_argument("recipes", nargs="+", metavar="RECIPE", help=f"one or more of: {', '.join(RECIPES)}, or all")
    ap.add_argument("--out", type=Path, default=RUNS, help="runs folder (default runs/mnist)")
    ap.add_argument("--seed", type=int, default=0)
    # One thread by default: on the shared 2-core training box a second thread mostly spins
    # waiting for a core another job holds, and that costs more than it gains.
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--epochs", type=int, help="override epochs (quick checks; the report uses the defaults)")
    ap.add_argument("--limit", type=int, help="first N train/test images only (quick checks)")
    ap.add_argument("--classes", type=int, nargs="+", choices=range(10), default=list(range(10)), metavar="C",
                    help="one-class recipe: only these normal classes (runs side by side share a resumable cache)")
    ap.add_argument("--no-ship", action="store_true", help="do not write to exported/ or its manifest")
    args = ap.parse_args(argv)
    names = list(RECIPES) if args.recipes == ["all"] else args.recipes
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {', '.join(unknown)}; expected {', '.join(RECIPES)} or all")
    ctx = Context(out=args.out, seed=args.seed, epochs=args.epochs, limit=args.limit, threads=args.threads,
                  classes=tuple(args.classes))
    if args.no_ship or args.epochs is not None or args.limit is not None:
        ctx.ship_dir = None  # a shortened run never replaces the shipped models
    for name in names:
        record = run_recipe(name, ctx)
        headline = record["headline"]
        print(f"[{name}] {headline['metric']}: {headline['value']} ({record['wall_seconds']} s) "
              f"-> {args.out / name / 'metrics.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
