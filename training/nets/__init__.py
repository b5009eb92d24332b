"""One small file per network. ``build(name, **kwargs)`` picks one by its registry name."""

from __future__ import annotations

from torch import nn

from training.nets.plain_cae import PlainConvAE
from training.nets.unet_dae import UNetDAE

NETWORKS: dict[str, type[nn.Module]] = {
    "unet_dae": UNetDAE,
    "plain_cae": PlainConvAE,
}


def build(name: str, **kwargs: int) -> nn.Module:
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}")
    return NETWORKS[name](**kwargs)
