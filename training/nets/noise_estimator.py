"""Noise-level estimator: a small CNN that maps a noisy image to a per-pixel, per-channel map of
the noise level a denoiser should be told (CBDNet's estimation sub-network, Guo et al. 2019).

The image is first folded 4x4 into 16x the channels (lossless, as FFDNet folds 2x2): the five
convolutions then run on a grid 16x smaller, so the estimate costs a fraction of the denoiser it
feeds, while every pixel still reaches the first layer. The map comes out at a quarter of the
resolution and is resized back bilinearly: noise levels change slowly across an image. Softplus
keeps it positive.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class NoiseEstimator(nn.Module):
    def __init__(self, channels: int = 3, width: int = 24, depth: int = 5, fold: int = 4,
                 start: float = 10 / 255) -> None:
        super().__init__()
        self.channels = channels
        self.fold = fold
        self.size_multiple = fold
        layers: list[nn.Module] = []
        cin = channels * fold * fold
        for _ in range(depth - 1):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
            cin = width
        last = nn.Conv2d(cin, channels, 3, padding=1)
        with torch.no_grad():  # start near a typical level, not at softplus(0) = 0.69
            last.weight.mul_(0.1)
            last.bias.fill_(float(torch.log(torch.expm1(torch.tensor(start)))))
        self.body = nn.Sequential(*layers, last)

    def coarse(self, noisy: torch.Tensor) -> torch.Tensor:
        """The estimate on the folded grid, (N, C, H / fold, W / fold)."""
        return F.softplus(self.body(F.pixel_unshuffle(noisy, self.fold)))

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """``noisy``: (N, C, H, W) in [0, 1], H and W multiples of ``fold``; returns the noise map
        (N, C, H, W) on the same scale."""
        return F.interpolate(self.coarse(noisy), scale_factor=self.fold, mode="bilinear", align_corners=False)
