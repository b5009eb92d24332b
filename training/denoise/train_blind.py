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
from typing import Any, cast

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
LOG_FLOOR = 1.0 / 255  # the log direct term's offset: levels well under 1 (0-255) count as 0


@dataclass(frozen=True)
class BlindConfig:
    name: str
    denoiser_init: str  # exported .onnx or .pt of the denoiser to start from (repository-relative)
    denoiser_args: dict[str, Any]
    train_dirs: list[str]
    channels: int = 3
    noise_channels: int = 3
    estimator_args: dict[str, Any] = field(default_factory=dict)
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
    camera_options: dict[str, Any] = field(default_factory=dict)
    asym_weight: float = 1.0
    asym_alpha: float = 0.3
    # Issue 52 (calibration over the whole range): shares of the batch that are clean patches and
    # JPEG-only patches (no added noise); for both the target is the input itself (blocking is
    # not noise to remove) and the true level 0.
    clean_fraction: float = 0.0
    jpeg_fraction: float = 0.0
    jpeg_quality: list[int] = field(default_factory=lambda: [60, 95])
    # Gaussian samples through the denoiser told the *estimate* (end to end, as the real path runs)
    # instead of the true sigma; the asymmetric term still pulls the estimate to the true sigma.
    gauss_estimated: bool = False
    # The clean and JPEG-only samples through the (gated) denoiser too; else only the direct term
    # pulls their estimate to 0 (half the cost of a step: the denoiser's backward pass dominates).
    passthrough_estimated: bool = False
    # The runtime's low-level gate (edge_ae/denoise/gate.py): output = input + min(level / gate, 1)
    # * (denoised - input); 0: none. Trained through, so the estimate learns where it applies.
    gate_level: float = 0.0
    # Feed the denoiser each patch's mean level instead of the map (a scalar-sigma model, as the
    # runtime feeds the gray models).
    feed_mean: bool = False
    # The direct term on the level itself ("linear") or on log(level + 1/255) ("log"): near 0 the
    # softplus output's gradient vanishes (at a level of 9/255 it passes 3 % of the error back), so
    # a linear term cannot pull the estimate of a clean photo down to 0; a log term can, and weighs
    # errors by their ratio at every level (dB-like).
    direct_loss: str = "linear"
    # Start the estimator from these weights (an exported noise-level .onnx or a train_blind .pt).
    estimator_init: str = ""
    seed: int = 0
    real_crop: int = 256
    description: str = ""

    @staticmethod
    def load(path: str | Path) -> BlindConfig:
        cfg = BlindConfig(**json.loads(Path(path).read_text()))
        if cfg.direct_loss not in ("linear", "log"):
            raise ValueError(f"{path}: direct_loss must be 'linear' or 'log', got {cfg.direct_loss!r}")
        if cfg.loss not in ("l1", "l2"):
            raise ValueError(f"{path}: loss must be 'l1' or 'l2', got {cfg.loss!r}")
        return cfg


def map_channels_from_scalar(net: UNetDAE, source: dict[str, torch.Tensor]) -> bool:
    """Give a per-channel-map network the first-layer weights of a scalar-map one: the image taps
    as they were, the one noise-map tap shared equally by the map's channels, so a uniform map
    gives the old network's output exactly."""
    w = source.get("enc1.0.weight")
    first = net.enc1[0]
    assert isinstance(first, torch.nn.Conv2d) and first.bias is not None
    mine = first.weight
    k = net.noise_channels
    if w is None or w.shape[1] + k - 1 != mine.shape[1] or k == 1:
        return False
    with torch.no_grad():
        folded = w.shape[1] - 1
        mine[:, :folded] = w[:, :folded]
        mine[:, folded:] = w[:, folded:] / k
        first.bias.copy_(source["enc1.0.bias"])
    return True


def build_denoiser(cfg: BlindConfig) -> UNetDAE:
    net = UNetDAE(channels=cfg.channels, noise_channels=cfg.noise_channels, **cfg.denoiser_args)
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


def to_gray(part: np.ndarray, channels: int) -> np.ndarray:
    """BGR patches made gray photos, repeated to ``channels`` (as the runtime feeds a gray photo)."""
    return np.repeat(np.tensordot(camera_pipeline.GREY_WEIGHTS, part, axes=([0], [1]))[:, None], channels, axis=1)


def passthrough_batch(clean: np.ndarray, cfg: BlindConfig, rng: np.random.Generator) -> np.ndarray:
    """Clean patches, the last ``jpeg_fraction`` share of the whole batch JPEG-compressed (only)."""
    k_jpeg = int(round(cfg.batch * cfg.jpeg_fraction))
    out = clean.copy()
    for i in range(len(out) - k_jpeg, len(out)):
        out[i] = noise._jpeg(out[i], int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return out


def batch(sampler: data.PatchSampler, cfg: BlindConfig, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    k_pass = int(round(cfg.batch * cfg.clean_fraction)) + int(round(cfg.batch * cfg.jpeg_fraction))
    clean = sampler.batch(cfg.batch)
    passthrough = passthrough_batch(clean[cfg.batch - k_pass:], cfg, rng)
    clean = clean[: cfg.batch - k_pass]
    if cfg.grey_fraction and cfg.channels == 3:  # some photos are gray, clean ones too
        n_grey = int(round(len(passthrough) * cfg.grey_fraction))
        passthrough[:n_grey] = to_gray(passthrough[:n_grey], 3)
    k_cam = int(round(cfg.batch * cfg.camera_fraction))
    k_poi = int(round(cfg.batch * cfg.poisson_fraction))
    grey = cfg.grey_fraction if cfg.channels == 3 else 0.0  # a gray estimator sees gray photos only
    grey_cam = int(round(k_cam * grey))
    grey_g = int(round((len(clean) - k_cam - k_poi) * grey))
    if grey_cam or grey_g:  # the first of each part become gray photos
        clean = clean.copy()
        for start, count in ((0, grey_cam), (k_cam + k_poi, grey_g)):
            clean[start : start + count] = to_gray(clean[start : start + count], 3)
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
        "passthrough": torch.from_numpy(np.ascontiguousarray(passthrough)),
    }


def gated(den: UNetDAE, x: torch.Tensor, level: torch.Tensor, cfg: BlindConfig) -> torch.Tensor:
    """The denoiser's output as the runtime makes it: told ``level`` (a map, or its mean for a
    scalar model), then blended with the input where the level is under ``gate_level``."""
    told = level.mean(dim=(1, 2, 3))[:, None] if cfg.feed_mean else level
    out = den(x, told)
    if cfg.gate_level <= 0:
        return out
    weight = torch.clamp(level.mean(dim=1, keepdim=True) * (255.0 / cfg.gate_level), max=1.0)
    return x + weight * (out - x)


def losses(est: NoiseEstimator, den: UNetDAE, b: dict[str, torch.Tensor],
           cfg: BlindConfig) -> tuple[torch.Tensor, dict[str, float]]:
    def estimate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse = est.coarse(x)
        return coarse, F.interpolate(coarse, scale_factor=est.fold, mode="bilinear", align_corners=False)

    def error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if cfg.loss == "l2":  # scaled to the size of L1 at typical errors (~0.02) so the weights keep their sense
            return F.mse_loss(out, target) / 0.02
        return F.l1_loss(out, target)

    def asymmetric(coarse: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        true = true[:, :, None, None]
        if cfg.direct_loss == "log":
            err = torch.log(coarse + LOG_FLOOR) - torch.log(true + LOG_FLOOR)
        else:
            err = coarse - true
        return (torch.abs(cfg.asym_alpha - (err < 0).float()) * err.abs()).mean()

    x = b["estimated"]
    coarse, level = estimate(x)
    rec = error(gated(den, x, level, cfg), b["estimated_target"])
    g = b["gauss"]
    g_sigma = b["gauss_sigma"]
    g_coarse, g_level = estimate(g)
    if cfg.gauss_estimated:
        rec_g = error(gated(den, g, g_level, cfg), b["gauss_target"])
    elif cfg.denoiser_lr > 0:  # the denoiser learns from white noise told its true sigma
        rec_g = F.l1_loss(den(g, g_sigma), b["gauss_target"])
    else:  # a frozen denoiser told the true sigma gives the estimator no gradient: skip the cost
        rec_g = torch.zeros(())
    direct = [(g_coarse, g_sigma)]
    coarses = [coarse, g_coarse]
    rec_p = torch.zeros(())
    p = b["passthrough"]
    if len(p):  # clean and JPEG-only: the output should be the input, the level 0
        p_coarse, p_level = estimate(p)
        if cfg.passthrough_estimated:
            rec_p = error(gated(den, p, p_level, cfg), p)
        direct.append((p_coarse, torch.zeros(len(p), 1)))
        coarses.append(p_coarse)
    asym = cast(torch.Tensor, sum(asymmetric(c, t) * len(c) for c, t in direct) / sum(len(c) for c, _ in direct))
    both = torch.cat(coarses)
    tv = (both[:, :, 1:] - both[:, :, :-1]).abs().mean() + (both[:, :, :, 1:] - both[:, :, :, :-1]).abs().mean()
    n_e, n_g, n_p = x.shape[0], g.shape[0], p.shape[0]
    total = ((cfg.camera_weight * n_e * rec + n_g * rec_g + n_p * rec_p) / (n_e + n_g + n_p)
             + cfg.asym_weight * asym + cfg.tv_weight * tv)
    return total, {"rec": rec.item(), "rec_gauss": rec_g.item(), "rec_pass": rec_p.item(), "asym": asym.item(),
                   "tv": tv.item()}


PROBE_SHOTS = (3e-4, 3e-3, 1e-2)  # camera noise from good light to low light


def probe_batches(val_images: list[np.ndarray], seed: int) -> list[tuple[str, torch.Tensor, float]]:
    """Held-out crops at fixed levels, each with its label and true RMS noise (0-255): clean,
    white Gaussian 5 and 25, and camera noise at three shot levels. Does the estimate read clean
    as 0, white noise as its sigma, and follow the camera's noise level?"""
    rng = np.random.default_rng(seed)
    crops = np.stack([im[:64, :64].transpose(2, 0, 1) for im in val_images if min(im.shape[:2]) >= 64])
    out = [("clean", torch.from_numpy(crops), 0.0)]
    for sigma in (5.0, 25.0):
        out.append((f"gauss{sigma:g}", torch.from_numpy(crops + rng.standard_normal(crops.shape, dtype=np.float32)
                                                        * np.float32(sigma / 255)), sigma))
    for shot in PROBE_SHOTS:
        noisy, _, level = camera_pipeline.camera_batch(crops, rng, shot=shot)
        rms = float(level.mean()) * 255
        out.append((f"camera_rms{rms:.1f}", torch.from_numpy(noisy), rms))
    return out


@torch.no_grad()
def probe_levels(est: NoiseEstimator, probes: list[tuple[str, torch.Tensor, float]]) -> list[float]:
    est.eval()
    levels = [float(est(x).mean()) * 255 for _, x, _ in probes]
    est.train()
    return levels


class Gated(torch.nn.Module):
    """The denoiser as the runtime calls it (``gated``), for the real-pair check."""

    def __init__(self, den: UNetDAE, cfg: BlindConfig) -> None:
        super().__init__()
        self.den, self.cfg = den, cfg

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return gated(self.den, x, level, self.cfg)


def load_estimator(est: NoiseEstimator, path: Path) -> None:
    """Start ``est`` from an exported noise-level model (its initializers are named as the
    network's parameters) or a train_blind checkpoint."""
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(path)).graph.initializer}
    else:
        weights = torch.load(path, weights_only=False, map_location="cpu")["estimator"]
    state = est.state_dict()
    if weights["body.0.weight"].shape != state["body.0.weight"].shape:
        weights = color_to_gray(weights, est.fold)
    est.load_state_dict({k: weights[k] for k in state})


def build_estimator(cfg: BlindConfig) -> NoiseEstimator:
    est = NoiseEstimator(channels=cfg.channels, **cfg.estimator_args)
    if cfg.estimator_init:
        load_estimator(est, ROOT / cfg.estimator_init)
    return est


def color_to_gray(weights: dict[str, torch.Tensor], fold: int) -> dict[str, torch.Tensor]:
    """A color estimator's weights as a gray one's that reads a gray image exactly as the color
    one reads it repeated to BGR (first layer: the B, G and R taps of each input summed; last
    layer: the three outputs' pre-activations averaged): the start of a gray estimator."""
    first, last = weights["body.0.weight"], weights[max((k for k in weights if k.endswith(".weight")),
                                                         key=lambda k: int(k.split(".")[1]))]
    cells = fold * fold
    if first.shape[1] != 3 * cells + 3 or last.shape[0] != 3:
        raise ValueError(f"expected a 3-channel estimator to convert, got a first layer of shape {tuple(first.shape)}")
    detail = first[:, : 3 * cells].reshape(first.shape[0], 3, cells, *first.shape[2:]).sum(dim=1)
    means = first[:, 3 * cells :].sum(dim=1, keepdim=True)
    out = dict(weights)
    out["body.0.weight"] = torch.cat([detail, means], dim=1)
    last_name = [k for k in weights if weights[k] is last][0]
    out[last_name] = last.mean(dim=0, keepdim=True)
    out[last_name.replace("weight", "bias")] = weights[last_name.replace("weight", "bias")].mean(dim=0, keepdim=True)
    return out


def train(cfg: BlindConfig, out_root: Path, threads: int = 1) -> Path:
    torch.set_num_threads(threads)
    run = out_root / cfg.name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    files = [p for d in cfg.train_dirs for p in data.list_images(resolve(d))]
    split = np.random.default_rng(cfg.seed).permutation(len(files))  # the split training.denoise.train uses
    train_images = data.at_scales([data.load_image(files[i], cfg.channels) for i in split[cfg.holdout :]], cfg.scales)
    val_images = [data.load_image(files[i], cfg.channels) for i in split[: cfg.holdout]]
    pairs = real_eval.load_pairs(crop=cfg.real_crop, grey=cfg.channels == 1) if real_eval.POLYU.is_dir() else []

    rng = seed_all(cfg.seed)
    den = build_denoiser(cfg)
    est = build_estimator(cfg)
    runtime = Gated(den, cfg)
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
    probes = probe_batches(val_images, cfg.seed)
    if loop.step == 0:
        log_path.write_text("step,loss,rec,rec_gauss,rec_pass,asym,tv,real_psnr,real_level,holdout_psnr25,"
                            + "".join(f"est_{label}," for label, _, _ in probes) + "seconds\n")
        real, level = real_eval.blind_psnr(est, runtime, pairs) if pairs else (float("nan"), float("nan"))
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
        real, level = real_eval.blind_psnr(est, runtime, pairs) if pairs else (float("nan"), float("nan"))
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
              f"holdout@25 {hold:.2f} dB, {' / '.join(label for label, _, _ in probes)} "
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
