"""How images are denoised, as one typed object: the options the batch job (``edge-ae denoise``),
the Ray engine and the live frame pipeline share, each checked once, when the object is made,
and the one strength check everything else calls."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_ae.denoise.ensemble import check_copies
from edge_ae.denoise.precision import check_precision

STRENGTHS = (0.25, 4.0)  # allowed range of ``strength``; 0.5-2 is the useful one


def check_strength(strength: object) -> float:
    """``strength`` as a float, or a ValueError saying the range and what was given."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating)) or \
            not math.isfinite(float(strength)) or not STRENGTHS[0] <= float(strength) <= STRENGTHS[1]:
        raise ValueError(f"strength must be a number from {STRENGTHS[0]:g} to {STRENGTHS[1]:g}, got {strength!r}")
    return float(strength)


def check_sigma(sigma: object) -> float | None:
    """A given noise level (0-255 scale) as a float, None for "estimate it", or a ValueError."""
    if sigma is None:
        return None
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating)) or \
            not (math.isfinite(float(sigma)) and float(sigma) >= 0):
        raise ValueError(f"sigma must be a finite number >= 0 (0-255 scale), got {sigma!r}")
    return float(sigma)


@dataclass(frozen=True, kw_only=True)
class DenoiseOptions:
    """How to denoise, whatever the images come from (files, a Ray Dataset, camera frames).

    * ``sigma``: the noise level to clean at (0-255 scale); None estimates it per image.
    * ``strength``: multiplies the estimated level (0.25-4): above 1 cleans harder.
    * ``tile``: core tile size in pixels (None: ``Denoiser``'s default).
    * ``ensemble``: 1, 2, 4 or 8 flipped copies averaged (``Denoiser``'s ``ensemble``).
    * ``precision``: "auto", "float" or "int8" (``Denoiser``'s ``precision``).
    """

    sigma: float | None = None
    strength: float = 1.0
    tile: int | None = None
    ensemble: int = 1
    precision: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_sigma(self.sigma))
        object.__setattr__(self, "strength", check_strength(self.strength))
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 1):
            raise ValueError(f"tile must be a whole number of pixels >= 1 or None, got {self.tile!r}")
        object.__setattr__(self, "ensemble", check_copies(self.ensemble))
        object.__setattr__(self, "precision", check_precision(self.precision))
