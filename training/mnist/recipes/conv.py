"""Recipe 4: convolutional AE, conv + max-pool twice to an 8 x 7 x 7 code, conv + nearest
up-sampling back, sigmoid out; binary cross-entropy, Adam, 2 epochs, batch 128 (conv layers
are slow on the shared 2-core CPU; the issue fixes no schedule). Ships as
``mnist-conv``."""

from __future__ import annotations

from typing import Any

from training.mnist import plots
from training.mnist.context import Context
from training.mnist.nets import ConvAE
from training.mnist.recipes import common

CONFIG: dict[str, Any] = {"network": "conv 16-8, code 8x7x7", "loss": "bce", "optimizer": "adam", "lr": 2e-3,
          "lr_schedule": "cosine to 0", "epochs": 2, "batch": 128}


def run(ctx: Context) -> dict[str, Any]:
    name = "conv"
    model = ConvAE((16, 8))
    trained = common.train(ctx, model, loss="bce", epochs=CONFIG["epochs"], batch=CONFIG["batch"], lr=CONFIG["lr"],
                           lr_decay=True)
    export = common.export(ctx, name, trained, name="mnist-conv", ship=True, config=CONFIG,
                           description="MNIST convolutional autoencoder, 8x7x7 code (392 numbers)")
    plots.loss_curves({"conv 8x7x7": trained.history}, ctx.folder(name) / "loss.png", title="conv AE, BCE")
    return {
        "title": "Convolutional AE, 7x7 code, BCE",
        "config": CONFIG,
        "results": trained.results,
        "headline": {"metric": "test BCE", "value": trained.results["test_bce"], "better": "lower"},
        "figures": [common.grid(ctx, name, {"conv AE": model}), "loss.png"],
        "history": common.history_table(trained.history),
        "train_seconds": trained.seconds,
        "export": export,
    }
