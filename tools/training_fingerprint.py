"""Fingerprints of every training loop: a few seeded steps of each on tiny images it makes
itself (no ../shared), then a SHA-256 of the weights. The same code and seed must give the same
fingerprints; a refactor of training must leave them unchanged (docs/experiments/2026-12-06-training-core.md).

    python -m tools.training_fingerprint            # one line per loop: name, sha256 of the weights

Needs torch (the train extra); one thread, a few seconds.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np


def wave_images(folder: Path, *, height: int = 96, width: int = 112, count: int = 6) -> Path:
    """Smooth textured color PNGs (products of sine waves); the tests make theirs with this too
    (``tests/conftest.py``)."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    for i in range(count):
        image = 127 + 100 * np.sin(x / (5 + i)) * np.cos(y / (7 + i))
        cv2.imwrite(str(folder / f"{i}.png"), np.dstack([image, image[::-1], image[:, ::-1]]).astype(np.uint8))
    return folder


def digest(state: dict) -> str:
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes() if torch.is_tensor(state[key]) else b"")
    return h.hexdigest()[:16]


def fingerprints(work: Path) -> dict[str, str]:
    import torch

    torch.set_num_threads(1)
    folder = wave_images(work / "clean")
    net = {"width": 4, "depths": [1, 1, 1]}
    out: dict[str, str] = {}

    from training.denoise.train import DenoiserConfig, train
    cfg = DenoiserConfig(name="tiny", network="unet_dae", network_args=net, channels=3, train_dirs=[str(folder)],
                         holdout=2, patch=32, batch=4, steps=6, steps_per_epoch=3, seed=0)
    best = train(cfg, work / "runs", threads=1)
    out["denoise"] = digest(torch.load(work / "runs" / "tiny" / "checkpoint.pt", weights_only=False)["model"])

    from training.denoise.qat import fine_tune
    out["qat"] = digest(torch.load(fine_tune(best, work / "qat", steps=3, threads=1, command="fingerprint"),
                                   weights_only=False)["model"])

    from training.denoise import real_eval, train_blind
    real_eval.POLYU = work / "no-pairs"  # no evaluation pairs: the same run on any machine
    bcfg = train_blind.BlindConfig(name="blind", denoiser_init=str(best), denoiser_args=net, train_dirs=[str(folder)],
                                   holdout=2, patch=32, batch=8, steps=6, eval_every=3, freeze_steps=3, scales=[1.0])
    train_blind.train(bcfg, work / "runs", threads=1)
    last = torch.load(work / "runs" / "blind" / "last.pt", weights_only=False)
    out["blind"] = digest({**{f"e.{k}": v for k, v in last["estimator"].items()},
                           **{f"d.{k}": v for k, v in last["denoiser"].items()}})

    from training.anomaly.config import AnomalyConfig
    from training.anomaly.train import prepare
    from training.anomaly.train import train as train_anomaly
    acfg = AnomalyConfig(name="an", normal=str(folder), size=32, batch=4, steps=6, eval_every=3, val_images=4, threads=1,
                         width=4, latent_channels=8, seg_width=4, holdout=0.34)
    train_anomaly(acfg, prepare(acfg, lambda _: None), work / "runs" / "an", lambda _: None)
    ck = torch.load(work / "runs" / "an" / "checkpoint.pt", weights_only=False)
    out["anomaly"] = digest({**ck["model"], **{f"s.{k}": v for k, v in ck["segmenter"].items()}})

    from training.mnist.train import fit, reconstruction
    torch.manual_seed(0)
    ae = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU(), torch.nn.Linear(8, 64),
                             torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 8, 8)))
    x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    fit(ae, x, loss_fn=reconstruction("mse"), epochs=3, batch=8, seed=0, val_x=x[:8], lr_decay=True)
    out["mnist"] = digest(ae.state_dict())
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = fingerprints(Path(tmp))
    for name, value in result.items():
        print(f"{name:8} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
