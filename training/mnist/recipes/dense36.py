"""Recipe 1: dense AE 784 -> 36 (ReLU) -> 784 (sigmoid), binary cross-entropy, 10 epochs,
batch 256 (Adam). Ships as ``mnist-dense36``."""

from __future__ import annotations

from typing import Any

from training.mnist import plots
from training.mnist.context import Context
from training.mnist.nets import DenseAE
from training.mnist.recipes import common

CONFIG: dict[str, Any] = {
    "network": "dense 784-36-784", "loss": "bce", "optimizer": "adam", "lr": 1e-3, "epochs": 10, "batch": 256}


def run(ctx: Context) -> dict[str, Any]:
    name = "dense36"
    model = DenseAE([784, 36])
    trained = common.train(ctx, model, loss="bce", epochs=CONFIG["epochs"], batch=CONFIG["batch"], lr=CONFIG["lr"])
    export = common.export(ctx, name, trained, name="mnist-dense36", ship=True, config=CONFIG,
                           description="MNIST dense autoencoder 784-36-784 (28x28 gray digits, 36-number code)")
    folder = ctx.folder(name)
    plots.loss_curves({"784-36-784": trained.history}, folder / "loss.png", title="dense 784-36-784, BCE")
    return {
        "title": "Dense AE 784-36-784, BCE",
        "config": CONFIG,
        "results": trained.results,
        "headline": {"metric": "test BCE", "value": trained.results["test_bce"], "better": "lower"},
        "figures": [common.grid(ctx, name, {"784-36-784": model}), "loss.png"],
        "history": common.history_table(trained.history),
        "train_seconds": trained.seconds,
        "export": export,
    }
