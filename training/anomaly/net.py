"""The convolutional autoencoder: four stride-2 stages down to 1/16 resolution and back, no skip
connections (a skip would let a defect pass straight through to the reconstruction)."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.1, inplace=True))


class ConvAutoencoder(nn.Module):
    size_multiple = 16

    def __init__(self, channels: int, *, width: int = 32, latent_channels: int = 64) -> None:
        super().__init__()
        w = [width, width * 2, width * 4, width * 4]
        self.encoder = nn.Sequential(
            _block(channels, w[0], 2), _block(w[0], w[0]),
            _block(w[0], w[1], 2), _block(w[1], w[1]),
            _block(w[1], w[2], 2), _block(w[2], w[2]),
            _block(w[2], w[3], 2),
            nn.Conv2d(w[3], latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            _block(latent_channels, w[3]),
            nn.Upsample(scale_factor=2, mode="nearest"), _block(w[3], w[2]), _block(w[2], w[2]),
            nn.Upsample(scale_factor=2, mode="nearest"), _block(w[2], w[1]), _block(w[1], w[1]),
            nn.Upsample(scale_factor=2, mode="nearest"), _block(w[1], w[0]), _block(w[0], w[0]),
            # The last x2 as a sub-pixel convolution: a full-resolution 3x3 stage would cost a
            # quarter of all the compute for little gain.
            nn.Conv2d(w[0], channels * 4, 3, padding=1), nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))
