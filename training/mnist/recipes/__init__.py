"""The registry of recipes, in the issue's order, and the wrapper that runs one and records
its metrics JSON (what ``tools/seeds_report.py`` renders)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from training.mnist.context import Context
from training.mnist.recipes import cluster, conv, deep, denoise, dense36, latent3d, oneclass
from training.mnist.train import seed_everything

RECIPES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "dense36": dense36.run,
    "deep": deep.run,
    "latent3d": latent3d.run,
    "conv": conv.run,
    "denoise": denoise.run,
    "cluster": cluster.run,
    "oneclass": oneclass.run,
}


def run_recipe(name: str, ctx: Context) -> dict[str, Any]:
    """Run recipe ``name`` and write ``ctx.out/name/metrics.json``; return what it wrote."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}")
    start = time.perf_counter()
    seed_everything(ctx.seed)  # model initialisation draws from the global generator
    body = RECIPES[name](ctx)
    ds = ctx.data()
    record = {
        "recipe": name,
        "number": list(RECIPES).index(name) + 1,
        "command": ctx.command(name),
        "seed": ctx.seed,
        "data": ds.name,
        "synthetic": ds.synthetic,
        "limit": ctx.limit,
        "epochs_override": ctx.epochs,
        **body,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    ctx.write_metrics(name, record)
    return record
