"""The learned noise-level map from a grid of small crops instead of the whole image.

Why: the estimator costs 1,701 multiply-adds per pixel, a third of the fast color model's, so on
the whole image the blind call of ``denoise-color-fast`` took 1.8 times the call with a given
sigma (issue 52; the bar is 1.3). The level of real noise changes slowly across a photo (with
brightness, not from pixel to pixel), so one ``CROP`` x ``CROP`` crop at the centre of each
``CELL`` x ``CELL`` cell (a quarter of the pixels) gives the level of its cell, and the map is the
grid of those levels resized bilinearly to the image. ``CROP`` is the estimator's training patch
size (training/denoise/train_blind.py), so each crop is read as in training. Images under two
cells a side are estimated whole.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

CELL = 128
CROP = 64


def centres(length: int, cells: int) -> np.ndarray:
    """Top-left offsets of the ``cells`` crops centred in equal cells along one side."""
    middle = (np.arange(cells) + 0.5) * length / cells
    return np.clip(np.round(middle - CROP / 2).astype(int), 0, length - CROP)


def sampled_map(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray | None:
    """The noise map (N, C', H, W) of an (N, C, H, W) float batch from ``run`` on a grid of crops
    (``run`` takes (M, C, CROP, CROP) and returns (M, C', CROP, CROP)); None when the image is
    under two cells a side (estimate it whole)."""
    n, _, h, w = batch.shape
    rows, cols = h // CELL, w // CELL
    if rows < 2 or cols < 2:
        return None
    ys, xs = centres(h, rows), centres(w, cols)
    crops = np.stack([batch[i, :, y : y + CROP, x : x + CROP] for i in range(n) for y in ys for x in xs])
    levels = run(np.ascontiguousarray(crops)).mean(axis=(2, 3)).reshape(n, rows, cols, -1)
    maps = [cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
            for grid in levels]
    return np.stack(maps).transpose(0, 3, 1, 2)
