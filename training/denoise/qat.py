"""Quantization-aware fine-tuning: teach a trained U-Net denoiser to tolerate the rounding that
``training.denoise.quantize`` will apply, so that more of its layers can run in 8 bits within the allowed
PSNR drop (docs/DENOISING.md has the trial that motivated it).

    python -m training.denoise.qat runs/denoise-gray-fast/best.pt --out runs/qat   # -> runs/qat/denoise-gray-fast/best.pt
    python -m training.denoise.export runs/qat/denoise-gray-fast/best.pt --out DIR
    python -m training.denoise.quantize DIR/denoise-gray-fast.onnx

What is simulated (fake quantization with straight-through gradients), matching what
``training.denoise.quantize`` asks onnxruntime for:

* weights of every convolution but the first: int8 per output channel, 7-bit range;
* activations after every ReLU, each transposed convolution, each skip join and the last
  convolution: uint8 per tensor, over a range that follows the batches' minimum and maximum
  (moving average), fixed once fine-tuning evaluates.

The first convolution, which sees the image and the noise level, stays float, as the quantizer
keeps it. Transposed-convolution weights stay float (onnxruntime runs them in float). The
fine-tuning uses the checkpoint's own config (data, noise, patch and batch size), Adam with a
cosine-decayed learning rate, and a fixed seed. The checkpoint written holds plain float weights
(the simulation is removed) and the same config, so it exports unchanged; its ``qat`` entry
records the fine-tuning, and the exporter copies it into the model's provenance.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from training import data
from training.denoise.train import DenoiserConfig, evaluate, noisy_batch, split_images
from training.loop import Loop, NumpyRNG, Progress, TorchRNG, cosine_schedule, save_checkpoint, seed_all
from training.nets import build
from training.nets.unet_dae import UNetDAE

WEIGHT_RANGE = (-64, 63)  # int8 weights in the 7-bit range quantize uses (reduce_range)
MOMENTUM = 0.01  # weight of each new batch in the activation ranges


class WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric rounding of a conv weight, applied as a parametrization so
    the optimiser keeps updating the float weight underneath."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        scale = (weight.detach().abs().amax(dim=(1, 2, 3)).clamp_min(1e-8) / (WEIGHT_RANGE[1] + 0.5)).float()
        zero = torch.zeros(scale.shape, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, *WEIGHT_RANGE)


class ActivationFakeQuant:
    """uint8 rounding of one activation tensor over a range tracked while training."""

    def __init__(self) -> None:
        self.low: float | None = None
        self.high = 0.0
        self.enabled = False

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        if training or self.low is None:
            low, high = min(float(x.detach().min()), 0.0), float(x.detach().max())
            if self.low is None:
                self.low, self.high = low, high
            else:
                self.low += MOMENTUM * (low - self.low)
                self.high += MOMENTUM * (high - self.high)
        if not self.enabled:
            return x
        scale = max(self.high - self.low, 1e-6) / 255
        zero = min(max(round(-self.low / scale), 0), 255)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


class Simulation:
    """Fake quantization attached to a ``UNetDAE`` in place; ``remove`` gives back the plain network."""

    def __init__(self, net: nn.Module) -> None:
        if not isinstance(net, UNetDAE):
            raise ValueError(f"quantization-aware fine-tuning needs a unet_dae network, got {type(net).__name__}")
        self.net = net
        self.convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)][1:]  # the first stays float
        for conv in self.convs:
            parametrize.register_parametrization(conv, "weight", WeightFakeQuant())
        self.activations: list[ActivationFakeQuant] = []
        self.hooks = []
        watched = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.ConvTranspose2d))] + [net.head]
        for module in watched:
            fq = self._new()
            self.hooks.append(module.register_forward_hook(lambda mod, args, out, fq=fq: fq(out, mod.training)))
        joins = {"up1": self._new(), "up2": self._new()}
        plain_join = net.join

        def join(up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
            # Which join by its width (the two scales share one range only if their widths are equal).
            key = "up1" if up.shape[1] == net.up1.out_channels else "up2"
            return joins[key](plain_join(up, skip), net.training)

        net.join = join  # type: ignore[method-assign]  # an instance attribute: the class's join is untouched

    def _new(self) -> ActivationFakeQuant:
        fq = ActivationFakeQuant()
        self.activations.append(fq)
        return fq

    def enable(self, on: bool = True) -> None:
        for fq in self.activations:
            fq.enabled = on

    def remove(self) -> UNetDAE:
        for conv in self.convs:
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)
        for hook in self.hooks:
            hook.remove()
        del self.net.join
        return self.net


class Ranges:
    """The simulation's activation ranges as checkpoint state (they are not parameters)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def state_dict(self) -> list[tuple[float | None, float]]:
        return [(fq.low, fq.high) for fq in self.sim.activations]

    def load_state_dict(self, state: list[tuple[float | None, float]]) -> None:
        for fq, (low, high) in zip(self.sim.activations, state, strict=True):
            fq.low, fq.high = low, high


def fine_tune(checkpoint: Path, out_root: Path, *, steps: int = 3000, lr: float = 1e-4, seed: int = 0,
              threads: int = 2, command: str = "") -> Path:
    """Fine-tune ``checkpoint`` with 8-bit rounding simulated; writes ``out_root/<name>/best.pt``
    and resumes from ``checkpoint.pt`` there if a run was stopped."""
    torch.set_num_threads(threads)
    ckpt = torch.load(checkpoint, weights_only=False)
    cfg = DenoiserConfig(**ckpt["config"])
    net = build(cfg.network, channels=cfg.channels, **cfg.network_args)
    net.load_state_dict(ckpt["model"])
    rng = seed_all(seed, data_seed=seed)
    train_images, val_images = split_images(cfg)  # training's own hold-out, so the figures compare
    sampler = data.PatchSampler(train_images, cfg.patch, rng)
    run = out_root / cfg.name
    run.mkdir(parents=True, exist_ok=True)

    float_before = evaluate(net, val_images, cfg.val_sigma, cfg.seed)
    sim = Simulation(net)
    net.train()
    with torch.no_grad():  # first ranges from a few batches before any rounding is simulated
        for _ in range(8):
            noisy, sigma, _ = noisy_batch(sampler, cfg, rng)
            net(noisy, sigma)
    sim.enable()
    simulated_before = evaluate(net, val_images, cfg.val_sigma, cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = cosine_schedule(opt, steps)
    loop = Loop(steps=steps, eval_every=500, checkpoint=run / "checkpoint.pt",
                state={"model": net, "ranges": Ranges(sim), "opt": opt, "sched": sched, "rng": NumpyRNG(rng),
                       "torch_rng": TorchRNG()},
                extra=lambda: {"source": str(checkpoint), "steps": steps, "lr": lr, "seed": seed},
                log=lambda line: print(f"qat: {line}", file=sys.stderr, flush=True))
    if loop.resume(matching={"source": str(checkpoint), "steps": steps, "lr": lr, "seed": seed}) is not None:
        print(f"qat: resumed at step {loop.step}", file=sys.stderr, flush=True)
    last_loss = [float("nan")]

    def step(_: int) -> None:
        noisy, sigma, clean = noisy_batch(sampler, cfg, rng)
        loss = nn.functional.l1_loss(net(noisy, sigma), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        last_loss[0] = loss.item()

    def report(p: Progress) -> None:
        print(f"qat step {p.step}/{steps} loss {last_loss[0]:.5f} simulated 8-bit PSNR@{cfg.val_sigma:g} "
              f"{p.score:.2f} dB ETA {p.eta_min:.1f} min", file=sys.stderr, flush=True)

    loop.run(step=step, evaluate=lambda _: evaluate(net, val_images, cfg.val_sigma, cfg.seed), report=report)
    simulated_after = evaluate(net, val_images, cfg.val_sigma, cfg.seed)
    net = sim.remove()
    float_after = evaluate(net, val_images, cfg.val_sigma, cfg.seed)
    record = {"command": command or f"python -m training.denoise.qat {checkpoint}", "steps": steps, "lr": lr, "seed": seed,
              "holdout_psnr_db": {"float_before": round(float_before, 3), "simulated_before": round(simulated_before, 3),
                                  "simulated_after": round(simulated_after, 3), "float_after": round(float_after, 3)}}
    best = run / "best.pt"
    # The hold-out PSNR the exporter reports is the fine-tuned float network's.
    save_checkpoint({"model": net.state_dict(), "config": ckpt["config"], "step": ckpt.get("step", 0),
                     "val_psnr": float_after, "qat": record}, best)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a trained unet_dae checkpoint (best.pt)")
    ap.add_argument("--out", type=Path, default=Path("runs/qat"), help="output folder (default: runs/qat)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not args.checkpoint.is_file():
        sys.exit(f"error: no checkpoint at {args.checkpoint}")
    command = "python -m training.denoise.qat " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        best = fine_tune(args.checkpoint, args.out, steps=args.steps, lr=args.lr, seed=args.seed,
                         threads=args.threads, command=command)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    psnrs = torch.load(best, weights_only=False)["qat"]["holdout_psnr_db"]
    print(f"wrote {best}: hold-out PSNR float {psnrs['float_before']:.2f} -> {psnrs['float_after']:.2f} dB, "
          f"simulated 8-bit {psnrs['simulated_before']:.2f} -> {psnrs['simulated_after']:.2f} dB")


if __name__ == "__main__":
    main()
