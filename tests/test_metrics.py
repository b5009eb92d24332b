"""training/metrics.py: the one PSNR (numpy only, used by training, the tools and the ARM check)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import mean_psnr, psnr, psnr_of_mse


def test_psnr_formula_peak_and_perfect_match():
    assert psnr_of_mse(0.01) == pytest.approx(20.0)
    assert psnr_of_mse(25.0, peak=255) == pytest.approx(10 * math.log10(255**2 / 25))
    assert psnr_of_mse(0.0) == math.inf
    ref = np.full((4, 5), 100, np.uint8)
    assert psnr(ref, ref + 5, peak=255) == pytest.approx(10 * math.log10(255**2 / 25))  # no uint8 wrap-around
    assert psnr(ref, ref, peak=255) == math.inf


def test_mean_psnr_averages_per_image():
    clean = np.zeros((2, 3, 3), np.float32)
    test = np.stack([np.full((3, 3), 0.1), np.full((3, 3), 0.01)])
    assert mean_psnr(clean, test) == pytest.approx((20.0 + 40.0) / 2)
    assert psnr(clean, test) < mean_psnr(clean, test)  # the whole set taken as one differs


def test_shapes_must_match():
    with pytest.raises(ValueError, match="one shape"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))
