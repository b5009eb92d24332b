"""One seeded training loop for every recipe: Adam, shuffled mini-batches, a loss callable,
and per-epoch train / validation loss (the loss curves in the report)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.loop import Loop, Stateful, TorchGenerator, TorchRNG

LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Generator], torch.Tensor]
LOSSES: dict[str, Callable[..., torch.Tensor]] = {"bce": F.binary_cross_entropy, "mse": F.mse_loss}


def reconstruction(kind: str) -> LossFn:
    """Plain autoencoder objective: ``bce`` or ``mse`` between input and reconstruction."""
    fn = LOSSES[kind]
    return lambda model, x, gen: fn(model(x), x)


def add_noise(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise of std ``sigma`` on the [0, 1] scale, clipped back to [0, 1]."""
    return torch.clamp(x + sigma * torch.randn(x.shape, generator=gen), 0.0, 1.0)


def denoising(kind: str, sigma: float) -> LossFn:
    """Denoising objective: reconstruct the clean image from a noisy copy."""
    fn = LOSSES[kind]
    return lambda model, x, gen: fn(model(add_noise(x, sigma, gen)), x)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


@torch.no_grad()
def predict(module: torch.nn.Module, x: np.ndarray | torch.Tensor, *, batch: int = 1000) -> np.ndarray:
    module.eval()
    x = torch.as_tensor(x)
    return torch.cat([module(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy()


@torch.no_grad()
def mean_loss(model: torch.nn.Module, x: torch.Tensor, loss_fn: LossFn, *, seed: int, batch: int = 1000) -> float:
    """Loss over a whole split; noise (if any) from a fixed generator so epochs compare."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        total += float(loss_fn(model, chunk, gen)) * len(chunk)
    return total / len(x)


def fit(
    model: torch.nn.Module,
    train_x: np.ndarray,
    *,
    loss_fn: LossFn,
    epochs: int,
    batch: int,
    seed: int,
    lr: float = 1e-3,
    val_x: np.ndarray | None = None,
    lr_decay: bool = False,
    checkpoint: Path | None = None,
) -> list[dict[str, float]]:
    """Train in place; return one record per epoch (train loss, validation loss and MSE).

    ``lr_decay`` anneals the learning rate to zero over the run (cosine), which lets a short
    schedule settle instead of ending on a noisy step. With ``checkpoint``, the state is saved
    after every epoch and a stopped run resumes from it (training.loop.Loop; each loop step is
    one epoch)."""
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(train_x)
    vx = torch.from_numpy(val_x) if val_x is not None else None
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    # torch's recursive CosineAnnealingLR, not training.loop.cosine_schedule: the shipped MNIST
    # models were trained with it, and the closed form differs in the last bits.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps)) if lr_decay else None
    history: list[dict[str, float]] = []
    state: dict[str, Stateful] = {"model": model, "opt": opt, "order": TorchGenerator(gen), "torch_rng": TorchRNG()}
    if sched is not None:
        state["sched"] = sched
    loop = Loop(steps=epochs, eval_every=1, state=state, checkpoint=checkpoint,
                extra=lambda: {"history": history, "seed": seed, "batch": batch, "lr": lr})
    saved = loop.resume(matching={"seed": seed, "batch": batch, "lr": lr})
    if saved is not None:
        history[:] = saved["history"]

    def epoch(number: int) -> None:
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            xb = x[order[i : i + batch]]
            loss = loss_fn(model, xb, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.item() * len(xb)
            seen += len(xb)
        record = {"epoch": number, "train_loss": total / seen, "seconds": time.perf_counter() - start}
        if vx is not None:
            record["val_loss"] = mean_loss(model, vx, loss_fn, seed=seed + 1)
            record["val_mse"] = mean_loss(model, vx, reconstruction("mse"), seed=seed + 1)
        history.append(record)

    loop.run(step=epoch, evaluate=lambda _: None, report=lambda _: None)
    model.eval()
    return history
