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

from collections.abc import Callable, Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Tile:
    """One tile of the overlap-tile scheme. ``top:bottom, left:right`` is the window the model
    reads, in the coordinates of the image padded to the size multiple (rows and columns past the
    image are mirrored, ``window``); ``y, x`` is the origin of its core in the image and
    ``height x width`` the part of the core kept (the last row and column of tiles are cropped to
    the image)."""

    top: int
    bottom: int
    left: int
    right: int
    y: int
    x: int
    height: int
    width: int

    @property
    def core(self) -> tuple[slice, slice]:
        """Rows and columns of the kept core within the window (and so within the model's output)."""
        dy, dx = self.y - self.top, self.x - self.left
        return slice(dy, dy + self.height), slice(dx, dx + self.width)


def one_tile(h: int, w: int, *, multiple: int, tile: int) -> bool:
    """Whether an h x w image goes through the model whole (no padding, no tiles)."""
    core = max(multiple, tile // multiple * multiple)
    h4, w4 = round_up(h, multiple), round_up(w, multiple)
    return h4 <= core and w4 <= core and (h4, w4) == (h, w)


def tiles(h: int, w: int, *, multiple: int, margin: int, tile: int) -> Iterator[Tile]:
    """The tiles of an h x w image, row by row: ``tile`` x ``tile`` cores on the size-multiple
    grid, each with ``margin`` (rounded up to the multiple) pixels of context where there is image."""
    if tile < multiple:
        raise ValueError(f"tile must be at least the model's size multiple {multiple}, got {tile}")
    m = round_up(margin, multiple)
    core = max(multiple, tile // multiple * multiple)
    h4, w4 = round_up(h, multiple), round_up(w, multiple)
    for y0 in range(0, h4, core):
        ch = min(core, h4 - y0)
        for x0 in range(0, w4, core):
            cw = min(core, w4 - x0)
            yield Tile(max(0, y0 - m), min(h4, y0 + ch + m), max(0, x0 - m), min(w4, x0 + cw + m),
                       y0, x0, min(ch, h - y0), min(cw, w - x0))


def read_tile(batch: np.ndarray, t: Tile) -> np.ndarray:
    """The window of ``t`` in an (N, C, H, W) batch, contiguous, mirrored past the image's edges."""
    return np.ascontiguousarray(window(window(batch, 2, t.top, t.bottom), 3, t.left, t.right))


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
    if one_tile(h, w, multiple=multiple, tile=tile):
        return fn(np.ascontiguousarray(batch))  # one tile, nothing to pad or crop: no gather, no output copy
    out = np.empty((n, out_channels or c, h, w), np.float32)
    for t in tiles(h, w, multiple=multiple, margin=margin, tile=tile):
        rows, cols = t.core
        out[:, :, t.y : t.y + t.height, t.x : t.x + t.width] = fn(read_tile(batch, t))[:, :, rows, cols]
    return out
