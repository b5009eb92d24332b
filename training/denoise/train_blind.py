"""Train a blind denoiser for real camera noise: a noise-level estimator (training/nets/
noise_estimator.py) learnt end to end through a shipped denoiser, which then takes a per-pixel,
per-channel noise map and may be fine-tuned with it.

    python -m training.denoise.train_blind training/denoise/configs/blind-color-fast.json [--out runs/]

Why end to end: what a denoiser should be told is the level at which it cleans a photo best, not
the standard deviation of white noise (on real photos the two differ by 2x, issue 45); so the
estimate is trained by the denoiser's output error, as in CBDNet (Guo et al. 2019).

Each batch mixes three noises on clean training patches:
* camera noise from training/denoise/camera_pipeline.py (target: the camera's noise-free
  rendering): the denoiser is told the estimator's map, and both learn from its output error;
* today's Poisson-Gaussian + JPEG noise (training/denoise/noise.py): the same way;
* white Gaussian noise of known sigma: the denoiser is told the true sigma (so it stays calibrated
  for an explicit ``sigma=`` and the synthetic benchmarks), and the estimator learns the true
  sigma there by CBDNet's asymmetric loss (under-estimates cost more: they leave noise behind).
A small total-variation term keeps the map smooth. For the first ``freeze_steps`` the denoiser
is frozen (the estimator learns to drive it as it is); then both train, the denoiser at a lower
rate. Writes runs/<name>/: log.csv, estimator.pt / denoiser.pt (last) and best.pt (highest
real-pair PSNR, see real_eval.py: evaluation pairs choose the step, they are never trained on).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from training import data
from training.denoise import camera_pipeline, noise, real_eval, warm_start
from training.denoise.train import evaluate, resolve
from training.loop import Loop, NumpyRNG, Progress, Stateful, TorchRNG, cosine_factor, save_checkpoint, seed_all, set_lr
from training.nets.noise_estimator import NoiseEstimator
from training.nets.unet_dae import UNetDAE

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class BlindConfig:
    name: str
    denoiser_init: str  # exported .onnx or .pt of the denoiser to start from (repository-relative)
    denoiser_args: dict[str, object]
    train_dirs: list[str]
    channels: int = 3
    noise_channels: int = 3
    estimator_args: dict[str, object] = field(default_factory=dict)
    scales: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25])
    holdout: int = 8
    patch: int = 64
    batch: int = 16
    steps: int = 2000
    eval_every: int = 200
    freeze_steps: int = 1000  # denoiser frozen for these steps
    lr: float = 1e-3  # estimator
    denoiser_lr: float = 5e-5  # after freeze_steps; 0 keeps it frozen
    camera_fraction: float = 0.5  # camera pipeline
    poisson_fraction: float = 0.125  # training/denoise/noise.py camera noise; the rest is Gaussian
    sigma_max: float = 55.0
    tv_weight: float = 0.05
    camera_weight: float = 1.0  # weight of the estimated samples' output error against the Gaussian ones'
    # Output error of the estimated samples: "l1", or "l2", whose optimum is PSNR's: L1 weighs the
    # many small residuals of noise left behind more, so it asks for more smoothing.
    loss: str = "l1"
    # Share of the camera and Gaussian samples made gray (noise added to the gray image, then
    # repeated to BGR, as the runtime feeds a gray photo): gray models borrow this estimate.
    grey_fraction: float = 0.0
    # Options of camera_pipeline.sample_params, e.g. {"shot_range": [2e-5, 0.012]}.
    camera_options: dict[str, object] = field(default_factory=dict)
    asym_weight: float = 1.0
    asym_alpha: float = 0.3
    seed: int = 0
    real_crop: int = 256
    description: str = ""

    @staticmethod
    def load(path: str | Path) -> BlindConfig:
        cfg = BlindConfig(**json.loads(Path(path).read_text()))
        if cfg.loss not in ("l1", "l2"):
            raise ValueError(f"{path}: loss must be 'l1' or 'l2', got {cfg.loss!r}")
        return cfg


def map_channels_from_scalar(net: UNetDAE, source: dict[str, torch.Tensor]) -> bool:
    """Give a per-channel-map network the first-layer weights of a scalar-map one: the image taps
    as they were, the one noise-map tap shared equally by the map's channels, so a uniform map
    gives the old network's output exactly."""
    w = source.get("enc1.0.weight")
    mine = net.enc1[0].weight
    k = net.noise_channels
    if w is None or w.shape[1] + k - 1 != mine.shape[1] or k == 1:
        return False
    with torch.no_grad():
        folded = w.shape[1] - 1
        mine[:, :folded] = w[:, :folded]
        mine[:, folded:] = w[:, folded:] / k
        net.enc1[0].bias.copy_(source["enc1.0.bias"])
    return True


def build_denoiser(cfg: BlindConfig) -> UNetDAE:
    net = UNetDAE(channels=cfg.channels, noise_channels=cfg.noise_channels, **cfg.denoiser_args)  # type: ignore[arg-type]
    path = ROOT / cfg.denoiser_init
    source = warm_start.weights_of(path)
    state = net.state_dict()
    state.update({k: v for k, v in source.items() if k in state and state[k].shape == v.shape})
    net.load_state_dict(state)
    map_channels_from_scalar(net, source)
    missing = [k for k in state if k not in source and not k.startswith("enc1.0.")]
    if missing:
        raise ValueError(f"{path} does not fit denoiser_args {cfg.denoiser_args}: no weights for {missing}")
    return net


def batch(sampler: data.PatchSampler, cfg: BlindConfig, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    clean = sampler.batch(cfg.batch)
    k_cam = int(round(cfg.batch * cfg.camera_fraction))
    k_poi = int(round(cfg.batch * cfg.poisson_fraction))
    grey_cam = int(round(k_cam * cfg.grey_fraction))
    grey_g = int(round((cfg.batch - k_cam - k_poi) * cfg.grey_fraction))
    if grey_cam or grey_g:  # the first of each part become gray photos
        clean = clean.copy()
        for start, count in ((0, grey_cam), (k_cam + k_poi, grey_g)):
            part = clean[start : start + count]
            clean[start : start + count] = np.repeat(np.tensordot(camera_pipeline.GREY_WEIGHTS, part, axes=([0], [1]))
                                                     [:, None], 3, axis=1)
    cam_noisy, cam_target, _ = camera_pipeline.camera_batch(clean[grey_cam:k_cam], rng, **cfg.camera_options)
    if grey_cam:
        grey_noisy, grey_target, _ = camera_pipeline.camera_batch(clean[:grey_cam, :1], rng, **cfg.camera_options)
        cam_noisy = np.concatenate([np.repeat(grey_noisy, 3, axis=1), cam_noisy])
        cam_target = np.concatenate([np.repeat(grey_target, 3, axis=1), cam_target])
    poi_noisy, _ = noise.camera(clean[k_cam : k_cam + k_poi], rng, cfg.sigma_max / 255)
    g_start = k_cam + k_poi
    g_noisy, g_sigma = noise.gaussian(clean[g_start + grey_g :], rng, cfg.sigma_max / 255)
    if grey_g:
        gg_noisy, gg_sigma = noise.gaussian(clean[g_start : g_start + grey_g, :1], rng, cfg.sigma_max / 255)
        g_noisy = np.concatenate([np.repeat(gg_noisy, 3, axis=1), g_noisy])
        g_sigma = np.concatenate([gg_sigma, g_sigma])
    return {
        "estimated": torch.from_numpy(np.concatenate([cam_noisy, poi_noisy])),
        "estimated_target": torch.from_numpy(np.concatenate([cam_target, clean[k_cam : k_cam + k_poi]])),
        "gauss": torch.from_numpy(np.ascontiguousarray(g_noisy)),
        "gauss_sigma": torch.from_numpy(g_sigma),
        "gauss_target": torch.from_numpy(clean[g_start:]),
    }


def losses(est: NoiseEstimator, den: UNetDAE, b: dict[str, torch.Tensor],
           cfg: BlindConfig) -> tuple[torch.Tensor, dict[str, float]]:
    x = b["estimated"]
    coarse = est.coarse(x)
    level = F.interpolate(coarse, scale_factor=est.fold, mode="bilinear", align_corners=False)
    out = den(x, level)
    if cfg.loss == "l2":  # scaled to the size of L1 at typical errors (~0.02) so the weights keep their sense
        rec = F.mse_loss(out, b["estimated_target"]) / 0.02
    else:
        rec = F.l1_loss(out, b["estimated_target"])
    g = b["gauss"]
    g_sigma = b["gauss_sigma"]
    rec_g = F.l1_loss(den(g, g_sigma), b["gauss_target"])
    g_coarse = est.coarse(g)
    err = g_coarse - g_sigma[:, :, None, None]
    asym = (torch.abs(cfg.asym_alpha - (err < 0).float()) * err.abs()).mean()
    both = torch.cat([coarse, g_coarse])
    tv = (both[:, :, 1:] - both[:, :, :-1]).abs().mean() + (both[:, :, :, 1:] - both[:, :, :, :-1]).abs().mean()
    n_e, n_g = x.shape[0], g.shape[0]
    total = (cfg.camera_weight * n_e * rec + n_g * rec_g) / (n_e + n_g) + cfg.asym_weight * asym + cfg.tv_weight * tv
    return total, {"rec": rec.item(), "rec_gauss": rec_g.item(), "asym": asym.item(), "tv": tv.item()}


PROBE_SHOTS = (3e-4, 3e-3, 1e-2)  # camera noise from good light to low light


def probe_batches(val_images: list[np.ndarray], seed: int) -> list[tuple[torch.Tensor, float]]:
    """Camera-noised crops of the held-out images at three fixed levels, with their RMS noise
    (0-255): does the estimate follow the camera's noise level, not only white noise's?"""
    rng = np.random.default_rng(seed)
    crops = np.stack([im[:64, :64].transpose(2, 0, 1) for im in val_images if min(im.shape[:2]) >= 64])
    out = []
    for shot in PROBE_SHOTS:
        noisy, _, level = camera_pipeline.camera_batch(crops, rng, shot=shot)
        out.append((torch.from_numpy(noisy), float(level.mean()) * 255))
    return out


@torch.no_grad()
def probe_levels(est: NoiseEstimator, probes: list[tuple[torch.Tensor, float]]) -> list[float]:
    est.eval()
    levels = [float(est(x).mean()) * 255 for x, _ in probes]
    est.train()
    return levels


def train(cfg: BlindConfig, out_root: Path, threads: int = 1) -> Path:
    torch.set_num_threads(threads)
    run = out_root / cfg.name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    files = [p for d in cfg.train_dirs for p in data.list_images(resolve(d))]
    split = np.random.default_rng(cfg.seed).permutation(len(files))  # the split training.denoise.train uses
    train_images = data.at_scales([data.load_image(files[i], cfg.channels) for i in split[cfg.holdout :]], cfg.scales)
    val_images = [data.load_image(files[i], cfg.channels) for i in split[: cfg.holdout]]
    pairs = real_eval.load_pairs(crop=cfg.real_crop) if real_eval.POLYU.is_dir() and cfg.channels == 3 else []

    rng = seed_all(cfg.seed)
    den = build_denoiser(cfg)
    est = NoiseEstimator(channels=cfg.channels, **cfg.estimator_args)  # type: ignore[arg-type]
    opt = torch.optim.Adam(est.parameters(), lr=cfg.lr)
    den_opt = torch.optim.Adam(den.parameters(), lr=cfg.denoiser_lr) if cfg.denoiser_lr > 0 else None
    for p in den.parameters():
        p.requires_grad_(False)
    state: dict[str, Stateful] = {"estimator": est, "denoiser": den, "opt": opt, "rng": NumpyRNG(rng),
                                  "torch_rng": TorchRNG()}
    if den_opt is not None:
        state["den_opt"] = den_opt
    # last.pt / best.pt are what export_blind reads; checkpoint.pt adds what resuming needs.
    ckpt_path = run / "checkpoint.pt"
    loop = Loop(steps=cfg.steps, eval_every=cfg.eval_every, checkpoint=ckpt_path, state=state,
                extra=lambda: {"config": asdict(cfg)}, log=lambda line: print(line, flush=True))
    if loop.resume(matching={"config": asdict(cfg)}) is not None:
        print(f"resumed {cfg.name} at step {loop.step}", flush=True)
    if den_opt is not None and loop.step > cfg.freeze_steps:
        for p in den.parameters():
            p.requires_grad_(True)
    sampler = data.PatchSampler(train_images, cfg.patch, rng)
    log_path = run / "log.csv"
    probes = probe_batches(val_images, cfg.seed) if cfg.channels == 3 else []
    if loop.step == 0:
        log_path.write_text("step,loss,rec,rec_gauss,asym,tv,real_psnr,real_level,holdout_psnr25,"
                            + "".join(f"est_camera_rms{rms:.1f}," for _, rms in probes) + "seconds\n")
        real, level = real_eval.blind_psnr(est, den, pairs) if pairs else (float("nan"), float("nan"))
        print(f"{cfg.name} start: real {real:.2f} dB (level {level:.1f}), holdout@25 "
              f"{evaluate(den, val_images, 25.0, cfg.seed):.2f} dB", flush=True)
    parts: list[list[float]] = []
    measured: dict[str, object] = {}

    def step(n: int) -> None:
        if n == cfg.freeze_steps + 1 and den_opt is not None:
            for p in den.parameters():
                p.requires_grad_(True)
        # Cosine decay of both rates over the run.
        scale = cosine_factor(n, cfg.steps)
        set_lr(opt, cfg.lr * scale)
        total, part = losses(est, den, batch(sampler, cfg, rng), cfg)
        opt.zero_grad(set_to_none=True)
        if den_opt is not None:
            den_opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if den_opt is not None and n > cfg.freeze_steps:
            set_lr(den_opt, cfg.denoiser_lr * scale)
            den_opt.step()
        parts.append([total.item(), *part.values()])

    def validate(_: int) -> float | None:
        real, level = real_eval.blind_psnr(est, den, pairs) if pairs else (float("nan"), float("nan"))
        measured.update(real=real, level=level, hold=evaluate(den, val_images, 25.0, cfg.seed),
                        probed=probe_levels(est, probes))
        return real if pairs else None  # no pairs: the latest evaluation counts as the best

    def report(p: Progress) -> None:
        real, level, hold, probed = (measured[k] for k in ("real", "level", "hold", "probed"))
        assert isinstance(probed, list)
        m = np.mean(parts, axis=0)
        with log_path.open("a") as f:
            f.write(",".join(f"{v:.6f}" for v in [p.step, *m]) + f",{real:.3f},{level:.2f},{hold:.3f},"
                    + "".join(f"{v:.2f}," for v in probed) + f"{p.elapsed_s:.0f}\n")
        print(f"{cfg.name} step {p.step}/{cfg.steps} loss {m[0]:.5f} real {real:.2f} dB (level {level:.1f}) "
              f"holdout@25 {hold:.2f} dB, camera noise rms {' / '.join(f'{r:.1f}' for _, r in probes)} "
              f"read as {' / '.join(f'{v:.1f}' for v in probed)}  {p.elapsed_s:.0f}s", flush=True)
        parts.clear()
        weights = {"estimator": est.state_dict(), "denoiser": den.state_dict(), "config": asdict(cfg),
                   "step": p.step, "real_psnr": real, "holdout_psnr25": hold}
        save_checkpoint(weights, run / "last.pt")
        if p.improved:
            save_checkpoint(weights, run / "best.pt")

    loop.run(step=step, evaluate=validate, report=report)
    return run / "best.pt"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--out", default="runs")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-dir", action="append", help="train on this folder of clean images instead")
    args = ap.parse_args(argv)
    try:
        cfg = BlindConfig.load(args.config)
    except (OSError, TypeError, ValueError) as exc:
        raise SystemExit(f"train_blind: {args.config}: {exc}") from None
    if args.steps:
        cfg = BlindConfig(**{**asdict(cfg), "steps": args.steps})
    if args.train_dir:
        cfg = BlindConfig(**{**asdict(cfg), "train_dirs": [str(Path(d).resolve()) for d in args.train_dir]})
    try:
        best = train(cfg, Path(args.out), args.threads)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"train_blind: {exc}") from None
    print(f"best checkpoint: {best}")


if __name__ == "__main__":
    main()
