"""`anomaly fit` / `anomaly calibrate` on awkward folders (issue 51, item 7): unreadable files never
take the held-out threshold images' places, sizes no image could pass are refused at once,
degenerate images are skipped as normal images, a threshold on few images is warned about, and
calibrate never replaces a file without --overwrite."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_ae.anomaly.fit import FitOptions, fit_anomaly_model
from edge_ae.cli.main import main

OPTIONS = FitOptions(size=64, memory_patches=50, pool_patches=500)


def texture(rng: np.random.Generator, h: int = 64, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.15 * np.sin((x + y) / 2.5 + rng.uniform(0, 6)) + rng.normal(0, 0.02, (h, w))
    return np.clip(base * 255, 0, 255).astype(np.uint8)


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_unreadable_files_do_not_take_the_held_out_places(tmp_path):
    """12 good and 4 corrupt images, the corrupt ones exactly where the seeded split holds out."""
    n = 16
    order = np.random.default_rng(OPTIONS.seed).permutation(n)
    n_hold = round(n * OPTIONS.holdout)
    rng = np.random.default_rng(1)
    items: list = []
    for i in range(n):
        if i in order[:n_hold + 2]:  # both held-out places and two more
            bad = tmp_path / f"{i:02d}.png"
            bad.write_bytes(b"not an image")
            items.append(bad)
        else:
            items.append(texture(rng))
    skipped: list[str] = []
    result = fit_anomaly_model(items, options=OPTIONS, threads=1, on_skip=skipped.append)
    assert result.calibration_images == n_hold
    assert result.fit_images == 12 - n_hold
    assert len(skipped) == 4 and len(result.skipped) == 4  # each reported once


def test_degenerate_images_are_skipped_as_normal_images(tmp_path):
    rng = np.random.default_rng(3)
    images = [texture(rng) for _ in range(6)]
    items = [*images, np.full((1, 1), 128, np.uint8), np.full((1, 5000), 128, np.uint8)]
    skipped: list[str] = []
    result = fit_anomaly_model(items, options=OPTIONS, threads=1, on_skip=skipped.append)
    assert result.fit_images + result.calibration_images == 6
    assert len(skipped) == 2
    assert "1x1" in skipped[0] + skipped[1] and "5000x1" in skipped[0] + skipped[1]


@pytest.fixture
def small_folder(tmp_path) -> Path:
    folder = tmp_path / "normal"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), texture(rng))
    return folder


def test_size_no_image_could_pass_is_refused_before_the_work(small_folder, tmp_path, capsys, monkeypatch):
    def forbidden(*_args, **_kwargs):
        raise AssertionError("fitting started")

    monkeypatch.setattr("edge_ae.cli.anomaly_fit.fit_anomaly_model", forbidden)
    for size in ("2001", "2048"):
        assert exit_code(["anomaly", "fit", "--normal", str(small_folder), "-o", str(tmp_path / "m.onnx"),
                          "--size", size]) == 2
        err = capsys.readouterr().err
        assert "--size" in err and "Traceback" not in err


def test_cli_warns_when_the_threshold_rests_on_few_images(small_folder, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["anomaly", "fit", "--normal", str(small_folder), "-o", str(out), "--size", "64", "--memory", "50",
                 "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning: the threshold rests on 1 normal image" in err


def test_calibrate_refuses_to_replace_a_file_without_overwrite(small_folder, tmp_path, capsys):
    out = tmp_path / "cal.onnx"
    out.write_bytes(b"precious")
    argv = ["anomaly", "calibrate", "-m", "anomaly-magnetic-tile-fast", "--normal", str(small_folder), "-o", str(out),
            "--threads", "1"]
    assert exit_code(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert exit_code([*argv, "--overwrite"]) == 0
    assert out.read_bytes() != b"precious"
