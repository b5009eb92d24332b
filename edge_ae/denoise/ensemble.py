"""Geometric self-ensemble: run a model on flipped and rotated copies of an image, undo each
transform on the output and average.

A denoiser's errors on the eight flips/rotations of an image are partly independent, so their
average is closer to the clean image (about +0.11 to +0.22 dB PSNR on Set12 and McMaster, measured
by ``tools/bench_denoise.py``) at the price of one model run per copy: a quality mode for still
photos, not for live video. Transforms act on the last two axes of an (N, C, H, W) batch.

The order puts the cheap, shape-keeping transforms first: 2 copies = identity and a left-right
flip; 4 = every flip (both axes); 8 = those four on the transposed image as well.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

COPIES = (1, 2, 4, 8)


def transform(batch: np.ndarray, index: int) -> np.ndarray:
    """The ``index``-th (0-7) flip/transpose of ``batch`` (N, C, H, W)."""
    out = np.swapaxes(batch, 2, 3) if index >= 4 else batch
    if index & 1:
        out = out[..., :, ::-1]
    if index & 2:
        out = out[..., ::-1, :]
    return np.ascontiguousarray(out)


def inverse(batch: np.ndarray, index: int) -> np.ndarray:
    """Undo ``transform(·, index)``: the flips are their own inverse and come off first."""
    out = batch
    if index & 2:
        out = out[..., ::-1, :]
    if index & 1:
        out = out[..., :, ::-1]
    if index >= 4:
        out = np.swapaxes(out, 2, 3)
    return np.ascontiguousarray(out)


def check_copies(copies: int) -> int:
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or int(copies) not in COPIES:
        raise ValueError(f"ensemble must be one of {', '.join(map(str, COPIES))} (copies of the image); got {copies!r}")
    return int(copies)


def averaged(fn: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, copies: int) -> np.ndarray:
    """Mean of ``inverse(fn(transform(batch, i)), i)`` over the first ``copies`` transforms;
    ``fn`` maps (N, C, H, W) to (N, C', H, W) float32 for any H and W."""
    copies = check_copies(copies)
    first = fn(batch)
    if copies == 1:  # the live-video path: no copy, no extra pass over the frame
        return first
    total = first.astype(np.float32, copy=True)  # never accumulate into the model's own buffer
    for i in range(1, copies):
        total += inverse(fn(transform(batch, i)), i)
    total /= copies
    return total
