"""Fully connected autoencoder: 784 -> hidden... -> latent -> ...hidden -> 784 (sigmoid)."""

from __future__ import annotations

import torch
from torch import nn


def mlp(sizes: list[int], *, last_activation: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        if not last:
            layers.append(nn.ReLU())
        elif last_activation is not None:
            layers.append(last_activation)
    return nn.Sequential(*layers)


class DenseAE(nn.Module):
    """``DenseAE([784, 196, 49])`` is 784 -> 196 -> 49 -> 196 -> 784, ReLU inside, sigmoid out.

    ``relu_code=False`` leaves the code linear (a 3-D code with ReLU loses whole dimensions).
    ``keras_init`` (default) initialises like the Keras tutorials (Glorot-uniform weights, zero
    biases); it trains the deep recipe faster than PyTorch's default."""

    def __init__(self, sizes: list[int], *, relu_code: bool = True, keras_init: bool = True) -> None:
        super().__init__()
        if sizes[0] != 28 * 28:
            raise ValueError(f"the first size must be 784 (28x28 pixels), got {sizes[0]}")
        self.sizes = list(sizes)
        self.latent_dim = sizes[-1]
        self.encoder = nn.Sequential(nn.Flatten(), *mlp(sizes, last_activation=nn.ReLU() if relu_code else None))
        self.decoder = nn.Sequential(*mlp(sizes[::-1], last_activation=nn.Sigmoid()), nn.Unflatten(1, (1, 28, 28)))
        if keras_init:
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image))
