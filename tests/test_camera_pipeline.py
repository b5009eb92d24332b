"""Synthetic camera noise for training (training/denoise/camera_pipeline.py): fast, no ../shared."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")
from training.denoise.camera_pipeline import camera_batch, sample_params, simulate


def clean_patches(n: int = 6, channels: int = 3, size: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    planes = [0.5 + 0.4 * np.sin(6 * x + k) * np.cos(4 * y - k) for k in range(channels)]
    one = np.stack(planes).astype(np.float32)
    return np.stack([one * (0.4 + 0.1 * i) + 0.05 for i in range(n)])


def test_shapes_dtype_and_range() -> None:
    clean = clean_patches()
    noisy, target, level = camera_batch(clean, np.random.default_rng(0))
    assert noisy.shape == target.shape == clean.shape
    assert noisy.dtype == target.dtype == level.dtype == np.float32
    assert level.shape == (clean.shape[0], 1)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert target.min() >= 0.0 and target.max() <= 1.0
    assert np.all(level > 0)


def test_noise_grows_with_the_requested_level() -> None:
    clean = clean_patches()
    levels = []
    for shot in (1e-4, 1e-3, 1e-2):
        _, _, level = camera_batch(clean, np.random.default_rng(3), shot=shot, jpeg_probability=0.0)
        levels.append(float(level.mean()))
    assert levels[0] < levels[1] < levels[2], levels
    assert levels[2] > 3 * levels[0], levels


def test_noise_is_signal_dependent() -> None:
    """Shot noise: a brighter flat patch is noisier (in linear terms) than a dark one at the same exposure."""
    params = sample_params(np.random.default_rng(1), shot=3e-3, jpeg_probability=0.0,
                           sharpen_probability=0.0, chroma_blur_probability=0.0)
    spread = []
    for grey in (0.05, 0.5):
        rgb = np.full((32, 32, 3), grey)
        noisy, target = simulate(rgb, params, np.random.default_rng(2))
        spread.append(float((noisy - target).std()))
    assert spread[0] != pytest.approx(spread[1], rel=0.05)


def test_same_seed_same_output() -> None:
    clean = clean_patches()
    a = camera_batch(clean, np.random.default_rng(7))
    b = camera_batch(clean, np.random.default_rng(7))
    c = camera_batch(clean, np.random.default_rng(8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_grey_input() -> None:
    clean = clean_patches(channels=1)
    noisy, target, level = camera_batch(clean, np.random.default_rng(0), shot=1e-3)
    assert noisy.shape == clean.shape and target.shape == clean.shape
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0
    assert np.all(level > 1 / 255)
    # The target is the camera's noise-free rendering of the same scene, close to the input.
    assert float(np.abs(target - clean).mean()) < 0.05


def test_rejects_odd_sizes() -> None:
    with pytest.raises(ValueError, match="even H and W"):
        camera_batch(np.zeros((1, 3, 31, 32), np.float32), np.random.default_rng(0))
