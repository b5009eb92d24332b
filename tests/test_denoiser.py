"""Denoiser behaviour on the image contract: shapes, dtypes, alpha, channel adaptation, any
size, and tiled output equal to whole-image output."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ae import Denoiser, ImageError, estimate_sigma
from edge_ae.denoise.tiling import margin_for, run_tiled

SHAPES = [(37, 53), (37, 53, 1), (37, 53, 3), (37, 53, 4)]
DTYPES = [np.uint8, np.uint16, np.float32]


def _image(rng, shape, dtype):
    x = rng.random(shape, dtype=np.float32)
    if dtype == np.float32:
        return x
    top = np.iinfo(dtype).max
    return (x * top).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["gray", "color"])
def test_shape_and_dtype_round_trip(tiny_models, rng, shape, dtype, which):
    image = _image(rng, shape, dtype)
    out = Denoiser(tiny_models[which], threads=1)(image, sigma=10)
    assert out.shape == image.shape and out.dtype == image.dtype
    if len(shape) == 3 and shape[2] == 4:
        np.testing.assert_array_equal(out[:, :, 3], image[:, :, 3])  # alpha untouched


def test_gray_model_on_color_runs_per_channel(tiny_models, rng):
    """A gray model on BGR treats each plane as its own gray image."""
    d = Denoiser(tiny_models["gray"], threads=1)
    image = rng.random((40, 48, 3), dtype=np.float32)
    out = d(image, sigma=15)
    for c in range(3):
        np.testing.assert_allclose(out[:, :, c], d(np.ascontiguousarray(image[:, :, c]), sigma=15), atol=1e-6)


def test_color_model_on_gray_replicates(tiny_models, rng):
    d = Denoiser(tiny_models["color"], threads=1)
    grey = rng.random((40, 48), dtype=np.float32)
    out = d(grey, sigma=15)
    full = d(np.repeat(grey[:, :, None], 3, axis=2), sigma=15)
    np.testing.assert_allclose(out, full.mean(axis=2), atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 7), (4, 4), (130, 9)])
def test_any_size(tiny_models, rng, size):
    image = rng.random(size, dtype=np.float32)
    assert Denoiser(tiny_models["gray"], threads=1, tile=64)(image, sigma=5).shape == size


@pytest.mark.parametrize("which", ["gray", "color"])
def test_tiled_equals_whole(tiny_models, rng, which):
    shape = (301, 277) if which == "gray" else (301, 277, 3)
    image = rng.random(shape, dtype=np.float32)
    whole = Denoiser(tiny_models[which], threads=1, tile=1024)(image, sigma=20)
    tiled = Denoiser(tiny_models[which], threads=1, tile=64)(image, sigma=20)
    assert np.max(np.abs(whole - tiled)) <= 1e-4


def test_tiling_actually_splits_and_short_margin_shows_seams(tiny_models, rng):
    """Guards the test above: with 64px tiles the image really is cut, and a margin smaller than
    the receptive field would change the output (so equality is not trivially true)."""
    from edge_ae.model.loading import load_model

    model = load_model(tiny_models["gray"])
    batch = rng.random((1, 1, 200, 200), dtype=np.float32)
    calls = []

    def infer(tile):
        calls.append(tile.shape)
        return model.run({"image": tile, "sigma": np.full((1, 1), 0.1, np.float32)})[0]

    good = run_tiled(infer, batch, multiple=4, margin=margin_for(model.spec.receptive_field, 4), tile=64)
    assert len(calls) == 16
    whole = run_tiled(infer, batch, multiple=4, margin=margin_for(model.spec.receptive_field, 4), tile=1024)
    assert calls[-1] == (1, 1, 200, 200)  # one tile, and no margin added at the image's own borders
    short = run_tiled(infer, batch, multiple=4, margin=0, tile=64)
    assert np.max(np.abs(good - whole)) <= 1e-4
    assert np.max(np.abs(short - whole)) > 1e-3


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((10, 10, 2), np.uint8), "HxW, HxWx1, HxWx3 or HxWx4"),
        (np.zeros((10, 10), np.int32), "uint8, uint16 or float32"),
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.zeros((2, 10, 10, 3), np.uint8), "HxW, HxWx1"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_are_refused_clearly(tiny_models, bad, message):
    with pytest.raises(ImageError, match=message.replace("[", r"\[")):
        Denoiser(tiny_models["gray"], threads=1)(bad)


def test_bad_sigma(tiny_models, rng):
    with pytest.raises(ValueError, match="sigma"):
        Denoiser(tiny_models["gray"], threads=1)(rng.random((8, 8), dtype=np.float32), sigma=-1)


@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0, 50.0])
def test_noise_estimate(rng, sigma):
    # A smooth image plus known Gaussian noise: the estimate is within 15%.
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    clean = 0.5 + 0.3 * np.sin(x / 17) * np.cos(y / 23)
    noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma / 255
    assert estimate_sigma(noisy.astype(np.float32)) == pytest.approx(sigma, rel=0.15)


def test_noise_estimate_ignores_dtype_scale(rng):
    noisy = np.clip(0.5 + rng.standard_normal((128, 128)) * 20 / 255, 0, 1)
    as8 = (noisy * 255 + 0.5).astype(np.uint8)
    as16 = (noisy * 65535 + 0.5).astype(np.uint16)
    assert estimate_sigma(as8) == pytest.approx(estimate_sigma(as16), rel=0.05)


@pytest.mark.parametrize("size", [1, 2, 3, 17])
def test_mirror_indices_match_numpy_reflect(size):
    from edge_ae.denoise.tiling import mirror_indices

    a = np.arange(size)
    for m in (1, 4, 40):
        expected = np.pad(a, (m, m), mode="reflect" if size > 1 else "edge")
        np.testing.assert_array_equal(a[mirror_indices(-m, size + m, size)], expected)


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_histogram_median_is_exact(rng, n):
    from edge_ae.denoise.noise_level import median_abs

    values = rng.integers(-300, 300, n).astype(np.int32)
    assert median_abs(values) == np.median(np.abs(values))
    assert median_abs(values.astype(np.float32)) == np.median(np.abs(values))


def test_providers_choose_the_execution_provider(tiny_models, rng):
    """``providers=`` reaches onnxruntime (the CPU one by default); one that this onnxruntime
    lacks is one clear ModelError naming what is available."""
    from edge_ae import ModelError

    image = rng.random((16, 16), dtype=np.float32)
    default = Denoiser(tiny_models["gray"], threads=1)
    chosen = Denoiser(tiny_models["gray"], threads=1, providers=["CPUExecutionProvider"])
    assert chosen._fixed.session.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(default(image, sigma=10), chosen(image, sigma=10))
    with pytest.raises(ModelError, match="NoSuchExecutionProvider.*available"):
        Denoiser(tiny_models["gray"], providers=["NoSuchExecutionProvider"])


def test_denoise_returns_the_level_with_the_image_per_call(tiny_models, rng):
    """``denoise`` gives each call its own level (threads may share one Denoiser); calling the
    denoiser still sets ``last_sigma`` for existing callers."""
    from concurrent.futures import ThreadPoolExecutor

    d = Denoiser(tiny_models["gray"], threads=1)
    image = rng.random((40, 48), dtype=np.float32)
    out, level = d.denoise(image, sigma=10, strength=2.0)
    np.testing.assert_array_equal(out, d(image, sigma=10, strength=2.0))
    assert level == d.last_sigma == pytest.approx(20.0)
    with ThreadPoolExecutor(4) as pool:
        levels = list(pool.map(lambda s: d.denoise(image, sigma=s).level, [1.0, 5.0, 9.0, 13.0] * 5))
    assert levels == [1.0, 5.0, 9.0, 13.0] * 5
