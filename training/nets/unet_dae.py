"""Denoising autoencoder: a small U-Net (encoder with down-sampling, decoder with up-sampling,
skip connections) that predicts the noise, with the residual step ``clean = noisy - noise`` visible
in ``forward``.

The noise level is an input (FFDNet-style noise map), so the runtime can expose a strength
control: one value per image (N, 1), broadcast, or with ``noise_channels`` = C a per-pixel,
per-channel map (N, C, H, W), so shadows noisier than highlights and one channel noisier than
the others are each cleaned at their own level (a learned estimate, training/denoise/).

Sized by ``width`` so one file serves both the quality and the fast models. With ``unshuffle=2``
the image is first folded into 4x the channels at half resolution (as FFDNet does): the same
multiply-adds buy wider layers on a smaller grid, which CPUs run much faster.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class Block(nn.Sequential):
    """``depth`` 3x3 conv + ReLU layers at one scale."""

    def __init__(self, cin: int, cout: int, depth: int) -> None:
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [conv(cin if i == 0 else cout, cout), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class SeparableHead(nn.Module):
    """A 3x3 output layer factored into a depthwise 3x3 conv (each channel filtered on its own)
    and a 1x1 conv that mixes the channels into the output."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


HEADS = ("3x3", "1x1", "separable")


def make_head(kind: str, cin: int, cout: int) -> nn.Module:
    """The layer that turns the last features into the noise estimate. Why not always 3x3:
    onnxruntime's CPU kernels compute output channels in blocks of 8 or 16, so a 3x3 conv with
    1-4 outputs costs about as much as one with 16: at full resolution, 8 % of the float and 18 %
    of the 8-bit color model's graph time for 1.5 % of its multiply-adds (tools/profile_graph.py). The
    separable head keeps the 3x3 neighbourhood for under half of that time, float or 8-bit;
    a 1x1 head is cheaper still but learns less (docs/DENOISING.md)."""
    if kind == "3x3":
        return nn.Conv2d(cin, cout, 3, padding=1)
    if kind == "1x1":
        return nn.Conv2d(cin, cout, 1)
    if kind == "separable":
        return SeparableHead(cin, cout)
    raise ValueError(f"head must be one of {', '.join(HEADS)}, got {kind!r}")


class StridedStem(nn.Module):
    """The first layer of a folded model (fold, noise map, 3x3 conv on the folded grid) as one
    strided convolution of the full-resolution image and noise map: the same sums without the
    fold's data shuffle, which onnxruntime runs slowly. Built from the trained conv at export
    (``UNetDAE.fuse_stem``); equal up to float rounding."""

    def __init__(self, conv: nn.Conv2d, channels: int, factor: int, noise_channels: int = 1) -> None:
        super().__init__()
        f, k = factor, noise_channels
        self.noise_channels = k
        self.conv = nn.Conv2d(channels + k, conv.out_channels, 3 * f, stride=f, padding=f)
        w = conv.weight.detach()  # (out, channels * f * f + k, 3, 3); folded channel c*f*f + dy*f + dx
        fused = torch.zeros(conv.out_channels, channels + k, 3 * f, 3 * f)
        for dy in range(f):
            for dx in range(f):
                fused[:, :channels, dy::f, dx::f] = w[:, dy * f + dx : channels * f * f : f * f]
                # The network sees the noise map averaged over each f x f block: each tap shares it.
                fused[:, channels:, dy::f, dx::f] = w[:, channels * f * f :] / (f * f)
        with torch.no_grad():
            self.conv.weight.copy_(fused)
            assert self.conv.bias is not None and conv.bias is not None
            self.conv.bias.copy_(conv.bias.detach())

    @staticmethod
    def folded_weight(fused: torch.Tensor) -> torch.Tensor:
        """The inverse of the mapping in ``__init__``: the first conv's weight on the folded grid
        (out, channels * f * f + 1, 3, 3) from the fused one (out, channels + 1, 3f, 3f)."""
        out, inputs, size, _ = fused.shape
        f = size // 3
        # Color models have 1 or 3 map channels, gray ones 1: the split is the one that fits.
        channels = next(c for c in (3, 1) if (inputs - c) in (1, c))
        w = torch.empty(out, channels * f * f + inputs - channels, 3, 3, dtype=fused.dtype)
        for dy in range(f):
            for dx in range(f):
                w[:, dy * f + dx : channels * f * f : f * f] = fused[:, :channels, dy::f, dx::f]
        w[:, channels * f * f :] = fused[:, channels:, 0::f, 0::f] * (f * f)
        return w

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n, _, h, w = noisy.shape
        return self.conv(torch.cat([noisy, noise_map(sigma, n, self.noise_channels, h, w)], dim=1))


def noise_map(sigma: torch.Tensor, n: int, channels: int, h: int, w: int) -> torch.Tensor:
    """``sigma`` as an (n, channels, h, w) map: a value per image (N, 1) is broadcast; a map
    (N, channels, H, W) is averaged down to h x w if it is larger (a folded model's grid)."""
    if sigma.dim() == 2:
        return sigma.reshape(n, 1, 1, 1).expand(n, channels, h, w)
    if sigma.shape[2] != h:
        sigma = F.avg_pool2d(sigma, sigma.shape[2] // h)
    return sigma


class UNetDAE(nn.Module):
    def __init__(
        self,
        channels: int = 3,
        width: int = 16,
        depths: tuple[int, int, int] = (1, 2, 4),
        unshuffle: int = 1,
        widths: tuple[int, int, int] | None = None,
        merge: str = "concat",
        head: str = "3x3",
        noise_channels: int = 1,
    ) -> None:
        super().__init__()
        if merge not in ("concat", "add"):
            raise ValueError(f"merge must be 'concat' or 'add', got {merge!r}")
        # "add" sums each skip into the up-sampled features instead of concatenating them: the
        # decoder convolutions then see half the channels, which halves their cost.
        self.merge = merge
        joined = 2 if merge == "concat" else 1
        # ``widths`` sets each scale's channels; by default they double at each scale from ``width``.
        w1, w2, w3 = widths if widths is not None else (width, 2 * width, 4 * width)
        d1, d2, d3 = depths
        self.channels = channels
        self.unshuffle = unshuffle
        # Two stride-2 stages after the optional fold: sizes must be multiples of this.
        self.size_multiple = 4 * unshuffle
        folded = channels * unshuffle * unshuffle
        self.noise_channels = noise_channels
        self.enc1 = Block(folded + noise_channels, w1, d1)
        self.down1 = nn.Sequential(conv(w1, w2, stride=2), nn.ReLU(inplace=True))
        self.enc2 = Block(w2, w2, d2)
        self.down2 = nn.Sequential(conv(w2, w3, stride=2), nn.ReLU(inplace=True))
        self.bottom = Block(w3, w3, d3)
        self.up2 = nn.ConvTranspose2d(w3, w2, 2, stride=2)
        self.dec2 = Block(joined * w2, w2, d2)
        self.up1 = nn.ConvTranspose2d(w2, w1, 2, stride=2)
        self.dec1 = Block(joined * w1, w1, d1)
        self.head = make_head(head, w1, folded)
        self.stem: StridedStem | None = None  # set by fuse_stem, for export only

    def fuse_stem(self) -> None:
        """Replace the fold and first conv by the equivalent ``StridedStem`` (export-time speed-up)."""
        if self.unshuffle > 1 and self.stem is None:
            first = self.enc1[0]
            assert isinstance(first, nn.Conv2d)
            self.stem = StridedStem(first, self.channels, self.unshuffle, self.noise_channels)

    def join(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([up, skip], dim=1) if self.merge == "concat" else up + skip

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``noisy``: (N, C, H, W) in [0, 1]; ``sigma``: noise std on the same scale, (N, 1) or
        a map (N, noise_channels, H, W)."""
        if self.stem is None:
            x = F.pixel_unshuffle(noisy, self.unshuffle) if self.unshuffle > 1 else noisy
            n, _, h, w = x.shape
            e1 = self.enc1(torch.cat([x, noise_map(sigma, n, self.noise_channels, h, w)], dim=1))
        else:
            e1 = self.stem(noisy, sigma)
            for layer in list(self.enc1)[1:]:  # the stem stands for enc1's first conv
                e1 = layer(e1)
        e2 = self.enc2(self.down1(e1))
        b = self.bottom(self.down2(e2))
        d2 = self.dec2(self.join(self.up2(b), e2))
        d1 = self.dec1(self.join(self.up1(d2), e1))
        noise = self.head(d1)
        if self.unshuffle > 1:
            noise = F.pixel_shuffle(noise, self.unshuffle)
        return noisy - noise  # the residual step: the network estimates the noise, not the image
