"""The anomaly size policy that keeps the aspect ratio (``--resize keep-aspect``): the contract's
``short_side``, training on images of different shapes, a graph that takes any height and width,
and the refusals where a fixed size is needed (positional statistics, fusion)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_anomaly import texture, with_blob

from conftest import requires_torch
from edge_ae import AnomalyDetector, ModelError
from edge_ae.anomaly.inputs import keep_aspect_size, model_input_size
from edge_ae.model.contract import AnomalyCalibration, ModelSpec

SHAPES = [(48, 64), (64, 40), (40, 96), (56, 56)]  # height, width: wide, tall, very wide, square
TINY = ["--size", "32", "--width", "4", "--latent-channels", "8", "--seg-width", "4", "--batch", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """Normal textures in four shapes."""
    folder = tmp_path_factory.mktemp("mixed") / "normal"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(24):
        h, w = SHAPES[i % len(SHAPES)]
        cv2.imwrite(str(folder / f"n{i:02d}.png"), texture(rng, h, w))
    return folder


@pytest.fixture(scope="module")
def keep_aspect_model(mixed_folder, tmp_path_factory) -> Path:
    requires_torch()
    from training.anomaly.cli import main as train_main

    out = tmp_path_factory.mktemp("keep-aspect")
    rc = train_main(["--normal", str(mixed_folder), "--name", "tiny-ka", "--out", str(out), "--runs", str(out / "runs"),
                     "--no-manifest", "--resize", "keep-aspect", "--steps", "60", "--eval-every", "30", *TINY])
    assert rc == 0
    return out / "tiny-ka.onnx"


def test_size_multiple_fits_both_networks():
    requires_torch()
    import math

    from training.anomaly.config import SIZE_MULTIPLE
    from training.anomaly.net import ConvAutoencoder
    from training.anomaly.segmenter import DefectSegmenter

    assert SIZE_MULTIPLE % math.lcm(ConvAutoencoder.size_multiple, DefectSegmenter.size_multiple) == 0


def test_keep_aspect_size():
    assert keep_aspect_size(100, 300, short_side=32, multiple=16) == (32, 96)
    assert keep_aspect_size(301, 100, short_side=32, multiple=16) == (96, 32)
    assert keep_aspect_size(50, 50, short_side=128, multiple=16) == (128, 128)
    assert keep_aspect_size(400, 500, short_side=128, multiple=16) == (128, 160)  # 160 = 500 * 128 / 400
    assert keep_aspect_size(3, 1, short_side=16, multiple=16) == (48, 16)


def test_contract_needs_a_size_for_anomaly_models():
    cal = AnomalyCalibration(threshold=0.5, score_mean=0.1, score_std=0.1)
    common = {"name": "m", "kind": "anomaly", "channels": 1, "color_order": "GRAY", "anomaly": cal}
    with pytest.raises(ModelError, match="needs a fixed input_size or a short_side"):
        ModelSpec(**common)
    with pytest.raises(ModelError, match="either a fixed input_size or a short_side"):
        ModelSpec(**common, input_size=(32, 32), short_side=32)
    with pytest.raises(ModelError, match=r"short_side \(40\) must be a multiple of size_multiple \(16\)"):
        ModelSpec(**common, short_side=40, size_multiple=16)
    spec = ModelSpec(**common, short_side=32, size_multiple=16)
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert model_input_size(spec, 300, 100) == (96, 32)


def test_keep_aspect_model_takes_each_image_at_its_own_shape(keep_aspect_model):
    import onnx

    det = AnomalyDetector(keep_aspect_model, threads=1)
    spec = det.spec
    assert spec.short_side == 32 and spec.input_size is None and spec.size_multiple == 16 and det.input_size is None
    assert spec.provenance["resize"].startswith("shorter side")
    dims = onnx.load(str(keep_aspect_model)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, "height", "width"]
    rng = np.random.default_rng(4)
    for h, w in [(48, 64), (120, 40), (17, 23), (33, 200)]:
        image = texture(rng, h, w)
        result = det(image)
        assert result.anomaly_map.shape == (h, w) and np.isfinite(result.score)
        # The graph ran at the aspect-kept size: its map's maximum is the score.
        maps, scores = det.raw([image])
        assert maps.shape[1:] == model_input_size(spec, h, w)
        assert scores[0] == pytest.approx(float(maps.max()), rel=1e-5)
    two = [texture(rng, 48, 64), with_blob(texture(rng, 48, 64), rng)]
    assert det.raw(two)[0].shape == (2, 32, 48)
    with pytest.raises(ValueError, match="one input size"):
        det.raw([texture(rng, 48, 64), texture(rng, 64, 48)])


def test_keep_aspect_data_of_mixed_shapes():
    requires_torch()
    from training.anomaly import data

    rng = np.random.default_rng(0)
    images = [rng.random((1, h, w), dtype=np.float32) for h, w in [(32, 48), (32, 48), (48, 32), (32, 48)]]
    assert [c.shape for c in data.chunks(images, 8)] == [(2, 1, 32, 48), (1, 1, 48, 32), (1, 1, 32, 48)]
    assert [c.shape for c in data.chunks(np.stack(images[:2]), 1)] == [(1, 1, 32, 48)] * 2
    defective, masks = data.synthetic_set(images, rng)
    assert [d.shape for d in defective] == [im.shape for im in images]
    assert [m.shape for m in masks] == [im.shape[1:] for im in images]
    assert all(m.max() > 0 for m in masks)
    batches = data.Batches(images, synthetic_fraction=1.0, input_noise=0.0, flips=True, rng=rng, patch=32)
    noisy, clean, defect = batches.batch(4)
    assert noisy.shape == clean.shape == (4, 1, 32, 32) and defect.shape == (4, 1, 32, 32)
    # Whole images: each batch holds images of one shape, every shape turns up.
    whole = data.Batches(images, synthetic_fraction=0.5, input_noise=0.0, flips=True, rng=rng, patch=0)
    shapes = {whole.batch(3)[0].shape for _ in range(20)}
    assert shapes == {(3, 1, 32, 48), (3, 1, 48, 32)}
    with pytest.raises(ValueError, match="at most 32 px, found 40"):
        data.Batches(images, synthetic_fraction=0.5, input_noise=0.0, flips=False, rng=rng, patch=40)


@pytest.mark.slow
def test_keep_aspect_error_map_without_positional_statistics(mixed_folder, tmp_path):
    requires_torch()
    from training.anomaly.cli import main as train_main

    rc = train_main(["--normal", str(mixed_folder), "--name", "tiny-ka-error", "--out", str(tmp_path), "--runs",
                     str(tmp_path / "runs"), "--no-manifest", "--resize", "keep-aspect", "--map", "error",
                     "--no-positional", "--steps", "10", "--eval-every", "10", *TINY])
    assert rc == 0
    result = AnomalyDetector(tmp_path / "tiny-ka-error.onnx", threads=1)(texture(np.random.default_rng(2), 40, 90))
    assert result.anomaly_map.shape == (40, 90) and np.isfinite(result.score)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sizes", "32,48"], "sizes that divide the largest, found 32, 48"),
        (["--size", "40"], "multiples of 16, found 40"),
        (["--size", "32", "--patch", "48"], "at most the shorter side"),
        (["--size", "32", "--map", "error"], "needs --no-positional"),
    ],
)
def test_keep_aspect_refuses_what_needs_a_fixed_size(options, message, tmp_path, capsys):
    requires_torch()
    from training.anomaly.cli import main as train_main

    with pytest.raises(SystemExit):
        train_main(["--normal", str(tmp_path), "--name", "x", "--resize", "keep-aspect", *options])
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_fuse_keep_aspect_members(keep_aspect_model, mixed_folder, tmp_path):
    """A 64 px member on 32 px crops fused with the 32 px one: the fused graph keeps the aspect
    ratio at 64 px (both sides multiples of 32, so the 32 px member gets a 2x box average)."""
    requires_torch()
    from training.anomaly.cli import main as train_main
    from training.anomaly.fuse import main as fuse_main

    runs = keep_aspect_model.parent / "runs"
    tiny = [a if a != "32" else "64" for a in TINY[:2]] + TINY[2:]
    assert train_main(["--normal", str(mixed_folder), "--name", "tiny-ka-64", "--out", str(tmp_path), "--runs",
                       str(runs), "--no-manifest", "--resize", "keep-aspect", "--patch", "32", "--steps", "20",
                       "--eval-every", "20", *tiny]) == 0
    assert fuse_main([str(keep_aspect_model), str(tmp_path / "tiny-ka-64.onnx"), "--name", "ka-fused", "--out",
                      str(tmp_path), "--no-manifest"]) == 0
    det = AnomalyDetector(tmp_path / "ka-fused.onnx", threads=1)
    assert det.spec.short_side == 64 and det.spec.size_multiple == 32 and det.input_size is None
    assert [m["input_size"] for m in det.spec.provenance["members"]] == [32, 64]
    rng = np.random.default_rng(6)
    for h, w in [(48, 64), (150, 50)]:
        image = texture(rng, h, w)
        assert det(image).anomaly_map.shape == (h, w)
        maps, scores = det.raw([image])
        assert maps.shape[1:] == model_input_size(det.spec, h, w) and scores[0] == pytest.approx(float(maps.max()))


def test_fuse_refuses_keep_aspect_members_it_cannot_fuse(keep_aspect_model, tmp_path, capsys):
    requires_torch()
    import json

    from edge_ae.model.contract import METADATA_KEY
    from edge_ae.model.onnx_meta import rewrite_metadata_file
    from training.anomaly.fuse import main as fuse_main

    spec = json.loads(AnomalyDetector(keep_aspect_model, threads=1).spec.to_json())
    odd, stretched = tmp_path / "odd.onnx", tmp_path / "stretched.onnx"
    rewrite_metadata_file(keep_aspect_model, odd, METADATA_KEY, json.dumps({**spec, "short_side": 48}))
    rewrite_metadata_file(keep_aspect_model, stretched, METADATA_KEY,
                          json.dumps({**spec, "short_side": None, "input_size": [32, 32], "size_multiple": 1}))
    assert fuse_main([str(keep_aspect_model), str(odd), "--name", "x", "--out", str(tmp_path)]) == 2
    assert "short sides that divide the largest (48)" in capsys.readouterr().err
    assert fuse_main([str(keep_aspect_model), str(stretched), "--name", "x", "--out", str(tmp_path)]) == 2
    assert "fit images differently" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_runtime_refuses_short_side_on_a_fixed_size_graph(keep_aspect_model, tmp_path):
    import onnx

    proto = onnx.load(str(keep_aspect_model))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 32, 48
    fixed = tmp_path / "fixed.onnx"
    onnx.save(proto, str(fixed))
    with pytest.raises(ModelError, match=r"aspect ratio is kept \(short_side 32\) but the graph's image input is fixed at 32x48"):
        AnomalyDetector(fixed, threads=1)
