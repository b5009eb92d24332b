"""Any-size inference: pad to the model's size multiple, and cut large images into overlapping
tiles whose margins cover the receptive field, so that tiled output equals whole-image output.

Overlap-tile scheme: the image is mirror-padded by a margin ``m`` (at least half the receptive
field, rounded up to the size multiple). Each tile is a core block plus ``m`` pixels of real
context on every side; only the core of each tile's output is kept. Because every kept pixel
saw its whole receptive field, tile borders leave no seam, and since tile origins sit on the
size-multiple grid, strided layers see the same sampling grid as on the whole image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def margin_for(receptive_field: int, multiple: int) -> int:
    return round_up((receptive_field + 1) // 2, multiple)


def run_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    batch: np.ndarray,
    *,
    multiple: int,
    margin: int,
    tile: int,
    out_channels: int | None = None,
) -> np.ndarray:
    """Apply ``fn`` ((N, C, h, w) -> (N, C', h, w), h and w multiples of ``multiple``) to an
    (N, C, H, W) batch of any size, ``tile`` x ``tile`` core pixels at a time."""
    if tile < multiple:
        raise ValueError(f"tile must be at least the model's size multiple {multiple}, got {tile}")
    n, c, h, w = batch.shape
    m = round_up(margin, multiple)
    core = max(multiple, tile // multiple * multiple)
    h4, w4 = round_up(h, multiple), round_up(w, multiple)
    # Mirror padding needs at least 2 pixels along an axis; a 1-pixel axis is repeated instead.
    mode = "reflect" if min(h, w) >= 2 else "symmetric"
    padded = np.pad(batch, ((0, 0), (0, 0), (m, m + h4 - h), (m, m + w4 - w)), mode=mode)
    out = np.empty((n, out_channels or c, h4, w4), np.float32)
    for y0 in range(0, h4, core):
        ch = min(core, h4 - y0)
        for x0 in range(0, w4, core):
            cw = min(core, w4 - x0)
            result = fn(np.ascontiguousarray(padded[:, :, y0 : y0 + ch + 2 * m, x0 : x0 + cw + 2 * m]))
            out[:, :, y0 : y0 + ch, x0 : x0 + cw] = result[:, :, m : m + ch, m : m + cw]
    return out[:, :, :h, :w]
