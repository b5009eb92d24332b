"""The fixed pre- and post-processing that ships inside the exported graph: the anomaly map (the
segmenter's defect probability, or the reconstruction error) and the image score. Also the
training loss (same SSIM)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.anomaly.config import EXPOSURES

SCALES = (1, 2, 4)  # multi-scale error: small defects show at 1, large faint ones at 4
SSIM_SIGMA = 1.5
_C1, _C2 = 0.01**2, 0.03**2
EXPOSURE_MEAN = 0.4  # what "gain" exposure normalisation scales each image's mean to (headroom for highlights)


def normalize_exposure(x: torch.Tensor, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Each image (N, C, H, W) on [0, 1] multiplied so that its mean (or that of the same image in
    ``like``) is EXPOSURE_MEAN, clipped to [0, 1]. Exposure and light act as a gain on the pixel
    values, so dividing it out makes a dark photo's defect as contrasted as a bright one's, instead
    of the few hundredths that the input noise of training teaches both networks to ignore."""
    reference = x if like is None else like
    return (x * (EXPOSURE_MEAN / reference.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1.0 / 255))).clamp(0.0, 1.0)


def apply_exposure(x: torch.Tensor, exposure: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` as both networks see it under the ``exposure`` option: the one place that decides."""
    return x if exposure == "none" else normalize_exposure(x, like=like)


def check_exposure(exposure: str) -> str:
    if exposure not in EXPOSURES:
        raise ValueError(f"exposure must be one of {', '.join(EXPOSURES)}, got {exposure!r}")
    return exposure


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def top_mean(maps: torch.Tensor, k: int) -> torch.Tensor:
    """Image score (N,): the mean of the ``k`` highest pixels of each map (N, 1, H, W)."""
    return torch.topk(maps.flatten(1), k, dim=1).values.mean(dim=1)


def score_pixels(topk: float, size: tuple[int, int]) -> int:
    """How many pixels the image score averages: a fraction of the map, at least one (0: the maximum)."""
    return max(1, int(round(topk * size[0] * size[1])))


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur per channel with reflected borders (no dark frame at the edges)."""
    n, c, h, w = x.shape
    r = kernel.numel() // 2  # a Python int: the exported graph gets constant pads
    # Channels folded into the batch: one (1, 1, k) kernel, whose shape the ONNX export can see.
    x = F.pad(x.reshape(n * c, 1, h, w), (r, r, r, r), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return F.conv2d(x, kernel.view(1, 1, 1, -1)).reshape(n, c, h, w)


def ssim_map(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM (N, C, H, W) of images on [0, 1]."""
    mx, my = blur(x, kernel), blur(y, kernel)
    vx = blur(x * x, kernel) - mx * mx
    vy = blur(y * y, kernel) - my * my
    cxy = blur(x * y, kernel) - mx * my
    return ((2 * mx * my + _C1) * (2 * cxy + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """L1 plus structural dissimilarity: L1 alone learns blurry reconstructions that flag every edge."""
    return (recon - target).abs().mean() + (1 - ssim_map(recon, target, kernel)).mean()


def error_components(x: torch.Tensor, recon: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(N, 2 * len(SCALES), H, W): L1 and (1 - SSIM) / 2 at each scale, upsampled to full size."""
    h, w = x.shape[2], x.shape[3]
    maps = []
    for s in SCALES:
        xs = F.avg_pool2d(x, s) if s > 1 else x
        rs = F.avg_pool2d(recon, s) if s > 1 else recon
        l1 = (xs - rs).abs().mean(dim=1, keepdim=True)
        dssim = ((1 - ssim_map(xs, rs, kernel)) / 2).mean(dim=1, keepdim=True)
        for m in (l1, dssim):
            maps.append(F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False) if s > 1 else m)
    return torch.cat(maps, dim=1)


def positional_stats(maps: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel mean and spread (1, 1, H, W) of normal images' maps (N, 1, H, W), smoothed so a
    few hundred images give stable values, with the spread floored at a tenth of its average so
    that no pixel is trusted to be exactly predictable."""
    mean = blur(maps.mean(dim=0, keepdim=True), kernel)
    std = blur(maps.std(dim=0, keepdim=True), kernel)
    return mean, std + 0.1 * std.mean()


class AnomalyGraph(nn.Module):
    """What ships: image (N, C, H, W) on [0, 1] -> anomaly_map (N, 1, H, W), score (N,).

    Each error component is divided by its mean on normal training images, so every component
    weighs the same; the average is smoothed. With positional statistics (a fixed camera: the same
    place in the frame always looks alike), each pixel is then expressed as its distance from
    what normal images show at that place, in units of their spread (a z-score), so edges that
    are always hard to reconstruct stop dominating. The image score is the mean of the top
    ``topk`` fraction of the map."""

    # Buffers (register_buffer), typed for the checker.
    ssim_kernel: torch.Tensor
    smooth_kernel: torch.Tensor
    norms: torch.Tensor
    position_mean: torch.Tensor
    position_std: torch.Tensor

    def __init__(self, net: nn.Module, *, size: tuple[int, int], norms: torch.Tensor, topk: float, smooth_sigma: float,
                 position: tuple[torch.Tensor, torch.Tensor] | None = None, exposure: str = "none") -> None:
        super().__init__()
        self.exposure = check_exposure(exposure)
        smallest = min(size) // max(SCALES)
        if smallest <= 3 * SSIM_SIGMA + 1 or min(size) <= 3 * smooth_sigma + 1:
            raise ValueError(f"input size {size} is too small for the error maps (at least 32 pixels)")
        self.net = net
        self.register_buffer("ssim_kernel", gaussian_kernel(SSIM_SIGMA))
        self.register_buffer("smooth_kernel", gaussian_kernel(max(smooth_sigma, 0.5)))
        self.register_buffer("norms", norms.view(1, -1, 1, 1).float())
        self.positional = position is not None
        if position is not None:
            self.register_buffer("position_mean", position[0].reshape(1, 1, *size).float())
            self.register_buffer("position_std", position[1].reshape(1, 1, *size).float())
        self.k = score_pixels(topk, size)

    def error_map(self, image: torch.Tensor) -> torch.Tensor:
        """The smoothed error map before positional normalisation."""
        image = apply_exposure(image, self.exposure)
        recon = self.net(image)
        parts = error_components(image, recon, self.ssim_kernel) / self.norms
        return blur(parts.mean(dim=1, keepdim=True), self.smooth_kernel)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        amap = self.error_map(image)
        if self.positional:
            amap = (amap - self.position_mean) / self.position_std
        return amap, top_mean(amap, self.k)


class SegmentationGraph(nn.Module):
    """What ships for the default ``map="learned"``: image (N, C, H, W) on [0, 1] -> anomaly_map
    (N, 1, H, W), score (N,).

    The autoencoder repairs the image, the segmenter compares image and repair and gives each
    pixel a defect probability (optionally smoothed); the image score is the mean of the top
    ``topk`` fraction of the map (by default its single highest pixel: one small defect is
    enough to reject a part)."""

    smooth_kernel: torch.Tensor  # a buffer

    def __init__(self, net: nn.Module, segmenter: nn.Module, *, size: tuple[int, int], topk: float,
                 smooth_sigma: float, exposure: str = "none") -> None:
        super().__init__()
        self.exposure = check_exposure(exposure)
        self.net = net
        self.segmenter = segmenter
        self.smooth = smooth_sigma > 0
        self.register_buffer("smooth_kernel", gaussian_kernel(max(smooth_sigma, 0.5)))
        self.k = score_pixels(topk, size)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = apply_exposure(image, self.exposure)
        recon = self.net(image)
        amap = torch.sigmoid(self.segmenter(torch.cat([image, recon], dim=1)))
        if self.smooth:
            amap = blur(amap, self.smooth_kernel)
        return amap, top_mean(amap, self.k)
