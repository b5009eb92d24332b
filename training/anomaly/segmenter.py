"""The defect segmenter: a small U-Net that looks at an image next to the autoencoder's repair of
it and outputs, per pixel, the logit that the pixel is a defect.

Why a second network: on real textures the plain reconstruction error is dominated by what is
always hard to reconstruct (edges, fine grain), so defects hardly stand out (magnetic tile: image
AUROC 0.56 from the error alone). A network trained to tell the synthetic defects from normal
surface, given the image and its repair side by side, learns which differences matter
(the DRAEM recipe, Zavrtanik et al., ICCV 2021, trained here from scratch).
Skip connections are right here, unlike in the autoencoder: this network must localise, not
repair."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class DefectSegmenter(nn.Module):
    """(image, reconstruction) concatenated, (N, 2C, H, W) -> defect logits (N, 1, H, W).
    Three max-pool stages (H and W multiples of 8)."""

    size_multiple = 8

    def __init__(self, channels: int, *, width: int = 16) -> None:
        super().__init__()
        w = width
        self.enc1, self.enc2 = _stage(2 * channels, w), _stage(w, 2 * w)
        self.enc3, self.bottom = _stage(2 * w, 4 * w), _stage(4 * w, 4 * w)
        self.dec3, self.dec2, self.dec1 = _stage(8 * w, 2 * w), _stage(4 * w, w), _stage(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        b = self.bottom(F.max_pool2d(e3, 2))
        d3 = self.dec3(torch.cat([F.interpolate(b, scale_factor=2.0, mode="nearest"), e3], dim=1))
        d2 = self.dec2(torch.cat([F.interpolate(d3, scale_factor=2.0, mode="nearest"), e2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], dim=1))
        return self.head(d1)


def focal_loss(logits: torch.Tensor, masks: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss: defect pixels are a few percent of all pixels, and the easy normal ones
    would otherwise swamp the gradient."""
    ce = F.binary_cross_entropy_with_logits(logits, masks, reduction="none")
    p = torch.sigmoid(logits)
    pt = p * masks + (1 - p) * (1 - masks)
    return (ce * (1 - pt) ** gamma).mean()
