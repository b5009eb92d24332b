"""Is the noise white, and how strong? A classical reading from the flattest blocks, for the blind
path to use where the learned estimate is weakest.

Why: the learned estimators read the level a denoiser should be told on real camera photos, whose
noise is correlated (demosaicing, noise reduction, JPEG), but they cannot read a level under about
8 (on white noise of sigma 5, or a clean photo, they say 8-9: issue 52,
docs/experiments/2026-12-06-blind-calibration.md). White noise has a signature that camera noise
and image texture lack: averaging 2x2 pixels halves its standard deviation. So, on crops like those
the learned estimator reads (``level_grid``), each plane's detail (the plane minus its 3x3 mean)
is measured in 8x8 blocks at full and at half resolution; in the flattest twentieth of the blocks
(texture left out) the ratio half / full is about 0.5 for white noise and 1.1-1.9 for camera
noise, JPEG blocking and most photo texture, and the full-resolution figure divided by
``FLAT_GAIN`` is the white noise's sigma (how close the models then come to the told figure:
docs/benchmarks/blind.md). Blocks of one constant value (clipped highlights, flat synthetic areas) say
nothing about noise and are left out.
"""

from __future__ import annotations

import numpy as np

from edge_ae.denoise.level_grid import CROP, centres
from edge_ae.image import SCALES

BLOCK = 8
# One crop per READ_CELL x READ_CELL cell, at least 2 x 2 crops (a small image read at one crop
# could land on texture only); denser than the learned estimator's cells, as numpy on a crop
# costs less than the estimator.
READ_CELL = 192
PERCENTILE = 5  # the flattest twentieth (a tenth let texture in: issue 52's record, second session)
FLAT_GAIN = 0.783  # the flattest twentieth of 8x8 blocks of pure white noise reads 0.783 sigma
# Whiteness ratio (half / full resolution) at which the reading counts as white, fully and not at all.
WHITE, NOT_WHITE = 0.85, 1.05


def _block_power(crops: np.ndarray) -> np.ndarray:
    """Mean square detail (the crop minus its 3x3 mean, edges mirrored as OpenCV's BORDER_REFLECT)
    of every 8x8 block of a (K, S, S) stack of crops, blocks of one constant value left out."""
    padded = np.pad(crops, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    mean = (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) * np.float32(1.0 / 9.0)
    detail = crops - mean
    k, size = crops.shape[0], crops.shape[1] // BLOCK * BLOCK
    blocks = np.square(detail[:, :size, :size]).reshape(k, size // BLOCK, BLOCK, size // BLOCK, BLOCK)
    power = blocks.mean(axis=(2, 4)).ravel()
    return power[power > 1e-6]


def flat_reading(batch: np.ndarray) -> tuple[float, float] | None:
    """(sigma on the 0-255 scale if the noise is white, whiteness ratio) of an (N, C, H, W) batch
    (uint8, uint16 or float32 in [0, 1]); None when the image is too small or has no textured
    block to read."""
    _, _, h, w = batch.shape
    size = min(CROP, h, w) // (2 * BLOCK) * (2 * BLOCK)
    if size < 2 * BLOCK:
        return None
    ys, xs = centres(h, max(2, h // READ_CELL), size), centres(w, max(2, w // READ_CELL), size)
    planes = batch.reshape(-1, h, w)
    crops = np.stack([planes[:, y : y + size, x : x + size] for y in ys for x in xs], axis=1).reshape(-1, size, size)
    crops = crops.astype(np.float32) * np.float32(255.0 / SCALES[batch.dtype])
    half = crops.reshape(-1, size // 2, 2, size // 2, 2).mean(axis=(2, 4))  # 2x2 averages (OpenCV's INTER_AREA)
    full_power, half_power = _block_power(crops), _block_power(half)
    if len(full_power) == 0 or len(half_power) == 0:
        return None
    s_full = float(np.sqrt(np.percentile(full_power, PERCENTILE)))
    s_half = float(np.sqrt(np.percentile(half_power, PERCENTILE)))
    return s_full / FLAT_GAIN, s_half / s_full


def white_weight(ratio: float) -> float:
    """How far to trust the white-noise reading: 1 at a ratio of ``WHITE`` or less, 0 from
    ``NOT_WHITE`` up, linear between."""
    return float(np.clip((NOT_WHITE - ratio) / (NOT_WHITE - WHITE), 0.0, 1.0))
