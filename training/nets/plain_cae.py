"""The seeds' plain convolutional autoencoder: two conv + max-pool stages, an up-sampling decoder,
sigmoid output. No skips, no residual, no noise-level input (``sigma`` is accepted and ignored so
that it trains and exports through the same code as the other denoisers). The baseline to beat.
"""

from __future__ import annotations

import torch
from torch import nn


class PlainConvAE(nn.Module):
    size_multiple = 4

    def __init__(self, channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.channels = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Upsample(scale_factor=2),
            nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        del sigma  # blind by design, as in the tutorial
        return self.decoder(self.encoder(noisy))
