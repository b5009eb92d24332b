"""The model contract: every way a model can be unusable gets a one-line ModelError that says
what was expected and what was found."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest

from conftest import requires_torch
from edge_ae import Denoiser, ModelError, load_model
from edge_ae.model.contract import METADATA_KEY, SCHEMA_VERSION, ModelSpec


def _rewrite_metadata(src, dst, value: str | None) -> None:
    proto = onnx.load(str(src))
    del proto.metadata_props[:]
    if value is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, value
    onnx.save(proto, str(dst))


def _meta(path) -> dict:
    proto = onnx.load(str(path))
    return json.loads(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_valid_model_loads_with_typed_spec(tiny_models):
    model = load_model(tiny_models["color"], kind="denoiser")
    assert isinstance(model.spec, ModelSpec)
    assert model.spec.channels == 3 and model.spec.color_order == "BGR"
    assert model.spec.size_multiple == 4 and model.spec.receptive_field > 1
    with pytest.raises(AttributeError):
        model.spec.channels = 1  # frozen


def test_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf at all")
    with pytest.raises(ModelError) as exc:
        load_model(bad)
    assert "not a usable ONNX model" in _one_line(exc)


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.onnx"
    bad.write_bytes(b"")
    with pytest.raises(ModelError):
        load_model(bad)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.onnx")


def test_no_metadata(tiny_models, tmp_path):
    dst = tmp_path / "plain.onnx"
    _rewrite_metadata(tiny_models["gray"], dst, None)
    with pytest.raises(ModelError) as exc:
        load_model(dst)
    assert "no edge-ae metadata" in _one_line(exc)


def test_newer_schema(tiny_models, tmp_path):
    meta = _meta(tiny_models["gray"])
    meta["schema_version"] = SCHEMA_VERSION + 1
    dst = tmp_path / "future.onnx"
    _rewrite_metadata(tiny_models["gray"], dst, json.dumps(meta))
    with pytest.raises(ModelError) as exc:
        load_model(dst)
    assert f"schema {SCHEMA_VERSION + 1} is newer" in _one_line(exc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "teapot"}, "kind must be one of"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"color_order": "RGB"}, "color_order must be 'GRAY'"),
        ({"value_range": [0, 255]}, "value_range must be [0, 1]"),
        ({"size_multiple": 0}, "size_multiple must be a positive integer"),
        ({"short_side": 0}, "short_side must be a positive integer"),
        ({"short_side": 30, "size_multiple": 4}, "short_side (30) must be a multiple of size_multiple (4)"),
        ({"short_side": 32, "input_size": [32, 32]}, "either a fixed input_size or a short_side"),
    ],
)
def test_invalid_fields(tiny_models, tmp_path, change, message):
    meta = {**_meta(tiny_models["gray"]), **change}
    dst = tmp_path / "bad.onnx"
    _rewrite_metadata(tiny_models["gray"], dst, json.dumps(meta))
    with pytest.raises(ModelError) as exc:
        load_model(dst)
    assert message in _one_line(exc)


def test_not_json(tiny_models, tmp_path):
    dst = tmp_path / "bad.onnx"
    _rewrite_metadata(tiny_models["gray"], dst, "{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(dst)


def test_channels_disagree_with_graph(tiny_models, tmp_path):
    meta = {**_meta(tiny_models["gray"]), "channels": 3, "color_order": "BGR"}
    dst = tmp_path / "liar.onnx"
    _rewrite_metadata(tiny_models["gray"], dst, json.dumps(meta))
    with pytest.raises(ModelError, match="metadata says 3 channel"):
        load_model(dst)


def test_wrong_kind_for_class(tiny_models, tmp_path):
    meta = {**_meta(tiny_models["gray"]), "kind": "autoencoder"}
    dst = tmp_path / "ae.onnx"
    _rewrite_metadata(tiny_models["gray"], dst, json.dumps(meta))
    with pytest.raises(ModelError) as exc:
        Denoiser(dst)
    assert "expected a denoiser model, found an autoencoder model" in _one_line(exc)


def test_unknown_name_lists_shipped(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_AE_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        load_model("nope")


def test_shipped_name_checks_sha256(tiny_models, tmp_path, monkeypatch):
    requires_torch()
    from training.onnx_export import update_manifest

    shutil.copy(tiny_models["gray"], tmp_path / "tiny-gray.onnx")
    spec = load_model(tmp_path / "tiny-gray.onnx").spec
    update_manifest(spec, tmp_path / "tiny-gray.onnx")
    monkeypatch.setenv("EDGE_AE_MODELS", str(tmp_path))
    assert load_model("tiny-gray").spec.name == "tiny-gray"
    with (tmp_path / "tiny-gray.onnx").open("ab") as f:
        f.write(b"\0")  # one byte of damage
    with pytest.raises(ModelError, match="corrupt: sha256"):
        load_model("tiny-gray")


def test_spec_json_round_trip(tiny_models):
    spec = load_model(tiny_models["color"]).spec
    assert ModelSpec.from_json(spec.to_json()) == spec


def test_unknown_anomaly_calibration_keys_are_ignored_and_a_wrong_type_is_one_clear_error():
    """A model calibrated by a newer edge-ae (an added calibration field) stays readable, as unknown
    top-level keys do; a calibration that is not an object is refused with a ModelError."""
    from edge_ae.model.contract import AnomalyCalibration

    spec = ModelSpec(name="a", kind="anomaly", channels=1, color_order="GRAY", input_size=(8, 8),
                     anomaly=AnomalyCalibration(threshold=1.0, score_mean=0.5, score_std=0.1, map_median=0.4))
    raw = json.loads(spec.to_json())
    assert ModelSpec.from_json(spec.to_json()).anomaly.map_median == 0.4
    raw["anomaly"]["added_later"] = 3
    assert ModelSpec.from_json(json.dumps(raw)).anomaly == spec.anomaly
    raw["anomaly"] = [1, 2]
    with pytest.raises(ModelError, match="invalid anomaly calibration"):
        ModelSpec.from_json(json.dumps(raw))
