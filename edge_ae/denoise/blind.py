"""The blind noise level of one image, worked out once and read region by region.

What ``Denoiser.noise_map`` returns for a whole image, and what ``streamed.py`` reads one tile at
a time for a large one: the white-noise reading (``white_noise.py``) and the learned estimator's
grid of cell levels (``level_grid.py``) are image-wide figures, taken once, so every region of the
map is the same as in the whole-image map. An image under two cells a side has no grid: there the
estimator runs on the region with its receptive field of context, as a local convolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_ae.denoise.level_grid import expand, expanded_mean, grid_of
from edge_ae.denoise.tiling import margin_for, round_up, run_tiled
from edge_ae.denoise.white_noise import flat_reading, white_weight


@dataclass(frozen=True)
class BlindLevel:
    run: Callable[[np.ndarray], np.ndarray]  # the estimator on a batch: (M, C, h, w) -> (M, C', h, w), 0-1
    batch: np.ndarray  # the whole image as the estimator's (N, C, H, W) batch (any dtype)
    multiple: int  # the estimator's size multiple
    receptive_field: int
    tile: int  # the estimator's tile size when run on a region
    white: float  # how far the white-noise reading counts (0-1)
    sigma: float  # the white-noise reading (0-255)
    grid: np.ndarray | None  # (N, rows, cols, C') cell levels (0-1), None for a small image

    @staticmethod
    def of(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, *, multiple: int, receptive_field: int,
           tile: int) -> BlindLevel:
        reading = flat_reading(batch)
        white = 0.0 if reading is None else white_weight(reading[1])
        sigma = 0.0 if reading is None else reading[0]
        grid = None if white == 1.0 else grid_of(run, batch)
        return BlindLevel(run, batch, multiple, receptive_field, tile, white, sigma, grid)

    def region(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The map (0-255) on rows r0:r1, columns c0:c1: ((r1-r0), (c1-c0), C) with C the
        estimator's channels, or the batch's planes for a gray estimator on B, G and R."""
        n, c, h, w = self.batch.shape
        scale, offset = np.float32(255.0 * (1.0 - self.white)), np.float32(self.white * self.sigma)
        if self.white == 1.0:
            level = np.full((n, c if n == 1 else 1, r1 - r0, c1 - c0), self.sigma, np.float32)
        elif self.grid is not None:  # the blend taken on the cells (small), then spread
            level = expand(self.grid * scale + offset, h, w, r0, r1, c0, c1)
        else:
            level = self._learned(r0, r1, c0, c1) * scale
            if self.white > 0:
                level += offset
        if level.shape[0] > 1:  # a gray estimator on B, G and R: one map per plane
            level = level[:, :1].transpose(1, 0, 2, 3)
        return level[0].transpose(1, 2, 0)

    def mean(self) -> float:
        """The mean of the whole map (all pixels and channels), for a model fed one level: from the
        cells directly where there is a grid, not from a full-size map."""
        _, _, h, w = self.batch.shape
        if self.white == 1.0:
            return float(np.float32(self.sigma))
        if self.grid is None:
            return float(self.region(0, h, 0, w).mean(dtype=np.float64))
        return expanded_mean(self.grid, h, w) * 255.0 * (1.0 - self.white) + self.white * self.sigma

    def _learned(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        _, _, h, w = self.batch.shape
        # A small image: the estimator on the region with its receptive field of real context,
        # starting on its size-multiple grid, so the region equals the whole image's map there.
        margin = round_up(margin_for(self.receptive_field, self.multiple), self.multiple)
        top, left = max(0, r0 // self.multiple * self.multiple - margin), max(0, c0 // self.multiple * self.multiple - margin)
        bottom, right = min(h, r1 + margin), min(w, c1 + margin)
        part = run_tiled(self.run, self.batch[:, :, top:bottom, left:right], multiple=self.multiple,
                         margin=margin_for(self.receptive_field, self.multiple), tile=self.tile)
        return part[:, :, r0 - top : r1 - top, c0 - left : c1 - left]


@dataclass(frozen=True)
class NoiseEstimate:
    """A blind estimate to reuse, e.g. over the frames of a fixed camera (``Denoiser.estimate``):
    the level map (HxWxC, 0-255) and how far the noise read as white (0-1). Given back as
    ``sigma=``, it is used as the blind call uses its own estimate, the texture gate included
    (``texture_gate.py``); a plain map as ``sigma=`` is the caller's word and is used as given."""

    level: np.ndarray
    white: float

    def averaged(self, other: NoiseEstimate) -> NoiseEstimate:
        """The mean of two estimates of the same image size (a running estimate that does not flicker)."""
        return NoiseEstimate(np.float32(0.5) * (self.level + other.level), 0.5 * (self.white + other.white))

    def scaled(self, factor: float) -> NoiseEstimate:
        """The estimate with its levels multiplied by ``factor`` (a strength)."""
        return self if factor == 1.0 else NoiseEstimate(self.level * np.float32(factor), self.white)
