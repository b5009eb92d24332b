"""TemporalFilter: averages where the scene is still, follows it where it moves (no ghost),
restores texture from the raw frames, keeps the image contract."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_ae.video.temporal import TemporalFilter

SIGMA = 20.0


def textured(rng: np.random.Generator, h: int = 64, w: int = 96) -> np.ndarray:
    base = cv2.resize(rng.uniform(40, 215, (h // 4, w // 4, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + rng.uniform(-25, 25, (h, w, 3)), 0, 255)  # fine texture a denoiser would smooth


def noisy(clean: np.ndarray, rng: np.random.Generator, sigma: float = SIGMA) -> np.ndarray:
    return np.clip(clean + rng.normal(0, sigma, clean.shape) + 0.5, 0, 255).astype(np.uint8)


def rmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    return float(np.sqrt(d[mask].mean() if mask is not None else d.mean()))


def test_static_scene_noise_falls_with_frames(rng):
    clean = textured(rng)
    filt = TemporalFilter(max_age=8)
    for _ in range(12):
        out = filt(noisy(clean, rng), sigma=SIGMA)
    # A running mean of 8 frames: noise std down by about sqrt(8) (clipping and the capped age aside).
    assert rmse(out, clean) < 0.5 * SIGMA


def test_moving_object_leaves_no_ghost(rng):
    background = np.full((64, 96, 3), 100.0)
    filt = TemporalFilter()
    for t in range(14):
        frame = background.copy()
        x = 4 + 5 * t
        frame[20:40, x:x + 16] = 230.0
        out = filt(noisy(frame, rng), sigma=SIGMA)
    body = np.zeros((64, 96), bool)
    body[20:40, x:x + 16] = True
    left = np.zeros((64, 96), bool)
    left[20:40, x - 5:x] = True  # where the object was a frame ago
    # No trace of the bright object where it was, and the object itself is at full brightness.
    assert out[left].mean() < 100 + 3 * SIGMA / 4
    assert out[body].mean() > 230 - 3 * SIGMA / 4
    assert rmse(out, frame, left) < 1.2 * SIGMA and rmse(out, frame, body) < 1.2 * SIGMA


def test_a_cut_to_another_scene_is_followed_at_once(rng):
    filt = TemporalFilter()
    a, b = textured(rng), textured(np.random.default_rng(99))
    for _ in range(6):
        filt(noisy(a, rng), sigma=SIGMA)
    frame = noisy(b, rng)
    out = filt(frame, sigma=SIGMA)
    assert filt.last_motion_fraction > 0.9
    assert rmse(out, b) < 1.3 * SIGMA and rmse(out, a) > 2 * SIGMA


def test_detail_restoration_brings_back_texture_a_denoiser_smoothed(rng):
    clean = textured(rng)

    def smoothing_denoiser(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (7, 7), 2.0)  # removes noise and texture alike

    blend_only, restored = TemporalFilter(), TemporalFilter()
    for _ in range(12):
        raw = noisy(clean, rng)
        den = smoothing_denoiser(raw)
        a = blend_only(den, sigma=SIGMA)
        b = restored(den, raw=raw, sigma=SIGMA)
    assert rmse(b, clean) < 0.8 * rmse(a, clean)
    assert rmse(b, clean) < rmse(den, clean)


@pytest.mark.parametrize("make", [
    lambda r: r.integers(0, 256, (32, 48), dtype=np.uint8),
    lambda r: r.integers(0, 256, (32, 48, 1), dtype=np.uint8),
    lambda r: r.integers(0, 65536, (32, 48, 3), dtype=np.uint16),
    lambda r: r.random((32, 48, 3), dtype=np.float32),
    lambda r: r.integers(0, 256, (32, 48, 4), dtype=np.uint8),
])
def test_shape_dtype_and_alpha_kept(rng, make):
    filt = TemporalFilter()
    frame = make(rng)
    for _ in range(3):
        out = filt(frame, raw=frame, sigma=5.0)
    assert out.shape == frame.shape and out.dtype == frame.dtype
    np.testing.assert_allclose(out.astype(np.float64), frame.astype(np.float64), atol=1.0 if frame.dtype != np.float32 else 1e-3)
    if frame.ndim == 3 and frame.shape[2] == 4:
        np.testing.assert_array_equal(out[:, :, 3], frame[:, :, 3])


def test_new_resolution_starts_afresh_and_output_is_not_the_state(rng):
    filt = TemporalFilter()
    filt(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    frame = rng.random((24, 20, 3), dtype=np.float32)
    out = filt(frame)
    np.testing.assert_array_equal(out, frame)
    out[:] = 0  # the caller may scribble on what it got
    again = filt(frame)
    assert again.mean() > 0.3


def test_bad_options_are_refused():
    for kwargs in ({"max_age": 0}, {"low": 5, "high": 4}, {"window": 4}, {"grow": 2}):
        with pytest.raises(ValueError):
            TemporalFilter(**kwargs)
