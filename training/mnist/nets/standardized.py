"""The clustering recipe's autoencoder: 784 -> 256 -> 100 on row-standardised images (each
image shifted and scaled to mean 0, std 1), mirrored decoder with a linear output.

Standardisation is inside the encoder graph, so the exported model still takes [0, 1] images.
The decoder cannot know an input's own mean and std, so it maps its standardised output back
with the training set's average per-image mean and std and clips to [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from training.mnist.nets.dense import mlp


class RowStandardize(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        flat = image.flatten(1)
        mean = flat.mean(dim=1, keepdim=True)
        std = flat.std(dim=1, keepdim=True, unbiased=False)
        return (flat - mean) / (std + 1e-6)


class Destandardize(nn.Module):

    mean: torch.Tensor  # buffers
    std: torch.Tensor
    def __init__(self) -> None:
        super().__init__()
        # Set from the training data before export (see StandardizedAE.set_scale).
        self.register_buffer("mean", torch.tensor(0.0))
        self.register_buffer("std", torch.tensor(1.0))

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.clamp(flat * self.std + self.mean, 0.0, 1.0).unflatten(1, (1, 28, 28))


class StandardizedAE(nn.Module):
    def __init__(self, sizes: tuple[int, ...] = (784, 256, 100)) -> None:
        super().__init__()
        self.latent_dim = sizes[-1]
        self.standardize = RowStandardize()
        self.encoder = nn.Sequential(self.standardize, *mlp(list(sizes), last_activation=None))
        self.core_decoder = mlp(list(sizes[::-1]), last_activation=None)
        self.destandardize = Destandardize()
        self.decoder = nn.Sequential(self.core_decoder, self.destandardize)

    def set_scale(self, images: torch.Tensor) -> None:
        flat = images.flatten(1)
        self.destandardize.mean.fill_(float(flat.mean(dim=1).mean()))
        self.destandardize.std.fill_(float(flat.std(dim=1, unbiased=False).mean()))

    def standardized_loss(self, image: torch.Tensor) -> torch.Tensor:
        """Training objective: MSE in standardised space."""
        target = self.standardize(image)
        return torch.mean((self.core_decoder(self.encoder(image)) - target) ** 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image))
