"""Steps most recipes share: train one autoencoder, measure it on the test split, draw its
grid and loss curve, export its three graphs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from training.mnist import metrics, plots
from training.mnist.context import Context
from training.mnist.export import export_autoencoder
from training.mnist.train import LossFn, fit, predict, reconstruction
from training.onnx_export import provenance

SHOW = 10  # images per row in the grids


@dataclass
class Trained:
    model: torch.nn.Module
    history: list[dict[str, float]]
    results: dict[str, float]
    seconds: float
    export: dict[str, Any] = field(default_factory=dict)


def data_note(ctx: Context, name: str = "mnist") -> str:
    ds = ctx.data(name)
    return f"{ds.name} train {len(ds.train)} / test {len(ds.test)}" + (" (synthetic)" if ds.synthetic else "")


def test_quality(model: torch.nn.Module, x: np.ndarray) -> dict[str, float]:
    """Reconstruction quality on clean test images (BCE, MSE, PSNR)."""
    recon = predict(model, x)
    clipped = np.clip(recon, 1e-7, 1 - 1e-7)
    bce = -np.mean(x * np.log(clipped) + (1 - x) * np.log(1 - clipped))
    return {
        "test_bce": round(float(bce), 5),
        "test_mse": round(float(np.mean((recon - x) ** 2)), 5),
        "test_psnr_db": round(metrics.mean_psnr(x, recon), 3),
    }


def train(ctx: Context, model: torch.nn.Module, *, loss: str | LossFn, epochs: int, batch: int,
          lr: float = 1e-3, lr_decay: bool = False, train_x: np.ndarray | None = None) -> Trained:
    torch.set_num_threads(ctx.threads)
    ds = ctx.data()
    loss_fn = reconstruction(loss) if isinstance(loss, str) else loss
    start = time.perf_counter()
    history = fit(model, ds.train.x if train_x is None else train_x, loss_fn=loss_fn, epochs=ctx.n_epochs(epochs),
                  batch=batch, seed=ctx.seed, lr=lr, val_x=ds.test.x, lr_decay=lr_decay)
    seconds = time.perf_counter() - start
    return Trained(model, history, test_quality(model, ds.test.x), round(seconds, 1))


def export(ctx: Context, recipe: str, trained: Trained, *, name: str, description: str, ship: bool,
           config: dict[str, Any], data: str = "mnist") -> dict[str, Any]:
    """Export to the shipped folder (with manifest entries) when ``ship`` and the context ships,
    else next to the run's other outputs."""
    shipping = ship and ctx.ship_dir is not None
    folder = ctx.ship_dir if shipping and ctx.ship_dir is not None else ctx.folder(recipe)
    prov = provenance(command=ctx.command(recipe), data=data_note(ctx, data), metrics=trained.results,
                      extra={"seed": ctx.seed, "recipe": recipe, **config})
    info = export_autoencoder(trained.model, name=name, folder=folder, description=description, provenance=prov,
                              parity_images=ctx.data(data).test.x, ship=shipping, quality=trained.results)
    info["shipped"] = shipping
    trained.export = info
    return info


def grid(ctx: Context, recipe: str, models: Mapping[str, torch.nn.Module], *, file: str = "grid.png",
         title: str = "") -> str:
    """Originals and each model's reconstructions of the first test images."""
    x = ctx.data().test.x[:SHOW]
    rows = [("original", x)] + [(label, predict(m, x)) for label, m in models.items()]
    plots.image_rows(rows, ctx.folder(recipe) / file, title=title)
    return file


def history_table(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in h.items()} for h in history]
