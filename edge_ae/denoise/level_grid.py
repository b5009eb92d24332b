"""The learned noise-level map from a grid of small crops instead of the whole image.

Why: the estimator costs 1,701 multiply-adds per pixel, a third of the fast color model's, so on
the whole image the blind call of ``denoise-color-fast`` took 1.8 times the call with a given
sigma (issue 52; the bar is 1.3). The level of real noise changes slowly across a photo (with
brightness, not from pixel to pixel), so one ``CROP`` x ``CROP`` crop at the centre of each
``CELL`` x ``CELL`` cell (a ninth of the pixels) gives the level of its cell, and the map is the
grid of those levels resized bilinearly to the image (pixel centres aligned, edges held, as
OpenCV's INTER_LINEAR). ``CROP`` is the estimator's training patch size
(training/denoise/train_blind.py), so each crop is read as in training. Images under two cells a
side are estimated whole. ``expand`` computes any region of the map on its own, with the same
arithmetic per pixel, so a large image can be denoised tile by tile (``streamed.py``) with the
map of the whole image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CELL = 192
CROP = 64


def centres(length: int, cells: int, crop: int = CROP) -> np.ndarray:
    """Top-left offsets of the ``cells`` crops of side ``crop`` centred in equal cells along one side."""
    middle = (np.arange(cells) + 0.5) * length / cells
    return np.clip(np.round(middle - crop / 2).astype(int), 0, length - crop)


def grid_of(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray | None:
    """The level of every cell, (N, rows, cols, C'), from ``run`` on one crop per cell of an
    (N, C, H, W) batch (``run`` takes (M, C, CROP, CROP), returns (M, C', CROP, CROP)); None when
    the image is under two cells a side (estimate it whole)."""
    n, _, h, w = batch.shape
    rows, cols = h // CELL, w // CELL
    if rows < 2 or cols < 2:
        return None
    ys, xs = centres(h, rows), centres(w, cols)
    crops = np.stack([batch[i, :, y : y + CROP, x : x + CROP] for i in range(n) for y in ys for x in xs])
    return run(np.ascontiguousarray(crops)).mean(axis=(2, 3)).reshape(n, rows, cols, -1).astype(np.float32)


def _weights(cells: int, length: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one side for output pixels start..stop-1 of ``length``: (lower cell,
    upper cell, weight of the upper), pixel centres aligned and edges held."""
    src = (np.arange(start, stop, dtype=np.float64) + 0.5) * (cells / length) - 0.5
    src = np.clip(src, 0.0, cells - 1)
    low = np.floor(src).astype(int)
    return low, np.minimum(low + 1, cells - 1), (src - low).astype(np.float32)


def expand(grid: np.ndarray, h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Rows r0:r1, columns c0:c1 of the (N, C', H, W) map that ``grid`` (N, rows, cols, C')
    spreads over an H x W image (the same arithmetic per pixel whatever the region)."""
    lo_r, hi_r, fr = _weights(grid.shape[1], h, r0, r1)
    lo_c, hi_c, fc = _weights(grid.shape[2], w, c0, c1)
    cells = np.ascontiguousarray(grid.transpose(0, 3, 1, 2), dtype=np.float32)  # (N, C', rows, cols): small
    by_rows = cells[:, :, lo_r] * (1 - fr)[:, None] + cells[:, :, hi_r] * fr[:, None]  # (N, C', r, cols): small
    out = np.take(by_rows, lo_c, axis=3)
    out *= 1 - fc
    upper = np.take(by_rows, hi_c, axis=3)
    upper *= fc
    out += upper
    return out


def expanded_mean(grid: np.ndarray, h: int, w: int) -> float:
    """The mean of the whole map ``expand`` spreads ``grid`` into, without spreading it: each
    cell counts by the share of the bilinear weight it gets along each side."""
    along = []
    for axis, length in ((1, h), (2, w)):
        lo, hi, f = _weights(grid.shape[axis], length, 0, length)
        share = np.bincount(lo, weights=1.0 - f.astype(np.float64), minlength=grid.shape[axis])
        share += np.bincount(hi, weights=f.astype(np.float64), minlength=grid.shape[axis])
        along.append(share / length)
    return float(np.einsum("nrcz,r,c->", grid.astype(np.float64), along[0], along[1]) / (grid.shape[0] * grid.shape[3]))


def sampled_map(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray | None:
    """The whole (N, C', H, W) map of ``grid_of``; None when the image is under two cells a side."""
    grid = grid_of(run, batch)
    h, w = batch.shape[2:]
    return None if grid is None else expand(grid, h, w, 0, h, 0, w)
