"""Any-size inference: pad to the model's size multiple, and cut large images into overlapping
tiles whose margins cover the receptive field, so that tiled output equals whole-image output.

Overlap-tile scheme: each tile is a core block plus ``m`` pixels of real context on every side
that has a neighbour (``m`` at least half the receptive field, rounded up to the size multiple);
only the core of each tile's output is kept. At the image's own borders nothing is added beyond
the few mirrored rows and columns that reach the size multiple: the network zero-pads there, as
it did on its training patches, and a 640x480 frame stays 640x480 instead of growing to 704x544
(a quarter more pixels to compute). So a tile at the image border sees that border exactly as
the whole image does, every kept pixel saw its whole receptive field, tile borders leave no seam,
and since tile origins sit on the size-multiple grid, strided layers see the same sampling grid
as on the whole image. Padding is never materialised: a tile inside the image is a slice of it,
and only a tile that reaches past the edge gathers its rows and columns through mirrored
indices, so memory stays at the input, the output and one tile.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def margin_for(receptive_field: int, multiple: int) -> int:
    return round_up((receptive_field + 1) // 2, multiple)


def mirror_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices ``start..stop-1`` folded into ``0..size-1`` by mirroring without repeating the
    edge pixel (numpy's "reflect"); a 1-pixel axis repeats its only pixel."""
    idx = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= size, period - idx, idx)


def window(batch: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    """``batch`` restricted to ``start..stop-1`` along ``axis``, mirrored past the edges: a view
    when the range lies inside the image (the common case), a gathered copy otherwise."""
    size = batch.shape[axis]
    if 0 <= start and stop <= size:
        return batch[(slice(None),) * axis + (slice(start, stop),)]
    return np.take(batch, mirror_indices(start, stop, size), axis=axis)


def run_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    batch: np.ndarray,
    *,
    multiple: int,
    margin: int,
    tile: int,
    out_channels: int | None = None,
) -> np.ndarray:
    """Apply ``fn`` ((N, C, h, w) tile in ``batch``'s dtype -> (N, C', h, w) float32, h and w
    multiples of ``multiple``) to an (N, C, H, W) batch of any size, ``tile`` x ``tile`` core
    pixels at a time. Returns (N, C', H, W) float32."""
    if tile < multiple:
        raise ValueError(f"tile must be at least the model's size multiple {multiple}, got {tile}")
    n, c, h, w = batch.shape
    m = round_up(margin, multiple)
    core = max(multiple, tile // multiple * multiple)
    h4, w4 = round_up(h, multiple), round_up(w, multiple)
    if h4 <= core and w4 <= core and (h4, w4) == (h, w):
        return fn(np.ascontiguousarray(batch))  # one tile, nothing to pad or crop: no gather, no output copy
    out = np.empty((n, out_channels or c, h, w), np.float32)
    for y0 in range(0, h4, core):
        ch = min(core, h4 - y0)
        band = window(batch, 2, max(0, y0 - m), min(h4, y0 + ch + m))  # context only where there is image
        for x0 in range(0, w4, core):
            cw = min(core, w4 - x0)
            result = fn(np.ascontiguousarray(window(band, 3, max(0, x0 - m), min(w4, x0 + cw + m))))
            keep_h, keep_w = min(ch, h - y0), min(cw, w - x0)  # the last row/column of tiles is cropped
            dy, dx = y0 - max(0, y0 - m), x0 - max(0, x0 - m)
            out[:, :, y0 : y0 + keep_h, x0 : x0 + keep_w] = result[:, :, dy : dy + keep_h, dx : dx + keep_w]
    return out
