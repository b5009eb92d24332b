"""Train a denoiser from a JSON config with a fixed seed; log, checkpoint, resume.

    python -m training.denoise.train training/denoise/configs/denoise-color.json [--steps N] [--out runs/]

A config with ``init_from`` starts from the weights of another config's run (``<out>/<that
name>/best.pt``; train that one first) or, with ``--init FILE``, from a checkpoint or an exported
``.onnx`` (``training/denoise/warm_start.py``). Writes ``runs/<name>/``: ``log.csv`` (step, loss,
validation PSNR), ``loss.png``, ``checkpoint.pt`` (every epoch, resumed automatically) and
``best.pt``. Export with
``python -m training.denoise.export runs/<name>/best.pt``.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training import data
from training.denoise import noise, warm_start
from training.loop import Loop, NumpyRNG, Progress, TorchRNG, cosine_schedule, save_checkpoint, seed_all
from training.metrics import psnr
from training.nets import build
from training.paths import SHARED


@dataclass(frozen=True)
class DenoiserConfig:
    name: str
    network: str
    channels: int
    train_dirs: list[str]
    network_args: dict[str, Any] = field(default_factory=dict)
    holdout: int = 8  # images of the training folders kept aside for validation
    patch: int = 64
    batch: int = 32
    steps: int = 4000
    steps_per_epoch: int = 250
    lr: float = 1e-3
    sigma_max: float = 55.0  # on the 0-255 scale
    camera_fraction: float = 0.25
    # Training images are used at each of these scales (data.at_scales); validation at full size.
    scales: list[float] = field(default_factory=lambda: [1.0])
    val_sigma: float = 25.0
    seed: int = 0
    description: str = ""
    init_from: str = ""  # another config's name: start from its run's best.pt (training/denoise/warm_start.py)

    @staticmethod
    def load(path: str | Path) -> DenoiserConfig:
        return DenoiserConfig(**json.loads(Path(path).read_text()))


def resolve(folder: str) -> Path:
    """Config folders are relative to ``../shared/data`` unless absolute."""
    p = Path(folder)
    return p if p.is_absolute() else SHARED / p


def evaluate(model: torch.nn.Module, images: list[np.ndarray], sigma: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    scores = []
    multiple = int(getattr(model, "size_multiple", 1))
    model.eval()
    with torch.no_grad():
        for im in images:
            h, w = (s - s % multiple for s in im.shape[:2])
            clean = im[:h, :w].transpose(2, 0, 1)[None]
            noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * (sigma / 255)
            out = model(torch.from_numpy(noisy), torch.tensor([[sigma / 255]], dtype=torch.float32))
            scores.append(psnr(clean, np.clip(out.numpy(), 0, 1)))
    model.train()
    return float(np.mean(scores))


def plot_log(log_path: Path, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is a convenience; the CSV is the record
        return
    rows = list(csv.DictReader(log_path.open()))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(steps, [float(r["loss"]) for r in rows])
    ax[0].set(xlabel="step", ylabel="training loss (L1)", yscale="log")
    ax[1].plot(steps, [float(r["val_psnr"]) for r in rows])
    ax[1].set(xlabel="step", ylabel="validation PSNR (dB)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def split_images(cfg: DenoiserConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training images, held-out images) of a config: the split is seeded by the config, so
    fine-tuning (training/denoise/qat.py) validates on the same images as training did."""
    files = [p for d in cfg.train_dirs for p in data.list_images(resolve(d))]
    split = np.random.default_rng(cfg.seed).permutation(len(files))
    train = [data.load_image(files[i], cfg.channels) for i in split[cfg.holdout :]]
    return (data.at_scales(train, cfg.scales),
            [data.load_image(files[i], cfg.channels) for i in split[: cfg.holdout]])


def noisy_batch(sampler: data.PatchSampler, cfg: DenoiserConfig,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy, sigma, clean) tensors of one training batch, with the config's noise mix."""
    clean = sampler.batch(cfg.batch)
    noisy, sigma = noise.mixed(clean, rng, cfg.sigma_max / 255, cfg.camera_fraction)
    return torch.from_numpy(noisy), torch.from_numpy(sigma), torch.from_numpy(clean)


def initial_weights(cfg: DenoiserConfig, out_root: Path, init: Path | None) -> Path | None:
    """The file a run starts from: ``init`` if given, else the ``init_from`` config's best.pt."""
    if init is not None or not cfg.init_from:
        return init
    path = out_root / cfg.init_from / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{cfg.name} starts from the weights of {cfg.init_from}, and {path} does not exist: first run "
            f"python -m training.denoise.train training/denoise/configs/{cfg.init_from}.json --out {out_root}, "
            "or pass --init FILE (a .pt checkpoint or an exported .onnx)")
    return path


def train(cfg: DenoiserConfig, out_root: Path, threads: int = 2, init: Path | None = None) -> Path:
    torch.set_num_threads(threads)
    run = out_root / cfg.name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    train_images, val_images = split_images(cfg)

    rng = seed_all(cfg.seed)
    model = build(cfg.network, channels=cfg.channels, **cfg.network_args)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = cosine_schedule(opt, cfg.steps, warmup=max(1, cfg.steps // 50))
    started_from: dict[str, Any] | None = None
    loop = Loop(steps=cfg.steps, eval_every=cfg.steps_per_epoch, checkpoint=run / "checkpoint.pt",
                state={"model": model, "opt": opt, "sched": sched, "rng": NumpyRNG(rng), "torch_rng": TorchRNG()},
                extra=lambda: {"config": asdict(cfg), "init": started_from})
    resumed = loop.resume()  # exactly where the last run stopped
    if resumed is not None:
        started_from = resumed.get("init")
        print(f"resumed {cfg.name} at step {loop.step}", flush=True)
    else:
        start = initial_weights(cfg, out_root, init)
        if start is not None:
            started_from = warm_start.load_matching(model, start)
            print(f"{cfg.name}: {started_from['copied']} weights from {start}, "
                  f"random: {', '.join(started_from['kept_random']) or 'none'}", flush=True)
    sampler = data.PatchSampler(train_images, cfg.patch, rng)
    log_path = run / "log.csv"
    if loop.step == 0:
        log_path.write_text("step,loss,val_psnr,seconds\n")
    running: list[float] = []

    def step(_: int) -> None:
        noisy, sigma, clean = noisy_batch(sampler, cfg, rng)
        loss = torch.nn.functional.l1_loss(model(noisy, sigma), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())

    def report(p: Progress) -> None:
        assert p.score is not None
        with log_path.open("a") as f:
            f.write(f"{p.step},{np.mean(running):.6f},{p.score:.3f},{p.elapsed_s:.1f}\n")
        print(f"{cfg.name} step {p.step}/{cfg.steps} loss {np.mean(running):.5f} "
              f"val PSNR@{cfg.val_sigma:g} {p.score:.2f} dB  ETA {p.eta_min:.1f} min", flush=True)
        running.clear()
        if p.improved:
            save_checkpoint({"model": model.state_dict(), "config": asdict(cfg), "step": p.step,
                             "val_psnr": p.score, "init": started_from}, run / "best.pt")
        plot_log(log_path, run / "loss.png")

    loop.run(step=step, evaluate=lambda _: evaluate(model, val_images, cfg.val_sigma, cfg.seed), report=report)
    return run / "best.pt"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="JSON config (see training/denoise/configs/)")
    ap.add_argument("--out", default="runs", help="folder for run outputs (default: runs/)")
    ap.add_argument("--steps", type=int, help="override the number of steps (quick tries)")
    ap.add_argument("--train-dir", action="append", help="train on this folder of clean images instead")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", type=Path, help="start from these weights (.pt checkpoint or exported .onnx) "
                                              "instead of the config's init_from or random ones")
    args = ap.parse_args(argv)
    cfg = DenoiserConfig.load(args.config)
    overrides: dict[str, object] = {}
    if args.steps:
        overrides["steps"] = args.steps
    if args.train_dir:
        overrides["train_dirs"] = [str(Path(d).resolve()) for d in args.train_dir]
    if overrides:
        cfg = DenoiserConfig(**{**asdict(cfg), **overrides})
    try:
        best = train(cfg, Path(args.out), args.threads, init=args.init)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"training.denoise.train: {exc}") from None
    print(f"best checkpoint: {best}")


if __name__ == "__main__":
    main()
