"""Estimate the noise level of an image when the user gives none.

Robust median estimator on the finest diagonal Haar wavelet band (Donoho & Johnstone):
sigma = median(|HH|) / 0.6745. The diagonal band holds little image structure, so the median
of its magnitudes tracks the noise rather than edges. Returned on the 0-255 scale.
"""

from __future__ import annotations

import numpy as np

from edge_ae.image import SCALES, check_image


def kth_smallest_from_counts(counts: np.ndarray, k: int) -> int:
    """The k-th smallest (0-based) value of integers given by their histogram ``counts``."""
    return int(np.searchsorted(np.cumsum(counts), k + 1))


def median_abs(values: np.ndarray) -> float:
    """Median of ``|values|`` (a 1-D array); integer input takes a histogram, which is exact and,
    on a live video frame, several times faster than sorting."""
    magnitudes = np.abs(values)
    if magnitudes.dtype.kind != "i":
        return float(np.median(magnitudes))
    counts = np.bincount(magnitudes)
    n = magnitudes.size
    upper = kth_smallest_from_counts(counts, n // 2)
    if n % 2:
        return float(upper)
    return (kth_smallest_from_counts(counts, n // 2 - 1) + upper) / 2.0


def estimate_sigma(image: np.ndarray) -> float:
    """Noise standard deviation of ``image`` on the 0-255 scale (averaged over color planes;
    alpha ignored). Images under 8x8 pixels return 0."""
    image = check_image(image)
    planes = image if image.ndim == 3 else image[:, :, None]
    h, w = planes.shape[0] // 2 * 2, planes.shape[1] // 2 * 2
    if h < 8 or w < 8:
        return 0.0
    # uint8 and uint16 stay integers (exact, and a histogram gives the median); float32 stays float.
    work = np.int32 if image.dtype.kind == "u" else np.float32
    sigmas = []
    for c in range(min(planes.shape[2], 3)):
        p = planes[:h, :w, c].astype(work)  # one contiguous plane at a time
        hh = p[0::2, 0::2] - p[0::2, 1::2] - p[1::2, 0::2] + p[1::2, 1::2]  # twice the Haar HH band
        sigmas.append(median_abs(hh.ravel()) / 2.0 / 0.6745)
    return float(np.mean(sigmas) / SCALES[image.dtype] * 255.0)
