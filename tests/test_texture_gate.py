"""The blind path keeps a photo's own texture (issue 52, edge_ae/denoise/texture_gate.py): where the
input's local deviation is far above the level read there, the denoiser's change is scaled down;
white noise and a told sigma are left as they were."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ae import Denoiser
from edge_ae.denoise import texture_gate


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


def _textured(channels: int) -> np.ndarray:
    """A clean 256x256 image made here: smooth shading plus fine luma texture (std 25 before
    clipping, correlated over about a pixel), the kind of detail the learned estimator reads at
    its floor like weak camera noise."""
    import cv2

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    base = 120 + 40 * np.sin(x / 23) * np.cos(y / 31)
    grain = cv2.GaussianBlur(rng.standard_normal((256, 256)).astype(np.float32), (0, 0), 1.0)
    image = np.clip(base + grain / grain.std() * 25, 0, 255).round().astype(np.uint8)
    return image if channels == 1 else np.dstack([image] * 3)


def _shipped(name: str) -> None:
    from edge_ae import list_models

    if name not in {e.name for e in list_models()}:
        pytest.skip(f"{name} is not shipped")


def test_flat_input_keeps_the_whole_change() -> None:
    window = np.full((1, 3, 20, 24), 0.5, np.float32)
    keep = texture_gate.weight(window, 7.0, 1.0, context=texture_gate.HALO)
    assert keep is not None and keep.shape == (1, 1, 16, 20)
    assert texture_gate.weight(window, 7.0, 1.0).shape == (1, 1, 20, 24)  # no context: mirrored at the edges
    np.testing.assert_array_equal(keep, 1.0)


def test_strong_texture_keeps_the_floor_and_white_noise_is_untouched() -> None:
    window = np.zeros((1, 1, 20, 20), np.float32)
    window[:, :, :, ::2] = 1.0  # stripes: a deviation of 127.5 on the 0-255 scale
    np.testing.assert_allclose(texture_gate.weight(window, 7.0, 1.0), texture_gate.FLOOR, rtol=1e-6)
    half = texture_gate.weight(window, 7.0, 0.5)  # half read as white: half the effect
    np.testing.assert_allclose(half, 1 - (1 - texture_gate.FLOOR) / 2, rtol=1e-6)
    assert texture_gate.weight(window, 7.0, 0.0) is None  # white noise: nothing to do
    assert np.all(texture_gate.weight(window, 200.0, 1.0) == 1.0)  # a level above the texture


def test_the_ramp_runs_between_low_and_high_times_the_level() -> None:
    level = 8.0
    rng = np.random.default_rng(3)
    window = rng.standard_normal((1, 1, 40, 40)).astype(np.float32)
    for deviation, want in ((0.5 * level, 1.0), (8 * level, texture_gate.FLOOR)):
        scaled = window / window.std() * deviation / 255
        keep = texture_gate.weight(scaled, level, 1.0)
        assert abs(float(np.median(keep)) - want) < 0.1, (deviation, float(np.median(keep)))


@pytest.mark.parametrize("channels", [1, 3])
def test_a_clean_textured_image_keeps_its_texture(channels, monkeypatch) -> None:
    """Through the default blind call the texture gate brings the output at least 3 dB closer to
    the clean input than the same call without it (measured: gray 38.0 -> 42.0 dB, color
    46.8 -> 50.6 dB)."""
    _shipped("denoise-gray" if channels == 1 else "denoise-color")
    image = _textured(channels)
    d = Denoiser(threads=1, precision="float")
    gated = _psnr(d(image), image)
    assert d.last_sigma > 4.0  # read at the learned floor, not as white noise: the gate is what differs
    with monkeypatch.context() as m:
        m.setattr(texture_gate, "weight", lambda *args: None)
        plain = _psnr(Denoiser(threads=1, precision="float")(image), image)
    assert gated >= plain + 3.0, (gated, plain)


def test_a_told_sigma_is_not_second_guessed(monkeypatch) -> None:
    _shipped("denoise-gray")
    image = _textured(1)
    d = Denoiser("denoise-gray", threads=1, precision="float")
    told = d(image, sigma=7.0)
    with monkeypatch.context() as m:
        m.setattr(texture_gate, "weight", lambda *args: pytest.fail("the texture gate ran on a told sigma"))
        np.testing.assert_array_equal(told, Denoiser("denoise-gray", threads=1, precision="float")(image, sigma=7.0))


def test_an_estimate_given_back_is_the_blind_call() -> None:
    """``Denoiser.estimate`` given back as ``sigma=`` (what the live path does over frames) is the
    blind call, texture gate included; the same map given as a plain array is the caller's word."""
    _shipped("denoise-gray")
    image = _textured(1)
    d = Denoiser("denoise-gray", threads=1, precision="float")
    estimate = d.estimate(image)
    assert estimate is not None and 0.0 <= estimate.white < 1.0
    np.testing.assert_array_equal(d(image, sigma=estimate), d(image))
    assert not np.array_equal(d(image, sigma=estimate.level), d(image))


def test_the_live_path_keeps_texture_as_the_blind_call_does() -> None:
    from edge_ae.video.pipeline import FramePipeline

    _shipped("denoise-color")
    image = _textured(3)
    live = FramePipeline(denoise="denoise-color", threads=1)(image).image
    np.testing.assert_array_equal(live, Denoiser("denoise-color", threads=1)(image))
