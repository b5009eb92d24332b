"""Keep a photo's texture on the blind path: where the input has much more local detail than the
noise level read there, the denoiser's change is mostly blended back.

Why: on real photos the learned estimator cannot tell fine texture from camera noise (both read at
its floor, about 7 on the 0-255 scale: docs/experiments/2026-12-06-blind-calibration.md), so a
clean textured photo came back smoothed (McMaster as it is: 33 dB against the input at worst,
issue 52's bar is 45). Where the input's local standard deviation (luma, 5x5) is well above the
level, the structure there is the photo's own, not noise of that level: the change is scaled down
to ``FLOOR`` between ``LOW`` and ``HIGH`` times the level. Real camera noise sits mostly in flat
areas (the local deviation there is about the level), which keep the full change. It is a trade,
not a free gain: four such features were tried (the output's or the input's deviation,
residual/structure correlation, gradient coherence) and all trade clean photos against real noisy
pairs along about the same curve; the setting is the one ``tools/texture_gate_trials.py``'s rule
picks (+1.3 dB on clean McMaster, +1.5 dB on clean Set12, -0.03 / -0.05 dB on the real pairs).

Only the blind call uses it, in proportion to how far the noise is *not* read as white (white noise
has a classical reading the models are told exactly; texture there is not over-read). A told sigma
is the caller's word and is not second-guessed.

A tile's weight comes from its core with ``HALO`` pixels of real or mirrored context around it
and equals the whole image's there (``tests/test_denoiser_memory.py``).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_ae.image import SCALES

LOW, HIGH = 1.0, 3.0  # local deviation / level where the change starts to be scaled down, and ends
FLOOR = 0.5  # share of the change kept on strong texture
WINDOW = 5
HALO = WINDOW // 2


QUANTUM = 2  # the luma is counted in half steps of the 0-255 scale: whole numbers, summed exactly


def _local_deviation(luma: np.ndarray, context: int) -> np.ndarray:
    """Standard deviation over WINDOW x WINDOW of an HxW float32 luma plane (0-255), float32, in
    ``luma``'s memory; 'valid' when the plane carries ``context`` = HALO pixels of context each
    side, mirrored at its edges (numpy's "reflect", as ``tiling.mirror_indices``) when it carries
    none. The plane is counted in whole 1/QUANTUM steps, so its sums and sums of squares over the
    window are whole numbers under 2**24, exact in float32 in any order: a tile's figures equal
    the whole image's (OpenCV's float filters differ in the last bit between the middle and the
    edges of an array). In place and in float32: on this path large temporaries cost more than
    the arithmetic (fresh pages)."""
    steps = luma
    steps *= np.float32(QUANTUM)
    np.rint(steps, out=steps)
    box = (WINDOW, WINDOW)
    total = cv2.boxFilter(steps, -1, box, normalize=False, borderType=cv2.BORDER_REFLECT_101)
    squares = cv2.boxFilter(np.square(steps, out=steps), -1, box, normalize=False, borderType=cv2.BORDER_REFLECT_101)
    if context:
        total, squares = total[context:-context, context:-context], squares[context:-context, context:-context]
    n = WINDOW * WINDOW
    squares *= np.float32(n)
    squares -= np.square(total, out=total)
    np.maximum(squares, np.float32(0.0), out=squares)
    np.sqrt(squares, out=squares)
    squares *= np.float32(1.0 / (n * QUANTUM))
    return squares


def weight(source: np.ndarray, level: float | np.ndarray, not_white: float, *, context: int = 0) -> np.ndarray | None:
    """Share of the denoiser's change to keep, (N, 1, H, W), for an (N, C, H + 2 context,
    W + 2 context) batch of the input (uint8, uint16 or float32 on [0, 1]) with ``context`` (0 or
    HALO) pixels around the region each side, at ``level`` (0-255: a number, or an HxW map of the
    level averaged over channels); ``not_white`` (0-1) scales the effect. None when it has none."""
    if not_white <= 0.0:
        return None
    n, c, h, w = source.shape
    to_255 = np.float32(255.0 / (SCALES[source.dtype] * c))
    cut = np.float32((1.0 - FLOOR) * min(not_white, 1.0))
    # ramp = clip((deviation - LOW * level) / ((HIGH - LOW) * level), 0, 1), as deviation * per - LOW / (HIGH - LOW)
    per: np.ndarray | np.float32
    if isinstance(level, np.ndarray):
        per = np.float32(1.0 / (HIGH - LOW)) / np.maximum(level.astype(np.float32, copy=False), np.float32(1e-3))
    else:
        per = np.float32(1.0 / ((HIGH - LOW) * max(float(level), 1e-3)))
    offset = np.float32(LOW / (HIGH - LOW))
    out = np.empty((n, 1, h - 2 * context, w - 2 * context), np.float32)
    for i in range(n):
        luma = source[i, 0].astype(np.float32)  # plane by plane: the planes are often interleaved in memory
        for j in range(1, c):
            np.add(luma, source[i, j], out=luma, casting="unsafe")
        luma *= to_255
        deviation = _local_deviation(luma, context)
        deviation *= per
        deviation -= offset
        np.clip(deviation, 0.0, 1.0, out=deviation)
        deviation *= -cut
        deviation += np.float32(1.0)
        out[i, 0] = deviation
    return out
