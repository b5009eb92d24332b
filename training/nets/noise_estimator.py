"""Noise-level estimator: a small CNN that maps a noisy image to a per-pixel, per-channel map of
the noise level a denoiser should be told (CBDNet's estimation sub-network, Guo et al. 2019).

The network sees the image's fine detail (the image minus its 3x3 average, scaled up) folded 4x4
into 16x the channels (lossless, as FFDNet folds 2x2), plus the mean brightness of each 4x4 block
(shot noise grows with it): the five convolutions then run on a grid 16x smaller, so the
estimate costs a fraction of the denoiser it feeds, while every pixel still reaches the first
layer. Why the fixed high-pass: fed raw pixels, the network learnt a constant for hundreds of
steps (image content dwarfs the noise there); fed the detail, it tells noise levels apart at once
(docs/experiments/2026-12-05-real-noise.md). The map comes out at a quarter of the
resolution and is resized back bilinearly: noise levels change slowly across an image. Softplus
keeps it positive.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DETAIL_GAIN = 10.0  # noise of std 0.01-0.2 becomes features of order 0.1-2


class NoiseEstimator(nn.Module):
    def __init__(self, channels: int = 3, width: int = 24, depth: int = 5, fold: int = 4,
                 start: float = 10 / 255) -> None:
        super().__init__()
        self.channels = channels
        self.fold = fold
        self.size_multiple = fold
        layers: list[nn.Module] = []
        cin = channels * fold * fold + channels
        for _ in range(depth - 1):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
            cin = width
        last = nn.Conv2d(cin, channels, 3, padding=1)
        with torch.no_grad():  # start near a typical level, not at softplus(0) = 0.69
            last.weight.mul_(0.1)
            assert last.bias is not None
            last.bias.fill_(float(torch.log(torch.expm1(torch.tensor(start)))))
        self.body = nn.Sequential(*layers, last)

    def coarse(self, noisy: torch.Tensor) -> torch.Tensor:
        """The estimate on the folded grid, (N, C, H / fold, W / fold)."""
        detail = (noisy - F.avg_pool2d(F.pad(noisy, (1, 1, 1, 1), mode="replicate"), 3, stride=1)) * DETAIL_GAIN
        features = torch.cat([F.pixel_unshuffle(detail, self.fold), F.avg_pool2d(noisy, self.fold)], dim=1)
        return F.softplus(self.body(features))

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """``noisy``: (N, C, H, W) in [0, 1], H and W multiples of ``fold``; returns the noise map
        (N, C, H, W) on the same scale."""
        return F.interpolate(self.coarse(noisy), scale_factor=self.fold, mode="bilinear", align_corners=False)
