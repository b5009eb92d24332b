"""The recipes' networks. Each has ``encoder`` (image (N, 1, 28, 28) -> latent (N, D)) and
``decoder`` (latent -> image) submodules and ``latent_dim``; flattening and reshaping live
inside them so the exported graphs take and give images."""

from training.mnist.nets.conv import ConvAE
from training.mnist.nets.dense import DenseAE
from training.mnist.nets.standardized import StandardizedAE

__all__ = ["ConvAE", "DenseAE", "StandardizedAE"]
