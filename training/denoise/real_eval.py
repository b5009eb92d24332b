"""Quick PyTorch check of a blind denoiser (estimator + denoiser) on real noisy/clean pairs, to
choose between training candidates. The pairs (``*_real`` noisy, ``*_mean`` clean, as in PolyU)
are evaluation data: read here, never trained on. The published figures come from the ONNX
benchmark in tools/, not from this loop.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from training.denoise.train import SHARED
from training.metrics import psnr

POLYU = SHARED / "denoise" / "real" / "polyu-canon"


def load_pairs(folder: Path = POLYU, crop: int | None = None, grey: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """(noisy, clean) float32 (1, 3, H, W) BGR pairs, centre-cropped to ``crop`` if given; with
    ``grey``, (1, 1, H, W) gray copies (OpenCV's BGR->gray, as tools/bench_real_noise.py)."""
    pairs = []
    for noisy_path in sorted(folder.glob("*_real.*")):
        clean_path = noisy_path.with_name(noisy_path.name.replace("_real", "_mean"))
        images = []
        for p in (noisy_path, clean_path):
            im = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if im is None:
                raise ValueError(f"cannot read the pair {noisy_path} / {clean_path}")
            images.append(im)
        if grey:
            images = [cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)[:, :, None] for im in images]
        h, w = images[0].shape[:2]
        if crop:
            y, x = (h - crop) // 2, (w - crop) // 2
            images = [im[y : y + crop, x : x + crop] for im in images]
        h, w = (s - s % 8 for s in images[0].shape[:2])
        noisy, clean = (im[:h, :w].astype(np.float32).transpose(2, 0, 1)[None] / 255.0 for im in images)
        pairs.append((noisy, clean))
    return pairs


def psnr_u8(out: np.ndarray, clean: np.ndarray) -> float:
    """PSNR of the output as an 8-bit image would be written, against the 8-bit clean image."""
    return psnr(np.round(clean * 255), np.round(np.clip(out, 0, 1) * 255), peak=255)


@torch.no_grad()
def blind_psnr(estimator: torch.nn.Module, denoiser: torch.nn.Module,
               pairs: list[tuple[np.ndarray, np.ndarray]], strength: float = 1.0) -> tuple[float, float]:
    """(mean PSNR of the blind output, mean estimated level on the 0-255 scale)."""
    estimator.eval()
    denoiser.eval()
    scores, levels = [], []
    for noisy, clean in pairs:
        x = torch.from_numpy(noisy)
        level = estimator(x) * strength
        scores.append(psnr_u8(denoiser(x, level).numpy(), clean))
        levels.append(float(level.mean()) * 255)
    estimator.train()
    denoiser.train()
    return float(np.mean(scores)), float(np.mean(levels))
