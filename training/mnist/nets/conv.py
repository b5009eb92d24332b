"""Convolutional autoencoder: conv + max-pool twice to a C x 7 x 7 code, conv + nearest
up-sampling back to 28 x 28, sigmoid out (the Keras tutorials' layout).

With ``latent`` set, a linear layer squeezes the 7 x 7 maps to that many numbers (used by
the one-class recipe, where a narrow code makes other classes reconstruct badly)."""

from __future__ import annotations

import torch
from torch import nn


class ConvAE(nn.Module):
    def __init__(self, channels: tuple[int, int] = (16, 8), *, latent: int | None = None) -> None:
        super().__init__()
        c1, c2 = channels
        self.channels = (c1, c2)
        code = c2 * 7 * 7
        self.latent_dim = latent or code
        enc: list[nn.Module] = [
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(),
        ]
        dec: list[nn.Module] = []
        if latent:
            enc.append(nn.Linear(code, latent))
            dec += [nn.Linear(latent, code), nn.ReLU()]
        dec += [
            nn.Unflatten(1, (c2, 7, 7)),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),  # 7 -> 14
            nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),  # 14 -> 28
            nn.Conv2d(c1, 1, 3, padding=1), nn.Sigmoid(),
        ]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image))
