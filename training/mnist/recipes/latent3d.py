"""Recipe 3: dense AE 784 -> 64 -> 784 and a 3-number-code AE 784 -> 3 -> 784, both binary
cross-entropy, 5 epochs, batch 256 (the issue fixes no schedule for these); the test latents of the 3-D one drawn as a scatter
colored by digit. The 3-D code is left linear: a ReLU there can switch off a whole axis."""

from __future__ import annotations

from typing import Any

from training.mnist import plots
from training.mnist.context import Context
from training.mnist.nets import DenseAE
from training.mnist.recipes import common
from training.mnist.train import predict

CONFIG: dict[str, Any] = {"networks": ["dense 784-64-784", "dense 784-3-784 (linear code)"], "loss": "bce", "optimizer": "adam",
          "lr": 1e-3, "epochs": 5, "batch": 256}


def run(ctx: Context) -> dict[str, Any]:
    name = "latent3d"
    folder = ctx.folder(name)
    nets = {"784-64-784": DenseAE([784, 64]), "784-3-784": DenseAE([784, 3], relu_code=False)}
    runs = {label: common.train(ctx, m, loss="bce", epochs=CONFIG["epochs"], batch=CONFIG["batch"], lr=CONFIG["lr"])
            for label, m in nets.items()}
    exports = {
        "dense64": common.export(ctx, name, runs["784-64-784"], name="mnist-dense64", ship=False, config=CONFIG,
                                 description="MNIST dense autoencoder 784-64-784"),
        "latent3": common.export(ctx, name, runs["784-3-784"], name="mnist-latent3", ship=False, config=CONFIG,
                                 description="MNIST dense autoencoder with a 3-number code (for plotting)"),
    }
    test = ctx.data().test
    latents = predict(nets["784-3-784"].encoder, test.x)
    plots.scatter3d(latents, test.y, folder / "latent3d.png",
                    title=f"3-D codes of {len(test)} test digits (784-3-784 AE)")
    plots.loss_curves({k: r.history for k, r in runs.items()}, folder / "loss.png", title="dense AEs, BCE")
    results = {f"{label} {k}": v for label, r in runs.items() for k, v in r.results.items()}
    return {
        "title": "Dense AE 784-64-784 and 3-D latent AE 784-3-784, BCE",
        "config": CONFIG,
        "results": results,
        "headline": {"metric": "test BCE (64-D / 3-D code)",
                     "value": [runs["784-64-784"].results["test_bce"], runs["784-3-784"].results["test_bce"]],
                     "better": "lower"},
        "figures": [common.grid(ctx, name, nets), "latent3d.png", "loss.png"],
        "history": {k: common.history_table(r.history) for k, r in runs.items()},
        "train_seconds": round(sum(r.seconds for r in runs.values()), 1),
        "export": exports,
    }
