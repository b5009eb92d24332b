"""Estimate the noise level of an image when the user gives none.

Robust median estimator on the finest diagonal Haar wavelet band (Donoho & Johnstone):
sigma = median(|HH|) / 0.6745. The diagonal band holds little image structure, so the median
of its magnitudes tracks the noise rather than edges. Returned on the 0-255 scale.
"""

from __future__ import annotations

import numpy as np

from edge_ae.image import check_image, to_float


def estimate_sigma(image: np.ndarray) -> float:
    """Noise standard deviation of ``image`` on the 0-255 scale (averaged over colour planes;
    alpha ignored). Images under 8x8 pixels return 0."""
    image = check_image(image)
    planes = image if image.ndim == 3 else image[:, :, None]
    planes = to_float(planes[:, :, :3] if planes.shape[2] == 4 else planes)
    h, w = planes.shape[0] // 2 * 2, planes.shape[1] // 2 * 2
    if h < 8 or w < 8:
        return 0.0
    p = planes[:h, :w]
    hh = (p[0::2, 0::2] - p[0::2, 1::2] - p[1::2, 0::2] + p[1::2, 1::2]) / 2.0
    sigmas = np.median(np.abs(hh.reshape(-1, p.shape[2])), axis=0) / 0.6745
    return float(np.mean(sigmas) * 255.0)
