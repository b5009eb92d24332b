"""Fitting an anomaly detector on the device (edge_ae.anomaly.fit, `edge-ae anomaly fit`), on a
synthetic texture made here with the shipped feature extractor: the written graph against a numpy
reference on the same features, a drawn defect found and localised, unreadable files reported and
skipped, and the result used by the ordinary anomaly commands."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge_ae import AnomalyDetector, load_model
from edge_ae.anomaly.fit import FitOptions, fit_anomaly_model
from edge_ae.anomaly.graph import gaussian_kernel
from edge_ae.anomaly.inputs import to_model_input
from edge_ae.cli.main import main
from edge_ae.errors import EdgeAEError

SIZE = 96
OPTIONS = FitOptions(size=SIZE, memory_patches=150, pool_patches=1500)


def texture(rng: np.random.Generator, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """Gray diagonal weave with random phase and mild noise, uint8."""
    y, x = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 2 * np.pi)
    base = 0.5 + 0.15 * np.sin((x + y) / 2.5 + phase) + 0.1 * np.sin((x - y) / 4.0) + rng.normal(0, 0.02, (h, w))
    return np.clip(base * 255, 0, 255).astype(np.uint8)


def with_defect(image: np.ndarray, center: tuple[int, int], radius: int = 6) -> np.ndarray:
    out = image.copy()
    cv2.circle(out, center, radius, 20, -1)
    return out


def resize_cells(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with cell i at pixel i * (size / cells), edges clamped (ONNX Resize,
    coordinate_transformation_mode "asymmetric")."""
    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip(np.arange(n_out) * n_in / n_out, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo

    y0, y1, wy = axis(height, cells.shape[0])
    x0, x1, wx = axis(width, cells.shape[1])
    rows = cells[y0] * (1 - wy)[:, None] + cells[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


@pytest.fixture(scope="module")
def normal_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("normal")
    rng = np.random.default_rng(1)
    for i in range(20):
        cv2.imwrite(str(folder / f"{i:02d}.png"), texture(rng))
    (folder / "zz-broken.png").write_bytes(b"not a png")
    return folder


@pytest.fixture(scope="module")
def fitted(normal_dir):
    skipped: list[str] = []
    stages: set[str] = set()
    detector = AnomalyDetector.fit(normal_dir, name="synthetic", options=OPTIONS, threads=1,
                                   on_skip=skipped.append, progress=lambda stage, done, total: stages.add(stage))
    return detector, skipped, stages


def test_fit_skips_unreadable_files_and_records_what_it_did(fitted):
    detector, skipped, stages = fitted
    result = detector.fit_result
    assert len(skipped) == 1 and "zz-broken.png" in skipped[0] and result.skipped == skipped
    assert {"features", "memory", "calibrate"} <= stages
    assert result.fit_images + result.calibration_images == 20
    assert result.memory_patches == OPTIONS.memory_patches
    prov = detector.spec.provenance
    assert prov["memory_patches"] == OPTIONS.memory_patches and prov["fit_seconds"] >= 0
    assert prov["features"]["name"] == "features-lite0" and prov["skipped_images"] == 1
    assert detector.spec.kind == "anomaly" and detector.spec.channels == 1 and detector.spec.input_size == (SIZE, SIZE)
    cal = detector.calibration
    assert cal.method == "fpr" and cal.n_images == result.calibration_images and cal.threshold > 0
    # The overlay's colour scale starts at the held-out normal images' median map value.
    assert cal.map_median is not None and 0 < cal.map_median < cal.threshold


def test_graph_equals_numpy_reference_on_the_same_features(fitted, tmp_path):
    detector, _, _ = fitted
    path = detector.save(tmp_path / "synthetic.onnx")
    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    stacked = numpy_helper.to_array(inits["nn/memory_t_neg2"]).astype(np.float64)  # (d + 1, M): -2 b over |b|^2
    memory = -0.5 * stacked[:-1].T  # (M, d)
    np.testing.assert_allclose(stacked[-1], (memory**2).sum(1), rtol=1e-5)
    sigma = detector.spec.provenance["options"]["blur_sigma"]
    features = load_model("features-lite0", threads=1)
    rng = np.random.default_rng(5)
    image = with_defect(texture(rng), (60, 30))
    x = to_model_input(image, channels=1, size=(SIZE, SIZE))[None]
    feats = features.run({"image": x})[0][0].astype(np.float64)  # (D, h, w)
    patches = feats.reshape(feats.shape[0], -1).T
    if "nn/proj_axes" in inits:
        patches = (patches - numpy_helper.to_array(inits["nn/proj_mean"])) @ numpy_helper.to_array(inits["nn/proj_axes"])
    nearest = np.sqrt(((patches[:, None, :] - memory[None]) ** 2).sum(-1).min(1)).reshape(feats.shape[1:])
    up = resize_cells(nearest, SIZE, SIZE).astype(np.float32)
    k = gaussian_kernel(sigma)
    reference = cv2.sepFilter2D(up, -1, k, k, borderType=cv2.BORDER_REFLECT_101)
    maps, scores = detector.raw([image])
    np.testing.assert_allclose(maps[0], reference, rtol=1e-3, atol=1e-3 * float(reference.max()))
    top = np.sort(reference.ravel())[-OPTIONS.score_pixels:]
    assert OPTIONS.score_pixels == round(0.01 * SIZE * SIZE)
    assert scores[0] == pytest.approx(float(top.mean()), rel=1e-3)


def test_drawn_defect_is_flagged_and_its_map_peaks_on_it(fitted):
    detector, _, _ = fitted
    rng = np.random.default_rng(9)
    center = (60, 36)  # (x, y)
    result = detector(with_defect(texture(rng), center))
    assert result.is_anomaly and result.score > detector.calibration.threshold
    peak_y, peak_x = np.unravel_index(np.argmax(result.anomaly_map), result.anomaly_map.shape)
    assert np.hypot(peak_x - center[0], peak_y - center[1]) <= 6 + 8  # within the disc's radius + one cell
    clean = [detector(texture(rng)).score for _ in range(4)]
    assert max(clean) < result.score


def test_projected_features_fit_and_match_the_reference(normal_dir, tmp_path):
    options = FitOptions(size=SIZE, memory_patches=150, pool_patches=1500, project_dim=32)
    detector = AnomalyDetector.fit(normal_dir, options=options, threads=1)
    test_graph_equals_numpy_reference_on_the_same_features((detector, [], set()), tmp_path)
    memory = onnx.load(str(tmp_path / "synthetic.onnx")).graph.initializer
    assert {t.name: tuple(t.dims) for t in memory}["nn/proj_axes"] == (152, 32)


def test_keep_aspect_fit_takes_images_of_any_shape(tmp_path):
    rng = np.random.default_rng(3)
    images = [texture(rng, 48, 80 + 8 * (i % 3)) for i in range(8)]
    options = FitOptions(size=48, resize="keep-aspect", memory_patches=100, pool_patches=1000)
    detector = AnomalyDetector.fit(images, options=options, threads=1)
    assert detector.spec.short_side == 48 and detector.spec.size_multiple == 8
    result = detector(texture(rng, 60, 150))
    assert result.anomaly_map.shape == (60, 150) and np.isfinite(result.score)


def test_fit_needs_two_readable_images(tmp_path):
    with pytest.raises(EdgeAEError, match="at least 2"):
        fit_anomaly_model([texture(np.random.default_rng(0))], options=OPTIONS)
    with pytest.raises(ValueError, match="resize"):
        FitOptions(resize="crop")


def test_cli_fit_writes_a_model_the_anomaly_commands_use(normal_dir, tmp_path, capsys):
    out = tmp_path / "line.onnx"
    assert main(["anomaly", "fit", "--normal", str(normal_dir), "-o", str(out), "--size", str(SIZE),
                 "--memory", "150", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "150 memory patches" in captured.out and "1 image(s) skipped (unreadable or unusable)" in captured.out
    assert "zz-broken.png" in captured.err
    assert AnomalyDetector(out).spec.name == "line"
    assert main(["anomaly", "fit", "--normal", str(normal_dir), "-o", str(out)]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    report = tmp_path / "report.json"
    assert main(["anomaly", str(normal_dir), "-m", str(out), "--report", str(report)]) == 1  # the broken file fails
    assert report.is_file()
    again = tmp_path / "again.onnx"
    assert main(["anomaly", "calibrate", str(out), "--normal", str(normal_dir), "-o", str(again)]) == 0
    assert AnomalyDetector(again).spec.anomaly is not None


def test_fit_never_imports_torch(tmp_path):
    """The point of fitting on the device: numpy, onnxruntime and onnx only."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from edge_ae import AnomalyDetector\n"
            "from edge_ae.anomaly.fit import FitOptions\n"
            "rng = np.random.default_rng(0)\n"
            "images = [(rng.random((64, 64)) * 255).astype(np.uint8) for _ in range(4)]\n"
            "AnomalyDetector.fit(images, options=FitOptions(size=64, memory_patches=50, pool_patches=500), threads=1)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_labelled_validation_images_give_the_f1_threshold(normal_dir):
    rng = np.random.default_rng(11)
    val_normal = [texture(rng) for _ in range(4)]
    val_anomalous = [with_defect(texture(rng), (30 + 10 * i, 50)) for i in range(3)]
    detector = AnomalyDetector.fit(normal_dir, val_normal=val_normal, val_anomalous=val_anomalous, options=OPTIONS,
                                   threads=1)
    cal = detector.calibration
    assert cal.method == "f1" and cal.n_images == 7
    assert detector.fit_result.fit_images == 20  # every readable normal image is fitted when val_normal is given


def part(rng: np.random.Generator, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """A second kind of object: a shaded grey part (a rounded plate with two holes) on a dark
    background, placed with a small random shift and lighting, uint8."""
    out = np.full((h, w), 30, np.uint8)
    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
    y, x = np.mgrid[0:h, 0:w]
    shade = (150 + 40 * (x / w) + rng.normal(0, 3, (h, w)) + rng.uniform(-10, 10)).clip(0, 255).astype(np.uint8)
    plate = np.zeros((h, w), np.uint8)
    cv2.rectangle(plate, (14 + dx, 20 + dy), (w - 14 + dx, h - 20 + dy), 255, -1)
    for cx in (30, w - 30):
        cv2.circle(plate, (cx + dx, h // 2 + dy), 7, 0, -1)
    out[plate > 0] = shade[plate > 0]
    return out


@pytest.mark.parametrize("kind", ["weave", "part"])
def test_held_out_fit_finds_a_scratch_on_more_than_one_kind_of_object(kind, tmp_path):
    """A new user's folder, fitted with the defaults (only the size made small): the held-out good
    images score below every scratched one, and each scratch's map peaks on the scratch."""
    make = texture if kind == "weave" else part
    rng = np.random.default_rng(21)
    detector = AnomalyDetector.fit([make(rng) for _ in range(24)], options=FitOptions(size=SIZE), threads=1)
    good = [detector(make(rng)).score for _ in range(6)]
    for i in range(6):
        image = make(rng)
        x0, y0 = 34 + 4 * i, 32 + 3 * i
        cv2.line(image, (x0, y0), (x0 + 16, y0 + 10), 240, 2)
        result = detector(image)
        assert result.score > max(good)
        peak_y, peak_x = np.unravel_index(np.argmax(result.anomaly_map), result.anomaly_map.shape)
        assert np.hypot(peak_x - (x0 + 8), peak_y - (y0 + 5)) <= 8 + 8  # within half the scratch + one cell


def test_cli_backbone_chooses_a_shipped_extractor_and_refuses_an_unknown_one(normal_dir, tmp_path, capsys):
    out = tmp_path / "deep.onnx"
    assert main(["anomaly", "fit", "--normal", str(normal_dir), "-o", str(out), "--size", str(SIZE),
                 "--memory", "150", "--threads", "1", "--backbone", "lite0-deep"]) == 0
    prov = AnomalyDetector(out).spec.provenance
    assert prov["features"]["name"] == "features-lite0-deep" and "--backbone lite0-deep" in prov["training_command"]
    capsys.readouterr()
    assert main(["anomaly", "fit", "--normal", str(normal_dir), "-o", str(tmp_path / "x.onnx"),
                 "--backbone", "resnet"]) == 2
    err = capsys.readouterr().err
    assert "--backbone" in err and "lite0-deep" in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_cli_score_top_is_recorded_and_a_share_outside_0_1_is_a_usage_error(normal_dir, tmp_path, capsys):
    out = tmp_path / "top.onnx"
    assert main(["anomaly", "fit", "--normal", str(normal_dir), "-o", str(out), "--size", str(SIZE),
                 "--memory", "150", "--threads", "1", "--score-top", "0.02"]) == 0
    prov = AnomalyDetector(out).spec.provenance
    assert prov["options"]["score_top"] == 0.02 and "--score-top 0.02" in prov["training_command"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # argparse refuses the value before any work
        main(["anomaly", "fit", "--normal", str(normal_dir), "-o", str(tmp_path / "x.onnx"), "--score-top", "1.5"])
    assert stop.value.code == 2
    assert "--score-top" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
