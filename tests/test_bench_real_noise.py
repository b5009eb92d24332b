"""The real-noise benchmark's own pieces (pairing files, metrics, ``evaluate``, the report) on a
tiny pair folder made here; one check on the real pairs when ../shared has them."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, needs_shared
from tools.bench_real_noise import check_output, evaluate, load_pairs, pair_names, psnr, spread, ssim

OFFSET = 5  # the "noise" of the tiny pairs: every pixel 5 levels too bright, so PSNR is known


def make_pairs(folder, count: int = 3, *, height: int = 24, width: int = 40):
    """``count`` color pairs as PNG (lossless): reference = smooth waves in [20, 200], noisy =
    reference + OFFSET everywhere."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    for i in range(count):
        plane = 110 + 90 * np.sin(x / (3 + i)) * np.cos(y / (4 + i))
        clean = np.dstack([plane, plane[::-1], plane[:, ::-1]]).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"cam{i}_mean.png"), clean)
        cv2.imwrite(str(folder / f"cam{i}_real.png"), clean + OFFSET)
    return folder


def test_pairs_are_matched_by_name_and_loaded_as_8_bit(tmp_path):
    folder = make_pairs(tmp_path / "pairs")
    assert [n for n, _, _ in pair_names(folder)] == ["cam0", "cam1", "cam2"]
    colour = load_pairs(folder)
    assert [p.name for p in colour] == ["cam0", "cam1", "cam2"]
    assert colour[0].noisy.shape == (24, 40, 3) and colour[0].noisy.dtype == np.uint8
    assert np.array_equal(colour[1].noisy.astype(int) - colour[1].clean, np.full((24, 40, 3), OFFSET))
    grey = load_pairs(folder, limit=2, grey=True)
    assert [p.name for p in grey] == ["cam0", "cam2"] and grey[0].clean.shape == (24, 40)


def test_spread_picks_evenly_and_keeps_both_ends():
    assert spread(55, None) == list(range(55))
    assert spread(55, 3) == [0, 27, 54]
    assert spread(55, 1) == [0] and spread(4, 10) == [0, 1, 2, 3] and spread(5, 0) == []
    assert len(spread(55, 10)) == 10


def test_a_pair_without_its_reference_or_an_empty_folder_is_refused(tmp_path):
    folder = make_pairs(tmp_path / "pairs", count=2)
    (folder / "cam1_mean.png").unlink()
    with pytest.raises(FileNotFoundError, match="cam1_real.png has no reference: expected cam1_mean.png"):
        pair_names(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="found none"):
        pair_names(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        pair_names(tmp_path / "missing")


def test_psnr_and_ssim_on_known_errors():
    pytest.importorskip("skimage", reason="SSIM is scikit-image's (the bench extra)")
    ref = np.full((16, 16, 3), 100, np.uint8)
    assert psnr(ref + 5, ref) == pytest.approx(10 * math.log10(255**2 / 25))
    assert psnr(ref, ref) == math.inf
    assert ssim(ref, ref) == pytest.approx(1.0)
    textured = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    assert ssim(255 - textured, textured) < 0.5 < ssim(textured, textured)
    with pytest.raises(ValueError, match=r"uint8 of shape \(16, 16, 3\).*got float32"):
        check_output(ref.astype(np.float32) / 255, ref)


def test_evaluate_scores_a_denoiser_against_the_noisy_input(tmp_path):
    pytest.importorskip("skimage", reason="SSIM is scikit-image's (the bench extra)")
    folder = make_pairs(tmp_path / "pairs")
    noisy = evaluate(lambda x: x, folder=folder)
    assert noisy["pairs"] == 3 and noisy["gain"] == 0
    assert noisy["psnr"] == pytest.approx(10 * math.log10(255**2 / OFFSET**2))
    better = evaluate(lambda x: x - 3, folder=folder, with_ssim=False)  # 2 levels off instead of 5
    assert better["psnr"] == pytest.approx(10 * math.log10(255**2 / 4))
    assert better["gain"] == pytest.approx(20 * math.log10(OFFSET / 2)) and math.isnan(better["ssim"])
    grey = evaluate(lambda x: x, folder=folder, grey=True, limit=1)
    assert grey["pairs"] == 1 and grey["ssim"] <= 1
    with pytest.raises(ValueError, match="expected the denoised image as uint8"):
        evaluate(lambda x: x[..., 0], folder=folder)


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_on_a_tiny_folder(tmp_path, tiny_models):
    folder = make_pairs(tmp_path / "pairs", count=3, height=32, width=32)
    out = tmp_path / "real.md"
    cmd = [sys.executable, "-m", "tools.bench_real_noise", "--folder", str(folder), "--model", str(tiny_models["color"]),
           "--model", str(tiny_models["gray"]), "--sigmas", "5", "10", "--nlm-h", "2", "4", "--cbm3d-limit", "2",
           "--cbm3d-sigmas", "5", "--repeat", "1", "--out", str(out)]
    refused = subprocess.run(cmd[:-2], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "pass --out with --model" in refused.stderr
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert "python -m tools.bench_real_noise --folder" in text and "load average" in text
    for row in (f"| {tiny_models['color']} (blind) | – |", f"| {tiny_models['color']} (oracle) | σ=",
                "| OpenCV NLM (oracle) | h=", "| CBM3D (oracle) | – | – | – |", "| noisy input | – | 34.15 |",
                f"| {tiny_models['gray']} (blind) |", "on the 2 CBM3D pairs", "best at the grid's edge"):
        assert row in text, row
    grey_part = text[text.index("### Gray"):]
    assert tiny_models["color"].name not in grey_part and "CBM3D" not in grey_part
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["colour"]["pairs"] == ["cam0", "cam1", "cam2"] and data["colour"]["cbm3d_subset"] == ["cam0", "cam2"]
    cbm3d = next(r for r in data["colour"]["rows"] if r["method"] == "CBM3D")
    assert cbm3d["psnr"] is None and cbm3d["subset_psnr"] > 0 and cbm3d["ms"] > 0


def test_a_bad_model_name_is_one_line(tmp_path):
    folder = make_pairs(tmp_path / "pairs", count=1)
    result = subprocess.run([sys.executable, "-m", "tools.bench_real_noise", "--folder", str(folder), "--model",
                             "no-such-model", "--out", str(tmp_path / "r.md")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "unknown model 'no-such-model'" in result.stderr
    assert "Traceback" not in result.stderr


@needs_shared("denoise", "real", "polyu-canon")
def test_evaluate_on_the_real_pairs():
    from edge_ae import Denoiser

    noisy = evaluate(lambda x: x, limit=3, with_ssim=False)
    assert noisy["pairs"] == 3 and 28 < noisy["psnr"] < 45
    fast = evaluate(Denoiser("denoise-color-fast", threads=2), limit=3, with_ssim=False)
    assert fast["noisy_psnr"] == noisy["psnr"] and fast["psnr"] > 0
