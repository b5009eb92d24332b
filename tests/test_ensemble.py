"""Geometric self-ensemble: the eight flips/transposes, their inverses, and the Denoiser and CLI
options that average a model over them."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ae import Denoiser
from edge_ae.cli.main import main
from edge_ae.denoise.ensemble import averaged, inverse, transform


def test_inverse_undoes_each_transform_and_all_eight_differ(rng):
    batch = rng.random((2, 3, 5, 7), dtype=np.float32)
    seen = []
    for i in range(8):
        t = transform(batch, i)
        assert t.shape == ((2, 3, 7, 5) if i >= 4 else batch.shape)
        np.testing.assert_array_equal(inverse(t, i), batch)
        assert not any(t.shape == s.shape and np.array_equal(t, s) for s in seen)
        seen.append(t)


def test_averaged_over_an_equivariant_function_changes_nothing(rng):
    batch = rng.random((1, 1, 6, 9), dtype=np.float32)
    np.testing.assert_allclose(averaged(lambda x: 2 * x, batch, 8), 2 * batch, atol=1e-6)


def test_averaged_over_a_shift_is_the_mean_of_the_undone_copies(rng):
    """A left shift is not flip-invariant, so the average must really combine undone outputs."""
    batch = rng.random((1, 1, 4, 6), dtype=np.float32)

    def shift(x):
        return np.roll(x, -1, axis=3).astype(np.float32)

    expected = np.mean([inverse(shift(transform(batch, i)), i) for i in range(4)], axis=0)
    np.testing.assert_allclose(averaged(shift, batch, 4), expected, atol=1e-6)
    assert not np.allclose(averaged(shift, batch, 4), shift(batch))


@pytest.mark.parametrize("which", ["gray", "color"])
@pytest.mark.parametrize("copies", [2, 8])
def test_denoiser_ensemble_is_the_mean_over_flipped_images(tiny_models, rng, which, copies):
    shape = (37, 53) if which == "gray" else (37, 53, 3)
    image = rng.random(shape, dtype=np.float32)
    single = Denoiser(tiny_models[which], threads=1)
    out = Denoiser(tiny_models[which], threads=1, ensemble=copies)(image, sigma=20)
    assert out.shape == image.shape and out.dtype == image.dtype

    def as_batch(x):  # HxW(xC) -> (1, C, H, W)
        return np.moveaxis(x if x.ndim == 3 else x[:, :, None], 2, 0)[None]

    def from_batch(b):
        x = np.moveaxis(b[0], 0, 2)
        return x[:, :, 0] if which == "gray" else x

    copies_out = [inverse(as_batch(single(np.ascontiguousarray(from_batch(transform(as_batch(image), i))), sigma=20)), i)
                  for i in range(copies)]
    np.testing.assert_allclose(out, from_batch(np.mean(copies_out, axis=0)), atol=1e-5)


@pytest.mark.parametrize("bad", [0, 3, 16, True, 2.0, "8"])
def test_denoiser_refuses_other_copy_counts(tiny_models, bad):
    with pytest.raises(ValueError, match="ensemble must be one of 1, 2, 4, 8"):
        Denoiser(tiny_models["gray"], ensemble=bad)


def test_cli_ensemble(tiny_models, tmp_path, rng, capsys):
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), (rng.random((30, 44, 3)) * 255).astype(np.uint8))
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]),
                 "--ensemble", "4"]) == 0
    assert (tmp_path / "out" / "a.png").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["denoise", str(src), "-o", str(tmp_path / "out3"), "--ensemble", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--ensemble" in err and "Traceback" not in err
    assert not (tmp_path / "out3").exists()
