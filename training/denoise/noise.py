"""Noise models for training denoisers.

* ``gaussian``: blind additive white Gaussian noise, sigma drawn per image from a range
  (the DnCNN/FFDNet protocol, not clipped).
* ``camera``: signal-dependent Poisson-Gaussian noise (shot + read noise) followed, for some
  images, by mild JPEG compression, so the models also help on real camera frames.

Each returns the noisy batch and the per-image noise level the model is told (the standard
deviation on the [0, 1] scale; for signal-dependent noise, the root-mean-square over the image).
"""

from __future__ import annotations

import cv2
import numpy as np


def gaussian(clean: np.ndarray, rng: np.random.Generator, sigma_max: float) -> tuple[np.ndarray, np.ndarray]:
    sigma = rng.uniform(0.0, sigma_max, size=(clean.shape[0], 1)).astype(np.float32)
    noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * sigma[:, :, None, None]
    return noisy, sigma


def camera(
    clean: np.ndarray, rng: np.random.Generator, sigma_max: float, jpeg_probability: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    n = clean.shape[0]
    # Read noise up to sigma_max/2, shot noise such that a mid-gray pixel sees up to sigma_max.
    read = rng.uniform(0.0, sigma_max / 2, size=(n, 1, 1, 1)).astype(np.float32)
    gain = rng.uniform(0.0, sigma_max**2 / 0.5, size=(n, 1, 1, 1)).astype(np.float32)
    var = read**2 + gain * np.clip(clean, 0.0, 1.0)
    noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.sqrt(var)
    sigma = np.sqrt(var.reshape(n, -1).mean(axis=1, keepdims=True))
    noisy = np.clip(noisy, 0.0, 1.0)  # a camera's sensor saturates
    for i in range(n):
        if rng.random() < jpeg_probability:
            noisy[i] = _jpeg(noisy[i], int(rng.integers(70, 96)))
    return noisy.astype(np.float32), sigma.astype(np.float32)


def _jpeg(chw: np.ndarray, quality: int) -> np.ndarray:
    hwc = np.ascontiguousarray((chw.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8))
    ok, buf = cv2.imencode(".jpg", hwc, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    out = decoded.astype(np.float32) / 255.0
    if out.ndim == 2:
        out = out[:, :, None]
    return out.transpose(2, 0, 1)


def mixed(
    clean: np.ndarray, rng: np.random.Generator, sigma_max: float, camera_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian for most images, camera noise for ``camera_fraction`` of the batch."""
    k = int(round(clean.shape[0] * camera_fraction))
    g_noisy, g_sigma = gaussian(clean[k:], rng, sigma_max)
    if k == 0:
        return g_noisy, g_sigma
    c_noisy, c_sigma = camera(clean[:k], rng, sigma_max)
    return np.concatenate([c_noisy, g_noisy]), np.concatenate([c_sigma, g_sigma])
