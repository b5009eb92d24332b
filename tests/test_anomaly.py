"""Anomaly detection end to end on synthetic textures made here: a tiny model trained a few
steps, export and parity, the detector API, torch-free re-calibration (protobuf metadata
rewrite), the CLI on a folder with a broken file, and every shipped anomaly model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, requires_torch, write_tiny_anomaly_model
from edge_ae import AnomalyDetector, AnomalyResult, ImageError, ModelError, draw_overlay, list_models, load_model
from edge_ae.anomaly.calibration import calibrate_f1, calibrate_fpr
from edge_ae.cli.main import main
from edge_ae.files.imageio import read_image
from edge_ae.model.contract import METADATA_KEY, AnomalyCalibration, ModelSpec
from edge_ae.model.onnx_meta import read_metadata, replace_metadata, rewrite_metadata_file


def texture(rng: np.random.Generator, h: int = 48, w: int = 64) -> np.ndarray:
    """A gray striped texture with mild noise, uint8."""
    x = np.arange(w)[None, :]
    phase = rng.uniform(0, 2 * np.pi)
    base = 0.5 + 0.2 * np.sin(x / 3.0 + phase) + rng.normal(0, 0.03, (h, w))
    return np.clip(base * 255, 0, 255).astype(np.uint8)


def with_blob(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    h, w = out.shape[:2]
    center = (int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4)))
    cv2.circle(out, center, max(4, h // 7), 255, -1)
    return out


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("anomaly-data")
    rng = np.random.default_rng(7)
    out = {k: root / k for k in ("normal", "val_normal", "anomalous")}
    for path in out.values():
        path.mkdir()
    for i in range(24):
        cv2.imwrite(str(out["normal"] / f"n{i:02d}.png"), texture(rng))
    for i in range(8):
        im = texture(rng)
        cv2.imwrite(str(out["val_normal"] / f"v{i:02d}.png"), im)
        cv2.imwrite(str(out["anomalous"] / f"a{i:02d}.png"), with_blob(texture(rng), rng))
    return out


@pytest.fixture(scope="session")
def anomaly_model(tmp_path_factory) -> Path:
    """The runtime's tests run a hand-built model (no torch; tests/conftest.py)."""
    return write_tiny_anomaly_model(tmp_path_factory.mktemp("anomaly-runtime") / "tiny-anomaly.onnx")


@pytest.fixture(scope="session")
def tiny_anomaly(folders, tmp_path_factory) -> Path:
    """A tiny model trained a few dozen steps through the real training command (tests of
    training, export and fusion: they need torch)."""
    requires_torch()
    from training.anomaly.cli import main as train_main

    out = tmp_path_factory.mktemp("anomaly-model")
    rc = train_main(["--normal", str(folders["normal"]), "--name", "tiny-anomaly", "--out", str(out),
                     "--runs", str(out / "runs"), "--size", "32", "--width", "4", "--latent-channels", "8",
                     "--seg-width", "4", "--steps", "150", "--eval-every", "50", "--batch", "8", "--threads", "1"])
    assert rc == 0
    return out / "tiny-anomaly.onnx"


def test_export_contract_and_parity(tiny_anomaly, folders):
    requires_torch()
    import onnx
    import torch

    from training.anomaly.export import check_outputs
    from training.anomaly.net import ConvAutoencoder
    from training.anomaly.train import build_graph

    proto = onnx.load(str(tiny_anomaly))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["anomaly_map", "score"]
    spec = AnomalyDetector(tiny_anomaly).spec
    assert spec.kind == "anomaly" and spec.input_size == (32, 32) and spec.channels == 1
    assert spec.anomaly.method == "fpr" and spec.anomaly.target_fpr == 0.01 and spec.anomaly.n_images > 0
    assert spec.provenance["training_command"].startswith("python -m training.anomaly")
    # The CPU is recorded: one seed can be expected to give the same weights only on the same kind of CPU.
    assert spec.provenance["host"]["cpu"] and spec.provenance["host"]["torch_cpu_capability"]
    assert int(spec.provenance["host"]["torch_threads"]) >= 1
    # So are the versions that shape the data (OpenCV resizes, numpy draws the defects).
    assert set(spec.provenance["libraries"]) == {"numpy", "opencv", "onnx", "onnxruntime"}
    manifest = json.loads((tiny_anomaly.parent / "manifest.json").read_text())
    assert manifest["models"][0]["name"] == "tiny-anomaly" and manifest["models"][0]["kind"] == "anomaly"
    # Parity of both outputs against the PyTorch graph rebuilt from the best checkpoint.
    from training.anomaly.config import AnomalyConfig
    from training.anomaly.segmenter import DefectSegmenter

    ckpt = torch.load(tiny_anomaly.parent / "runs" / "tiny-anomaly" / "best.pt", weights_only=False)
    cfg = AnomalyConfig(**ckpt["config"])
    assert cfg.map == "learned"
    net = ConvAutoencoder(1, width=cfg.width, latent_channels=cfg.latent_channels)
    net.load_state_dict(ckpt["model"])
    segmenter = DefectSegmenter(1, width=cfg.seg_width)
    segmenter.load_state_dict(ckpt["segmenter"])
    graph = build_graph(net.eval(), torch.ones(1), cfg, segmenter=segmenter.eval())
    # The learned map has no constants fitted after training: the shipped file is this graph.
    images = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    assert check_outputs(graph, tiny_anomaly, images) < 1e-4


@pytest.mark.slow
def test_error_map_mode_trains_and_exports(folders, tmp_path):
    """The reconstruction-error map (``--map error``), with per-pixel normal statistics."""
    requires_torch()
    from training.anomaly.cli import main as train_main

    rc = train_main(["--normal", str(folders["normal"]), "--name", "tiny-error", "--out", str(tmp_path),
                     "--runs", str(tmp_path / "runs"), "--no-manifest", "--map", "error", "--topk", "0.01",
                     "--smooth", "0.03125", "--size", "32", "--width", "4", "--latent-channels", "8",
                     "--steps", "20", "--eval-every", "10", "--batch", "8", "--threads", "1"])
    assert rc == 0
    det = AnomalyDetector(tmp_path / "tiny-error.onnx", threads=1)
    assert "error map" in det.spec.description and det.spec.provenance["map"] == "error"
    result = det(texture(np.random.default_rng(5)))
    assert result.anomaly_map.shape == (48, 64) and np.isfinite(result.score)


@pytest.mark.slow
@pytest.mark.parametrize("exposure", ["none", "gain"])  # the shipped fusion has a member of each
def test_training_is_reproducible_with_a_fixed_seed(folders, tmp_path, exposure):
    """The same command twice gives the same weights: a shipped model can be remade from the
    training command in its provenance (no time budget, so the step count is fixed)."""
    requires_torch()
    import onnx
    from onnx import numpy_helper

    from training.anomaly.cli import main as train_main

    def weights(out: Path, seed: int = 0) -> dict[str, np.ndarray]:
        rc = train_main(["--normal", str(folders["normal"]), "--name", "tiny-repro", "--out", str(out),
                         "--runs", str(out / "runs"), "--no-manifest", "--resize", "keep-aspect", "--size", "32",
                         "--width", "4", "--latent-channels", "8", "--seg-width", "4", "--steps", "12",
                         "--eval-every", "6", "--batch", "4", "--threads", "1", "--seed", str(seed),
                         "--split-seed", "0", "--exposure", exposure])
        assert rc == 0
        graph = onnx.load(str(out / "tiny-repro.onnx")).graph
        return {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    first, second = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert first.keys() == second.keys() and len(first) > 10
    assert all(np.array_equal(first[k], second[k]) for k in first)
    # ... and the comparison can tell: another seed gives other weights.
    other = weights(tmp_path / "c", seed=1)
    assert not all(np.array_equal(first[k], other[k]) for k in first)


def test_texture_is_the_defect_content_when_given():
    """With --textures, a synthetic defect's content is the outside image (re-lit), not the normal one."""
    requires_torch()
    from training.anomaly.data import synthetic_defect

    rng = np.random.default_rng(3)
    ramp = np.tile(np.linspace(0.2, 0.8, 64, dtype=np.float32), (48, 1))[None]
    for _ in range(10):
        out, mask = synthetic_defect(np.zeros_like(ramp), np.zeros_like(ramp), rng, texture=ramp)
        inside = (mask > 0.99 * mask.max()) & (out[0] > 0) & (out[0] < 1)
        if inside.sum() > 20 and np.ptp(ramp[0][inside]) > 0.05:
            assert np.corrcoef(out[0][inside], ramp[0][inside])[0, 1] > 0.95
            return
    pytest.fail("no synthetic defect was large enough to check")


def relit_fraction(relight: bool, draws: int = 60) -> float:
    """Share of synthetic defects whose content is the image itself, uniformly darker or brighter:
    there out / image - 1 is proportional to the mask everywhere inside it."""
    requires_torch()
    from training.anomaly.data import synthetic_defect

    rng = np.random.default_rng(5)
    image = (0.3 + 0.4 * rng.random((1, 64, 64))).astype(np.float32)  # texture: no other kind keeps it
    other = (0.3 + 0.4 * rng.random((1, 64, 64))).astype(np.float32)
    found = 0
    for _ in range(draws):
        out, mask = synthetic_defect(image, other, rng, relight=relight)
        inside = mask > 0.5
        gain = (out[0][inside] / image[0][inside] - 1) / mask[inside]
        found += bool(inside.sum() > 4 and np.abs(gain.mean()) > 0.05 and gain.std() < 1e-4)
    return found / draws


def test_relight_adds_darker_or_brighter_copies_of_the_surface_only_when_asked():
    assert relit_fraction(relight=False) == 0
    assert 0.1 < relit_fraction(relight=True) < 0.35  # one kind of five


def test_relight_option_reaches_the_config():
    requires_torch()
    from training.anomaly.cli import parse

    assert parse(["--normal", "n", "--name", "m"])[1].relight is False
    assert parse(["--normal", "n", "--name", "m", "--relight"])[1].relight is True


@pytest.mark.slow
def test_training_with_textures(folders, tmp_path):
    """--textures reaches the batches: texture crops fit each image's shape, and a run trains and exports."""
    requires_torch()
    from training.anomaly.cli import main as train_main
    from training.anomaly.data import Batches

    rng = np.random.default_rng(0)
    images = [rng.random((1, 32, 48), dtype=np.float32), rng.random((1, 48, 32), dtype=np.float32)]
    batches = Batches(images, synthetic_fraction=1.0, input_noise=0.0, flips=False, rng=rng,
                      textures=rng.random((3, 1, 40, 40), dtype=np.float32))
    assert [batches.texture_like(im).shape for im in images] == [(1, 32, 48), (1, 48, 32)]
    rc = train_main(["--normal", str(folders["normal"]), "--textures", str(folders["anomalous"]), "--name", "tiny-tex",
                     "--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--no-manifest", "--size", "32",
                     "--width", "4", "--latent-channels", "8", "--seg-width", "4", "--steps", "6", "--eval-every", "3",
                     "--batch", "4", "--threads", "1"])
    assert rc == 0 and (tmp_path / "tiny-tex.onnx").exists()
    config = json.loads((tmp_path / "runs" / "tiny-tex" / "config.json").read_text())
    assert config["textures"] == str(folders["anomalous"])


def test_exposure_gain_makes_the_exported_graph_blind_to_brightness(folders, tmp_path):
    """--exposure gain: the graph scales each image to one mean first, so a photo taken with half
    the exposure (all values halved, nothing clipped) gets the same map and score."""
    requires_torch()
    import onnxruntime as ort
    import torch

    from training.anomaly.cli import main as train_main
    from training.anomaly.scoring import EXPOSURE_MEAN, apply_exposure

    x = torch.rand(2, 1, 16, 16) * torch.tensor([0.2, 0.9]).view(2, 1, 1, 1)
    assert apply_exposure(x, "none") is x
    assert torch.allclose(apply_exposure(x, "gain").mean(dim=(1, 2, 3)), torch.full((2,), EXPOSURE_MEAN), atol=1e-5)
    target = x * 0.9  # training's clean target takes the input's gain, not its own
    expected = (target * EXPOSURE_MEAN / x.mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    assert torch.allclose(apply_exposure(target, "gain", like=x), expected, atol=1e-6)
    rc = train_main(["--normal", str(folders["normal"]), "--exposure", "gain", "--name", "tiny-exposure",
                     "--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--no-manifest", "--size", "32",
                     "--width", "4", "--latent-channels", "8", "--seg-width", "4", "--steps", "6", "--eval-every", "3",
                     "--batch", "4", "--threads", "1"])
    assert rc == 0
    config = json.loads((tmp_path / "runs" / "tiny-exposure" / "config.json").read_text())
    assert config["exposure"] == "gain"
    session = ort.InferenceSession(str(tmp_path / "tiny-exposure.onnx"), providers=["CPUExecutionProvider"])
    image = (np.random.default_rng(0).random((1, 1, 32, 32)) * 0.8).astype(np.float32)
    (map_full, score_full), (map_half, score_half) = (session.run(None, {"image": im}) for im in (image, image * 0.5))
    np.testing.assert_allclose(map_half, map_full, atol=1e-4)
    np.testing.assert_allclose(score_half, score_full, atol=1e-4)


def test_detector_api(anomaly_model):
    det = AnomalyDetector(anomaly_model, threads=1)
    rng = np.random.default_rng(3)
    for image in (texture(rng, 45, 71), cv2.cvtColor(texture(rng), cv2.COLOR_GRAY2BGR),
                  (texture(rng, 20, 30).astype(np.uint16) * 257), texture(rng, 33, 33).astype(np.float32) / 255,
                  np.dstack([cv2.cvtColor(texture(rng), cv2.COLOR_GRAY2BGR), np.full((48, 64), 255, np.uint8)])):
        result = det(image)
        assert isinstance(result, AnomalyResult)
        assert result.anomaly_map.shape == image.shape[:2] and result.anomaly_map.dtype == np.float32
        assert result.is_anomaly == (result.score > det.calibration.threshold)
        assert (result.normalized_score > 0.5) == result.is_anomaly
        assert 0.0 <= result.normalized_score <= 1.0
        overlay = draw_overlay(image, result)
        assert overlay.shape == image.shape[:2] + (3,) and overlay.dtype == np.uint8
    assert det.calibration.normalized(det.calibration.threshold) == pytest.approx(0.5)
    with pytest.raises(ImageError):
        det(np.zeros((4, 4, 2), np.uint8))


def test_blob_scores_higher_than_normal(anomaly_model, folders):
    det = AnomalyDetector(anomaly_model, threads=1)
    normal = [det.score(read_image(p)) for p in sorted(folders["val_normal"].iterdir())]
    blobs = [det.score(read_image(p)) for p in sorted(folders["anomalous"].iterdir())]
    assert np.mean(blobs) > np.mean(normal)
    # The map is highest where the blob is.
    rng = np.random.default_rng(11)
    clean = texture(rng)
    blob = clean.copy()
    cv2.circle(blob, (48, 12), 7, 255, -1)
    amap = det(blob).anomaly_map
    y, x = np.unravel_index(np.argmax(amap), amap.shape)
    assert abs(int(y) - 12) <= 12 and abs(int(x) - 48) <= 12


def test_model_input_scales_every_dtype():
    from edge_ae.anomaly.inputs import to_model_input

    for image in (np.full((10, 12), 51, np.uint8), np.full((10, 12, 3), 51 * 257, np.uint16),
                  np.full((10, 12, 4), 0.2, np.float32)):
        for channels, size in ((1, (8, 8)), (3, (16, 20))):
            x = to_model_input(image, channels=channels, size=size)
            assert x.shape == (channels,) + size and x.dtype == np.float32
            assert np.allclose(x, 0.2, atol=1e-5)


def test_overlay_outlines_region_above_threshold():
    image = np.full((40, 60), 128, np.uint8)
    amap = np.zeros((40, 60), np.float32)
    amap[10:20, 30:45] = 3.0
    result = AnomalyResult(score=3.0, normalized_score=0.9, is_anomaly=True, anomaly_map=amap, threshold=1.0)
    out = draw_overlay(image, result)
    assert out.shape == (40, 60, 3)
    # Outline pixels (red or white) surround the hot rectangle; far corner stays near the heatmap's cold blue.
    ring = out[9:21, 29:46].reshape(-1, 3)
    assert np.any((ring[:, 2] > 200) & (ring[:, 0] < 80))


def test_overlay_scale_starts_at_the_normal_maps_median():
    """A fitted model's normal cells sit far above 0 (distances ~30 with a threshold ~36): from a
    0-based scale the whole normal surface came out mid-scale (green), as hot-looking as the defect's
    rim; from the recorded normal median it is cold (blue) and the defect alone is warm."""
    image = np.full((40, 60), 128, np.uint8)
    amap = np.full((40, 60), 30.0, np.float32)
    amap[10:20, 30:45] = 42.0
    result = AnomalyResult(score=42.0, normalized_score=0.9, is_anomaly=True, anomaly_map=amap, threshold=36.0,
                           map_floor=30.0)
    out = draw_overlay(image, result, alpha=1.0)
    background, defect = out[35, 5].astype(int), out[15, 38].astype(int)
    assert background[0] > 100 and background[2] < 60  # JET's cold end: blue, no red
    assert defect[2] > 100 and defect[0] < 60 and defect[1] < 60  # twice the distance above the floor: JET red


def test_calibration_rules():
    normal = np.linspace(0, 1, 101)
    cal = calibrate_fpr(normal, fpr=0.1)
    assert cal.threshold == pytest.approx(0.9) and cal.method == "fpr" and cal.n_images == 101
    assert np.mean(normal > cal.threshold) <= 0.1
    f1 = calibrate_f1([0.1, 0.2, 0.3], [0.6, 0.7])
    assert 0.3 < f1.threshold < 0.6 and f1.method == "f1" and f1.target_fpr is None
    with pytest.raises(ValueError):
        calibrate_fpr([], fpr=0.01)
    with pytest.raises(ValueError):
        calibrate_fpr([1.0, float("nan")])


def test_metadata_rewrite_keeps_graph(anomaly_model, tmp_path):
    import onnx
    import onnxruntime as ort

    data = anomaly_model.read_bytes()
    spec = ModelSpec.from_json(read_metadata(data)[METADATA_KEY])
    new_cal = AnomalyCalibration(threshold=1.2345, score_mean=1.0, score_std=0.1, target_fpr=0.05, n_images=9)
    import dataclasses

    new_spec = dataclasses.replace(spec, anomaly=new_cal)
    once = replace_metadata(data, METADATA_KEY, new_spec.to_json())
    twice = replace_metadata(once, "other", "kept")
    meta = read_metadata(twice)
    assert set(meta) == {METADATA_KEY, "other"}
    assert ModelSpec.from_json(meta[METADATA_KEY]).anomaly == new_cal
    target = tmp_path / "sub" / "recal.onnx"
    rewrite_metadata_file(anomaly_model, target, METADATA_KEY, new_spec.to_json())
    before, after = onnx.load(str(anomaly_model)), onnx.load(str(target))
    onnx.checker.check_model(after, full_check=True)
    assert after.graph.SerializeToString() == before.graph.SerializeToString()
    assert after.opset_import == before.opset_import and after.ir_version == before.ir_version
    assert {p.key: p.value for p in after.metadata_props}[METADATA_KEY] == new_spec.to_json()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map[METADATA_KEY] == new_spec.to_json()
    assert AnomalyDetector(target).calibration.threshold == pytest.approx(1.2345)
    assert not list(target.parent.glob("*.part"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(ModelError):
        rewrite_metadata_file(bad, tmp_path / "x.onnx", METADATA_KEY, "{}")


def test_calibrate_cli(anomaly_model, folders, tmp_path, capsys):
    import onnx

    det = AnomalyDetector(anomaly_model, threads=1)
    scores = [det.score(read_image(p)) for p in sorted(folders["val_normal"].iterdir())]
    new = tmp_path / "recal.onnx"
    rc = main(["anomaly", "calibrate", str(anomaly_model), "--normal", str(folders["val_normal"]), "-o", str(new),
               "--fpr", "0.2", "--threads", "1"])
    assert rc == 0
    assert "re-calibrated" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(new)), full_check=True)
    recal = AnomalyDetector(new, threads=1)
    assert recal.calibration.threshold == pytest.approx(float(np.quantile(scores, 0.8)), rel=1e-5)
    assert recal.calibration.target_fpr == 0.2 and recal.calibration.n_images == len(scores)
    assert recal.spec.provenance["recalibrated"]["previous_threshold"] == pytest.approx(det.calibration.threshold)
    image = read_image(next(folders["anomalous"].iterdir()))
    assert recal(image).score == pytest.approx(det(image).score, rel=1e-6)  # same graph, new threshold only
    # F1 mode with anomalous images, and refusals.
    rc = main(["anomaly", "calibrate", str(anomaly_model), "--normal", str(folders["val_normal"]),
               "--anomalous", str(folders["anomalous"]), "-o", str(tmp_path / "f1.onnx")])
    assert rc == 0 and AnomalyDetector(tmp_path / "f1.onnx").calibration.method == "f1"
    with pytest.raises(SystemExit) as missing:  # --normal is required: argparse's usage error
        main(["anomaly", "calibrate", str(anomaly_model), "-o", str(tmp_path / "x.onnx")])
    assert missing.value.code == 2
    assert main(["anomaly", "calibrate", str(anomaly_model), "--normal", str(folders["val_normal"]),
                 "-o", str(anomaly_model)]) == 2
    assert main(["anomaly", "calibrate", str(anomaly_model), "--normal", str(tmp_path / "none"),
                 "-o", str(tmp_path / "y.onnx")]) == 2


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_anomaly_cli_folder_with_broken_file(anomaly_model, folders, tmp_path, capsys, suffix):
    src = tmp_path / "in"
    src.mkdir()
    for p in list(sorted(folders["val_normal"].iterdir()))[:3] + list(sorted(folders["anomalous"].iterdir()))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    report, heat = tmp_path / f"report{suffix}", tmp_path / "heat"
    rc = main(["anomaly", str(src), "-m", str(anomaly_model), "--report", str(report), "--heatmaps", str(heat),
               "--all-heatmaps", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 1  # one file failed
    assert "6 scored" in out and "1 failed" in out and "broken.png" in out
    if suffix == ".json":
        data = json.loads(report.read_text())
        rows = data["images"]
        assert data["summary"]["images"] == 6 and data["summary"]["failed"] == 1
    else:
        import csv

        rows = list(csv.DictReader(report.open()))
    assert len(rows) == 7
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 6 and all(Path(r["heatmap"]).is_file() for r in done)
    assert cv2.imread(done[0]["heatmap"]).shape == (48, 64, 3)
    # Without --all-heatmaps only flagged images get an overlay.
    heat2 = tmp_path / "heat2"
    main(["anomaly", str(src), "-m", str(anomaly_model), "--heatmaps", str(heat2), "--threads", "1"])
    flagged = out.count("ANOMALY")
    assert len(list(heat2.glob("*.png"))) == flagged


def test_anomaly_cli_refuses_calibrate_flags_and_bad_report(anomaly_model, tmp_path, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), texture(np.random.default_rng(0)))
    with pytest.raises(SystemExit) as wrong:  # calibrate's options are not scoring's
        main(["anomaly", str(img), "-m", str(anomaly_model), "--normal", str(tmp_path)])
    assert wrong.value.code == 2 and "--normal" in capsys.readouterr().err
    assert main(["anomaly", str(img), "-m", str(anomaly_model), "--report", str(tmp_path / "r.txt")]) == 2


def test_a_folder_named_calibrate_is_scored_and_scoring_help_has_no_calibrate_options(anomaly_model, tmp_path,
                                                                                      capsys, monkeypatch):
    folder = tmp_path / "calibrate"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), texture(np.random.default_rng(0)))
    monkeypatch.chdir(tmp_path)
    assert main(["anomaly", "./calibrate", "-m", str(anomaly_model), "--threads", "1"]) == 0
    assert "1 scored" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["anomaly", "--help"])
    options = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  -")]
    assert "-m" in options and "--normal" not in options and "-o" not in options


SHIPPED = [e.name for e in list_models("anomaly")]
SAMPLES = sorted((ROOT / "samples" / "anomaly").glob("*.*"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_anomaly_models_run_on_samples(name):
    det = AnomalyDetector(name, threads=1)
    images = [p for p in SAMPLES if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    assert images, "samples/anomaly/ holds no sample images"
    for path in images:
        image = read_image(path)
        result = det(image)
        assert result.anomaly_map.shape == image.shape[:2]
        assert np.isfinite(result.score) and (result.normalized_score > 0.5) == result.is_anomaly


@pytest.fixture(scope="session")
def tiny_anomaly_48(folders, tmp_path_factory) -> Path:
    """A second tiny model on the same folder and split, at 1.5 times the size (not a whole multiple), trained on crops."""
    requires_torch()
    from training.anomaly.cli import main as train_main

    out = tmp_path_factory.mktemp("anomaly-model-48")
    rc = train_main(["--normal", str(folders["normal"]), "--name", "tiny-anomaly-48", "--out", str(out),
                     "--runs", str(out / "runs"), "--no-manifest", "--size", "48", "--patch", "32", "--width", "4",
                     "--latent-channels", "8", "--seg-width", "4", "--steps", "40", "--eval-every", "20",
                     "--batch", "8", "--threads", "1"])
    assert rc == 0
    return out / "tiny-anomaly-48.onnx"


@pytest.mark.slow
def test_fuse_two_sizes(tiny_anomaly, tiny_anomaly_48, folders, tmp_path):
    """Fusing is checked inside the command against the members run one by one; here: the result
    is a usable anomaly model at the larger size whose provenance names both members."""
    requires_torch()
    from training.anomaly.fuse import main as fuse_main

    rc = fuse_main([str(tiny_anomaly), str(tiny_anomaly_48), "--name", "tiny-fused", "--out", str(tmp_path)])
    assert rc == 0
    det = AnomalyDetector(tmp_path / "tiny-fused.onnx", threads=1)
    assert det.input_size == (48, 48)
    members = det.spec.provenance["members"]
    assert [m["input_size"] for m in members] == [32, 48] and all(m["host"]["cpu"] and m["libraries"]["opencv"] for m in members)
    assert det.spec.provenance["training_command"].endswith("--name tiny-fused --out " + str(tmp_path))
    assert json.loads((tmp_path / "manifest.json").read_text())["models"][0]["name"] == "tiny-fused"
    normal = read_image(sorted(folders["val_normal"].glob("*.png"))[0])
    blob = with_blob(normal, np.random.default_rng(3))
    assert det(normal).anomaly_map.shape == normal.shape
    maps, scores = det.raw([normal, blob])  # at the model's size: the score is the fused map's maximum
    assert np.allclose(scores, maps.reshape(2, -1).max(axis=1), rtol=1e-5)


@pytest.mark.slow
def test_train_sizes_in_one_command(folders, tmp_path, capsys):
    """--sizes trains one member per size (the larger on crops of the smaller) and fuses them."""
    requires_torch()
    from training.anomaly.cli import main as train_main

    tiny = ["--normal", str(folders["normal"]), "--runs", str(tmp_path / "runs"), "--width", "4",
            "--latent-channels", "8", "--seg-width", "4", "--steps", "20", "--eval-every", "10", "--batch", "8",
            "--threads", "1"]
    assert train_main([*tiny, "--name", "two", "--out", str(tmp_path), "--sizes", "48,32"]) == 0
    spec = AnomalyDetector(tmp_path / "two.onnx", threads=1).spec
    assert spec.input_size == (48, 48) and [m["input_size"] for m in spec.provenance["members"]] == [32, 48]
    commands = [m["training_command"] for m in spec.provenance["members"]]
    assert "--patch" not in commands[0] and commands[1].endswith("--size 48 --patch 32 --out "
                                                                 f"{tmp_path / 'runs' / 'two' / 'members'} --no-manifest")
    assert (tmp_path / "runs" / "two" / "members" / "two-32.onnx").is_file()
    assert [m["name"] for m in json.loads((tmp_path / "manifest.json").read_text())["models"]] == ["two"]
    with pytest.raises(SystemExit):
        train_main([*tiny, "--name", "x", "--out", str(tmp_path), "--sizes", "48,32", "--size", "64"])
    assert "leave out --size" in capsys.readouterr().err


def test_bench_anomaly_on_a_made_up_split(tiny_anomaly, tiny_anomaly_48, folders, tmp_path):
    """tools/bench_anomaly.py end to end on a tiny test split (good + blobs with masks), for a
    fused model, whose map is in z units (negative values binned too) and whose provenance lists
    its members."""
    requires_torch()
    from training.anomaly.fuse import main as fuse_main

    assert fuse_main([str(tiny_anomaly), str(tiny_anomaly_48), "--name", "tiny-fused", "--out", str(tmp_path),
                      "--no-manifest"]) == 0
    rng = np.random.default_rng(11)
    data = tmp_path / "split"
    for sub in ("test/good", "test/blob", "ground_truth/blob"):
        (data / sub).mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(data / "test" / "good" / f"g{i}.png"), texture(rng))
        normal = texture(rng)
        blob = with_blob(normal, rng)
        cv2.imwrite(str(data / "test" / "blob" / f"b{i}.png"), blob)
        cv2.imwrite(str(data / "ground_truth" / "blob" / f"b{i}_mask.png"), np.where(blob != normal, 255, 0).astype(np.uint8))
    report = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, "-m", "tools.bench_anomaly", "--model",
                           str(tmp_path / "tiny-fused.onnx"), "--data", str(data), "--threads", "1", "--out", str(report)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert 0.0 <= figures["image_auroc"] <= 1.0 and 0.0 <= figures["pixel_auroc"] <= 1.0
    # Blobs are bright discs on a striped texture: even a tiny model localises some of them.
    assert figures["pixel_auroc"] > 0.6
    text = report.read_text()
    assert "Fused from 2 models" in text and "32 px: `python -m training.anomaly" in text
    # Every image falls in exactly one shape bin (these are all one shape). The figures of record
    # leave out the defects set aside for validation (30 % of each type: 2 of 6), never a good image.
    assert sum(row["n_good"] for row in figures["by_shape"]) == 6
    assert sum(row["n_defective"] for row in figures["by_shape"]) == 4
    assert figures["whole_split"]["n_defective"] == 6 and figures["validation_split"]["images_set_aside"] == 2
    assert set(figures["recall_at_fpr"]) == {"0.01", "0.05"}
    assert "By image shape" in text and "untouched test part (of record)" in text and "recall at 5 % false" in text


def test_bench_by_shape_separates_a_score_that_drifts_with_shape():
    """A normal score that depends on the image's shape lowers the AUROC over all images; within
    each shape bin the ranking is perfect, and the by-shape table shows it."""
    from tools.bench_anomaly import by_shape

    kinds = np.array(["good", "crack"] * 4)
    aspects = np.array([0.5, 0.5, 0.8, 0.8, 1.2, 1.2, 2.0, 2.0])
    # Good images of wide shapes score higher than defects of tall shapes.
    scores = np.array([0.0, 0.1, 1.0, 1.1, 2.0, 2.1, 3.0, 3.1])
    rows = by_shape(kinds, aspects, scores)
    assert [row["auroc"] for row in rows] == [1.0, 1.0, 1.0, 1.0]
    assert [row["good_mean"] for row in rows] == [0.0, 1.0, 2.0, 3.0]
    assert rows[-1]["aspect"] == [1.5, None]
    empty = by_shape(np.array(["good"]), np.array([0.5]), np.array([0.3]))
    assert empty[0]["auroc"] is None and empty[1]["n_good"] == 0 and empty[1]["good_mean"] is None


def test_fuse_refuses_models_it_cannot_fuse(tiny_anomaly, tmp_path, capsys):
    requires_torch()
    from training.anomaly.fuse import main as fuse_main

    # Another seed holds out other images (unless --split-seed pins the split): no image would be
    # unseen by both members to calibrate on.
    other = tmp_path / "other-seed.onnx"
    spec = AnomalyDetector(tiny_anomaly, threads=1).spec
    command = spec.provenance["training_command"] + " --seed 5"
    config = {**spec.provenance["training_config"], "seed": 5}  # what fuse reads (the command is shown)
    text = json.dumps({**json.loads(spec.to_json()),
                       "provenance": {**spec.provenance, "training_command": command, "training_config": config}})
    rewrite_metadata_file(tiny_anomaly, other, METADATA_KEY, text)
    assert fuse_main([str(tiny_anomaly), str(other), "--name", "x", "--out", str(tmp_path)]) == 2
    assert "different split seed" in capsys.readouterr().err
    # The same training seed change with the split pinned is fusable (checks only; nothing trained).
    from training.anomaly.fuse import check_members, read_member

    pinned = tmp_path / "pinned.onnx"
    text = json.dumps({**json.loads(spec.to_json()),
                       "provenance": {**spec.provenance, "training_command": command + " --split-seed 0",
                                      "training_config": {**config, "split_seed": 0}}})
    rewrite_metadata_file(tiny_anomaly, pinned, METADATA_KEY, text)
    check_members([read_member(tiny_anomaly), read_member(pinned)])
    assert fuse_main([str(tiny_anomaly), "--name", "x", "--out", str(tmp_path)]) == 2
    assert "two or more" in capsys.readouterr().err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    assert fuse_main([str(tiny_anomaly), str(broken), "--name", "x", "--out", str(tmp_path)]) == 2
    assert "broken.onnx" in capsys.readouterr().err
    denoiser = ROOT / "exported" / "denoise-gray-fast.onnx"
    assert fuse_main([str(tiny_anomaly), str(denoiser), "--name", "x", "--out", str(tmp_path)]) == 2
    assert "expected an anomaly model" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("n_out", [128, 96, 100])
def test_fuse_area_matrix_is_opencv_area_resize(n_out):
    requires_torch()
    from training.anomaly.fuse import area_matrix

    x = np.random.default_rng(0).random((384, 256), dtype=np.float32)
    got = area_matrix(n_out, 384) @ x @ area_matrix(n_out, 256).T
    assert np.allclose(got, cv2.resize(x, (n_out, n_out), interpolation=cv2.INTER_AREA), atol=1e-6)


def test_holdout_scores_tool_recovers_the_split_and_notices_other_images(tiny_anomaly, folders, capsys):
    from tools.anomaly_holdout_scores import main as holdout_main

    # The training command's own held-out images, recovered from the split seed: the recorded
    # statistics come back (PyTorch at training, onnxruntime now).
    assert holdout_main([str(tiny_anomaly), "--normal", str(folders["normal"])]) == 0
    assert "the same to float precision" in capsys.readouterr().out
    # Other images (another folder, or another held-out share) do not match what was recorded.
    assert holdout_main([str(tiny_anomaly), "--val-normal", str(folders["val_normal"])]) == 1
    assert holdout_main([str(tiny_anomaly), "--normal", str(folders["normal"]), "--holdout", "0.3"]) == 1
    assert "DIFFERENT" in capsys.readouterr().out
    assert holdout_main([str(tiny_anomaly), "--normal", str(folders["normal"] / "missing")]) == 2


def test_a_missing_input_with_a_colon_keeps_its_whole_name_in_the_report(anomaly_model, tmp_path):
    report = tmp_path / "r.json"
    missing = str(tmp_path / "12:30 shots" / "x.png")
    assert main(["anomaly", missing, "-m", str(anomaly_model), "--report", str(report)]) == 1
    rows = json.loads(report.read_text())["images"]
    assert [r["file"] for r in rows] == [missing] and rows[0]["status"] == "failed"


def test_task_classes_share_a_loaded_model_and_score_batches_alike(anomaly_model, folders):
    """One family: each task class takes a name, a path or a loaded model; ``score`` is a float
    for one image and an (N,) array for a list, higher meaning less normal."""
    from edge_ae import load_model

    loaded = load_model(anomaly_model, threads=1)
    det = AnomalyDetector(loaded)
    assert det.model is loaded
    images = [read_image(p) for p in sorted(folders["val_normal"].iterdir())[:3]]
    one = det.score(images[0])
    many = det.score(images)
    assert isinstance(one, float) and many.shape == (3,) and many[0] == pytest.approx(one, rel=1e-6)
    with pytest.raises(ModelError, match="expected a denoiser"):
        from edge_ae import Denoiser

        Denoiser(loaded)


def test_anomaly_check_command_compares_held_out_scores_with_the_calibration(tiny_anomaly, folders, tmp_path, capsys):
    """``edge-ae anomaly check`` (no training package needed): the held-out images the model was
    calibrated on give back the recorded statistics; other images do not."""
    import shutil

    from tools.anomaly_holdout_scores import training_split

    held_out = tmp_path / "held-out"
    held_out.mkdir()
    for path in training_split(AnomalyDetector(tiny_anomaly).spec, folders["normal"])[1]:
        shutil.copy(path, held_out / path.name)
    assert main(["anomaly", "check", str(tiny_anomaly), "--val-normal", str(held_out), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "the same to float precision" in out
    # The trade of the operating point: the model's threshold and those for other false-positive rates.
    assert "the model's threshold" in out and "for 5% false positives" in out and "defects found" not in out
    assert main(["anomaly", "check", "-m", str(tiny_anomaly), "--normal", str(held_out), "--anomalous",
                 str(folders["anomalous"]), "--threads", "1"]) == 0
    assert "defects found" in capsys.readouterr().out
    assert main(["anomaly", "check", str(tiny_anomaly), "--val-normal", str(folders["val_normal"])]) == 1
    assert "DIFFERENT" in capsys.readouterr().out
    assert main(["anomaly", "check", str(tiny_anomaly), "--val-normal", str(tmp_path / "missing")]) == 2


def test_detector_takes_providers(anomaly_model):
    detector = AnomalyDetector(anomaly_model, threads=1, providers=["CPUExecutionProvider"])
    assert detector.model.session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ModelError, match="not available"):
        AnomalyDetector(anomaly_model, providers=["NoSuchExecutionProvider"])


def test_fusion_reads_the_recorded_config_and_still_reads_old_commands(tiny_anomaly):
    """Exports record the training config as JSON and fuse.py reads it; models exported before
    (the shipped ones) have only the command, which is parsed as before."""
    requires_torch()
    from training.anomaly.fuse import member_config

    provenance = load_model(tiny_anomaly).spec.provenance
    recorded = member_config(tiny_anomaly, provenance)
    assert provenance["training_config"] == recorded.to_dict() and recorded.size == 32
    legacy = {k: v for k, v in provenance.items() if k != "training_config"}
    assert member_config(tiny_anomaly, legacy) == recorded
    with pytest.raises(ModelError, match="does not know"):
        member_config(tiny_anomaly, {**provenance, "training_config": {**recorded.to_dict(), "warp": 9}})
