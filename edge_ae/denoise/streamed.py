"""A large image denoised tile by tile from end to end: the noise estimate, the model, the gate and
the conversion back to the image's dtype all run on one tile at a time, and each tile's kept core
goes straight into the output image.

Why: done in whole-image steps, a 12 MP photo held about ten full-size float32 arrays at once
(the noise map, its scaled and broadcast copies, the float input and the model's input and
output): 1.1 GB, and 4.2 GB at 60 MP (issue 51). Here memory is the input, the output and a few
tiles. The tiles, the model's inputs and hence its outputs are those of the whole-image path
(``tiling.run_tiled``); what differs:

* the blind noise map is computed for each tile's window only (``blind.BlindLevel.region``: the
  image-wide white-noise reading and grid of cell levels, taken once, spread over the window; an
  image too small for a grid has the estimator run on a crop aligned to its size multiple, with
  its receptive field of real context, the crop's borders dropped), which equals the
  whole-image map up to float rounding. ``tests/test_denoiser_memory.py`` checks the two paths
  against each other;
* the mean level of a map model (``last_sigma``) is summed tile by tile in float64 instead of
  numpy's float32 mean (a model without a map input is fed the blind map's mean from its cells,
  ``BlindLevel.mean``, on both paths);
* the gate's shortcut (no blend where every level is at least ``GATE_LEVEL``) is taken per tile,
  not per image, which differs by float rounding where it matters;
* the texture gate (blind call) reads each tile's core with its few pixels of context, summed
  exactly (``texture_gate.py``): the same weights as on the whole image.

The ensemble (``ensemble`` > 1) keeps the whole-image path: its flipped copies pad the image on
other sides, so a tile-wise ensemble would not give the same pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from edge_ae import image as im
from edge_ae.denoise import gate, texture_gate
from edge_ae.denoise.blind import NoiseEstimate
from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.denoise.output import checked_output
from edge_ae.denoise.tiling import Tile, margin_for, mirror_indices, read_tile, tiles, window

if TYPE_CHECKING:
    from edge_ae.denoise.blind import BlindLevel
    from edge_ae.model.loading import LoadedModel


class Denoiser(Protocol):
    """What this module uses of ``edge_ae.denoise.denoiser.Denoiser`` (which imports this module:
    named here as a protocol so the import points one way)."""

    def _tile_for(self, size: tuple[int, ...]) -> int: ...

    def _estimator_for(self, model: LoadedModel) -> LoadedModel | None: ...

    def blind_level(self, image: np.ndarray, *, model: LoadedModel | None = None) -> BlindLevel | None: ...

    def _level(self, image: np.ndarray, planes: im.Planes, model: LoadedModel,
               sigma: float | np.ndarray) -> float | np.ndarray: ...

    @staticmethod
    def _map_for(level: float | np.ndarray, batch: np.ndarray) -> np.ndarray: ...


class _Estimated:
    """The blind noise map of ``image``, computed for one region at a time from its image-wide
    parts (``blind.BlindLevel``: the white-noise reading and the learned grid, taken once)."""

    def __init__(self, denoiser: Denoiser, image: np.ndarray, model: LoadedModel, estimator: LoadedModel) -> None:
        level = denoiser.blind_level(image, model=model)
        assert level is not None  # an estimator exists: _Estimated is built only then
        self.level = level

    def region(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The map (0-255, (r1-r0) x (c1-c0) x C) on rows r0:r1, columns c0:c1 of the image."""
        return self.level.region(r0, r1, c0, c1)

    def mean(self) -> float:
        """The mean of the whole map (``BlindLevel.mean``: from the cells, as the whole-image path)."""
        return self.level.mean()


class _Given:
    """A noise map the caller gave (HxWxC, 0-255)."""

    def __init__(self, level: np.ndarray) -> None:
        self.level = level

    def region(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return self.level[r0:r1, c0:c1]

    def mean(self) -> float:
        return float(self.level.mean(dtype=np.float64))


def _batch(color: np.ndarray, channels: int) -> tuple[np.ndarray, str]:
    """``im.adapt_channels`` without its copy: a gray image for a color model is repeated as a
    broadcast view (the tiles are copied anyway), not three full-size planes."""
    if color.shape[2] == 1 and channels == 3:
        chw = color.transpose(2, 0, 1)
        return np.broadcast_to(chw[None], (1, 3) + chw.shape[1:]), "replicate"
    return im.adapt_channels(color, channels)


def _window_levels(levels: _Estimated | _Given, t: Tile, h: int, w: int) -> np.ndarray:
    """The map on a tile's window, mirrored past the image's edges as the window's pixels are."""
    ys, xs = mirror_indices(t.top, t.bottom, h), mirror_indices(t.left, t.right, w)
    r0, r1, c0, c1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    part = levels.region(r0, r1, c0, c1)
    if t.bottom > h or t.right > w:  # past the image: gather the mirrored rows and columns
        part = part[ys - r0][:, xs - c0]
    return part


def denoise_in_tiles(denoiser: Denoiser, image: np.ndarray, planes: im.Planes, model: LoadedModel, *,
                     sigma: float | np.ndarray | NoiseEstimate | None, strength: float) -> tuple[np.ndarray, float | None]:
    """``Denoiser.__call__`` (ensemble 1) for an image of more than one tile. Returns the denoised
    image and the mean level used (``last_sigma``)."""

    spec = model.spec
    c = spec.channels
    batch, how = _batch(planes.color, c)
    n, _, h, w = batch.shape
    tile = denoiser._tile_for((h, w))
    levels: float | _Estimated | _Given = 0.0
    if spec.noise_input:
        if sigma is None:
            estimator = denoiser._estimator_for(model)
            levels = float(estimate_sigma(image)) if estimator is None else _Estimated(denoiser, image, model, estimator)
        else:
            given = denoiser._level(image, planes, model, sigma.level if isinstance(sigma, NoiseEstimate) else sigma)
            levels = _Given(given) if isinstance(given, np.ndarray) else float(given)
    # The blind call keeps the photo's own texture (texture_gate.py), from each tile's window; so
    # does a blind estimate given back.
    not_white = 0.0
    if isinstance(levels, _Estimated):
        not_white = 1.0 - levels.level.white
    elif isinstance(sigma, NoiseEstimate) and spec.noise_input:
        not_white = 1.0 - sigma.white
    feed_map = spec.noise_input and spec.noise_map and not isinstance(levels, float)
    if not isinstance(levels, float) and not feed_map:  # a model fed one level: the map's mean
        levels = levels.mean() if spec.noise_input else 0.0
    scalar = float(levels) * float(strength) if isinstance(levels, float) else None
    sigma_feed = None if scalar is None else np.full((n, 1), scalar / 255.0, np.float32)
    keep_all = gate.weight(scalar) if spec.noise_input and scalar is not None else None
    margin = margin_for(spec.receptive_field, spec.size_multiple)

    out = np.empty(planes.shape, planes.dtype)
    if planes.alpha is not None:
        out[:, :, 3] = planes.alpha
    color_out = out if out.ndim == 3 else out[:, :, None]
    total, count = 0.0, 0
    for t in tiles(h, w, multiple=spec.size_multiple, margin=margin, tile=tile):
        rows, cols = t.core
        pixels = read_tile(batch, t)
        if scalar is None:  # a map model fed the blind or given map
            assert not isinstance(levels, float)
            level = _window_levels(levels, t, h, w) * np.float32(strength)
            feed = np.concatenate([im.to_float(pixels), denoiser._map_for(level, pixels)], axis=1)
            result = model.run({"image": np.ascontiguousarray(feed[:, :c]), "sigma": np.ascontiguousarray(feed[:, c:])})[0]
            core_level = level[rows, cols]
            total += float(core_level.sum(dtype=np.float64))
            count += core_level.size
            keep = gate.weight(core_level)
        else:
            if spec.noise_map:  # a map model fed one level everywhere
                feed = np.concatenate([im.to_float(pixels), denoiser._map_for(scalar, pixels)], axis=1)
                result = model.run({"image": np.ascontiguousarray(feed[:, :c]), "sigma": np.ascontiguousarray(feed[:, c:])})[0]
            else:
                feeds = {"image": im.to_float(pixels)}
                if spec.noise_input and sigma_feed is not None:
                    feeds["sigma"] = sigma_feed
                result = model.run(feeds)[0]
            feed = pixels
            keep = keep_all
        result = checked_output(model, result, feed, channels=c)
        core = result[:, :, rows, cols]
        if not_white > 0.0:
            halo = texture_gate.HALO  # the core with its context, mirrored past the image as padded() does
            around = window(window(batch[:, :c], 2, t.y - halo, t.y + t.height + halo), 3, t.x - halo,
                            t.x + t.width + halo)
            texture = texture_gate.weight(around, gate.mean_level(core_level if scalar is None else scalar), not_white,
                                          context=halo)
            if texture is not None:
                keep = texture if keep is None else texture * keep
        if keep is not None:
            source = batch[:, :c, t.y : t.y + t.height, t.x : t.x + t.width]
            core = gate.blend(im.to_float(np.ascontiguousarray(source)), core, keep)
        color_out[t.y : t.y + t.height, t.x : t.x + t.width, :planes.color.shape[2]] = im.from_float(
            im.restore_channels(core, how), planes.dtype)
    if not spec.noise_input:
        return out, None
    return out, scalar if scalar is not None else total / count
