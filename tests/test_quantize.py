"""8-bit quantization of an exported denoiser (training/denoise/quantize.py), on a tiny model trained for a
few steps on images the test makes itself: runs in CI without ../shared."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

pytest.importorskip("torch", reason="tests training (the train extra): needs torch")

from conftest import write_wave_images
from edge_ae import Denoiser, load_model
from tools.macs import count
from training.denoise.export import export_checkpoint
from training.denoise.quantize import main as quantize_main
from training.denoise.quantize import quantize
from training.denoise.train import DenoiserConfig, train


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize")
    folder = write_wave_images(root / "clean", height=96, width=112)
    cfg = DenoiserConfig(name="tiny", network="unet_dae", network_args={"width": 4, "depths": [1, 1, 1]},
                         channels=3, train_dirs=[str(folder)], holdout=2, patch=32, batch=4, steps=6,
                         steps_per_epoch=3, seed=0)
    best = train(cfg, root / "runs", threads=1)
    path, _ = export_checkpoint(best, root / "exported")
    return path, folder


def test_quantized_model_keeps_the_contract_and_runs(float_model, tmp_path):
    source, folder = float_model
    path, spec, drops = quantize(source, out_dir=tmp_path, calibration=folder, count=8, patch=32,
                                 max_drop=10.0, command="test")
    loaded = load_model(path, kind="denoiser")
    original = load_model(source).spec
    assert loaded.spec == spec and spec.name == "tiny-int8"
    # Everything the runtime needs is carried over unchanged; only name, description, provenance differ.
    for field in ("kind", "channels", "color_order", "size_multiple", "receptive_field", "noise_input", "noise_levels"):
        assert getattr(spec, field) == getattr(original, field)
    q = spec.provenance["quantization"]
    assert spec.provenance["quantized_from"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    convs = [n.name for n in onnx.load(str(source)).graph.node if n.op_type == "Conv"]
    assert q["float_convs"][0] == convs[0] and q["check"]["sigma25_drop_db"] == drops["sigma25_drop_db"]
    assert set(q["calibration_tried"]) == {"8 minmax", "8 percentile"}  # both range rules were tried
    assert ("min/max" in q["calibration"]) != ("percentile" in q["calibration"])  # and the kept one is named
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["tiny-int8"]
    graph = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= graph
    out = Denoiser(path, threads=1)(np.full((33, 35, 3), 120, np.uint8))
    assert out.shape == (33, 35, 3) and out.dtype == np.uint8
    assert count(path)[1] == pytest.approx(count(source)[1])  # same multiply-adds, counted through QDQ


def concat_inputs_from_dequantize(path) -> dict[str, bool]:
    """For each Concat on feature maps: whether all its inputs come out of DequantizeLinear (8-bit)."""
    graph = onnx.load(str(path)).graph
    producer = {out: n.op_type for n in graph.node for out in n.output}
    return {n.name: all(producer.get(i) == "DequantizeLinear" for i in n.input)
            for n in graph.node if n.op_type == "Concat" and any(a.name == "axis" and a.i == 1 for a in n.attribute)}


def test_skip_joins_are_8_bit_and_a_float_layer_keeps_its_join_float(float_model, tmp_path):
    from training.denoise.quantize import float_joins, joins_feeding

    source, folder = float_model
    model = onnx.load(str(source))
    noise_map_join = float_joins(model)
    decoder_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and "/dec" in n.name]
    skip_joins = joins_feeding(model, decoder_convs)
    assert len(skip_joins) == 2 and not set(skip_joins) & set(noise_map_join)
    path, _, _ = quantize(source, out_dir=tmp_path, calibration=folder, count=8, patch=32, max_drop=10.0,
                          manifest=False)
    quantized = concat_inputs_from_dequantize(path)
    # The joins run on 8-bit inputs (QLinearConcat); the image and its noise map are joined in float.
    assert all(quantized[j] for j in skip_joins) and not any(quantized.get(j, False) for j in noise_map_join)
    # One decoder conv kept float: the join in front of it stays float with it.
    assert joins_feeding(model, decoder_convs[-1:]) == skip_joins[-1:]


def test_added_skips_are_joined_in_8_bits(tmp_path):
    from training.denoise.quantize import joins_feeding

    folder = write_wave_images(tmp_path / "clean", height=96, width=112)
    cfg = DenoiserConfig(name="tiny-add", network="unet_dae",
                         network_args={"width": 4, "depths": [1, 1, 1], "merge": "add"},
                         channels=1, train_dirs=[str(folder)], holdout=2, patch=32, batch=4, steps=2,
                         steps_per_epoch=2, seed=0)
    source, _ = export_checkpoint(train(cfg, tmp_path / "runs", threads=1), tmp_path / "exported")
    model = onnx.load(str(source))
    decoder_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and "/dec" in n.name]
    skip_joins = joins_feeding(model, decoder_convs)
    assert len(skip_joins) == 2 and {n.op_type for n in model.graph.node if n.name in skip_joins} == {"Add"}
    path, _, _ = quantize(source, out_dir=tmp_path / "q", calibration=folder, count=8, patch=32, ranges=("minmax",),
                          max_drop=10.0, manifest=False)
    graph = onnx.load(str(path)).graph
    producer = {out: n.op_type for n in graph.node for out in n.output}
    adds = [n for n in graph.node if n.name in skip_joins]
    assert len(adds) == 2 and all(producer.get(i) == "DequantizeLinear" for n in adds for i in n.input)


def activation_scales(path) -> dict[str, float]:
    """Scale of every activation QuantizeLinear (tensor name -> scale)."""
    model = onnx.load(str(path))
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.input[0]: float(consts[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] not in consts}


def test_percentile_ranges_are_never_wider_than_min_max(float_model, tmp_path):
    source, folder = float_model
    scales = {}
    for rule in ("minmax", "percentile"):
        path, spec, _ = quantize(source, out_dir=tmp_path / rule, calibration=folder, count=8, patch=32,
                                 ranges=(rule,), max_drop=10.0, manifest=False)
        assert list(spec.provenance["quantization"]["calibration_tried"]) == [f"8 {rule}"]
        scales[rule] = activation_scales(path)
    assert scales["minmax"].keys() == scales["percentile"].keys() and scales["minmax"]
    # The percentile drops the most extreme values seen, so no range can grow, and some shrink.
    assert all(scales["percentile"][k] <= scales["minmax"][k] * (1 + 1e-6) for k in scales["minmax"])
    assert any(scales["percentile"][k] < scales["minmax"][k] * 0.999 for k in scales["minmax"])


def test_quantize_rejects_an_unknown_range_rule(float_model, tmp_path):
    source, folder = float_model
    with pytest.raises(ValueError, match="range rule"):
        quantize(source, out_dir=tmp_path, calibration=folder, count=8, ranges=("mean",), manifest=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_quantize_refuses_a_model_that_loses_too_much(float_model, tmp_path, capsys):
    source, folder = float_model
    with pytest.raises(SystemExit) as exc:  # no drop can be below -1 dB: must give up, write nothing
        quantize_main([str(source), "--out", str(tmp_path), "--calibration", str(folder), "--count", "4",
                       "--max-drop", "-1", "--no-manifest"])
    assert "loses" in str(exc.value) and "convolutions in float" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_quantize_refuses_a_non_denoiser(tmp_path):
    from conftest import ROOT

    with pytest.raises(ValueError, match="only denoisers"):
        quantize(ROOT / "exported" / "mnist-conv.onnx", out_dir=tmp_path)


def test_quantize_cli_says_what_is_wrong_with_a_broken_file(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(SystemExit) as exc:
        quantize_main([str(junk), "--out", str(tmp_path / "out"), "--no-manifest"])
    assert "not a usable ONNX model" in str(exc.value)
    assert not (tmp_path / "out").exists()


def dequantize_then_depth_to_space() -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> DepthToSpace -> image minus it: the tail of a
    folded (``unshuffle``) 8-bit denoiser."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DepthToSpace", ["xd"], ["up"], blocksize=2, mode="CRD"),
        helper.make_node("Sub", ["image", "up"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "tail",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6]),
         helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 10, 12])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 10, 12])],
        initializer=[onnx.numpy_helper.from_array(np.array(0.01, np.float32), "s"),
                     onnx.numpy_helper.from_array(np.array(128, np.uint8), "z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_depth_to_space_moves_onto_the_8_bit_tensor_with_the_same_output():
    import onnxruntime as ort

    from training.denoise.quantize import depth_to_space_on_8_bits

    before = dequantize_then_depth_to_space()
    after = dequantize_then_depth_to_space()
    assert depth_to_space_on_8_bits(after) == 1
    onnx.checker.check_model(after, full_check=True)
    assert [n.op_type for n in after.graph.node] == ["QuantizeLinear", "DepthToSpace", "DequantizeLinear", "Sub"]
    rng = np.random.default_rng(0)
    feeds = {"x": rng.uniform(-1.5, 1.5, (1, 4, 5, 6)).astype(np.float32), "image": rng.random((1, 1, 10, 12), np.float32)}
    outputs = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
               for m in (before, after)]
    assert np.array_equal(outputs[0], outputs[1])
    assert depth_to_space_on_8_bits(after) == 0  # nothing left to move


def test_depth_to_space_stays_float_behind_a_per_channel_dequantization():
    from training.denoise.quantize import depth_to_space_on_8_bits

    model = dequantize_then_depth_to_space()
    scale = next(t for t in model.graph.initializer if t.name == "s")
    scale.CopyFrom(onnx.numpy_helper.from_array(np.full(4, 0.01, np.float32), "s"))  # one scale per channel
    model.graph.node[1].attribute.append(onnx.helper.make_attribute("axis", 1))
    assert depth_to_space_on_8_bits(model) == 0  # the shuffle would move values away from their channel's scale


def test_a_folded_model_unfolds_its_8_bit_noise_estimate_before_dequantizing(tmp_path):
    folder = write_wave_images(tmp_path / "clean", height=96, width=112)
    cfg = DenoiserConfig(name="tiny-fold", network="unet_dae",
                         network_args={"width": 4, "depths": [1, 1, 1], "unshuffle": 2, "merge": "add"},
                         channels=1, train_dirs=[str(folder)], holdout=2, patch=32, batch=4, steps=2,
                         steps_per_epoch=2, seed=0)
    source, _ = export_checkpoint(train(cfg, tmp_path / "runs", threads=1), tmp_path / "exported")
    path, _, _ = quantize(source, out_dir=tmp_path / "q", calibration=folder, count=8, patch=32, ranges=("minmax",),
                          max_drop=10.0, manifest=False)
    graph = onnx.load(str(path)).graph
    producer = {out: n.op_type for n in graph.node for out in n.output}
    unfold = [n for n in graph.node if n.op_type == "DepthToSpace"]
    assert len(unfold) == 1 and producer[unfold[0].input[0]] == "QuantizeLinear"
    out = Denoiser(path, threads=1)(np.full((33, 35), 120, np.uint8))
    assert out.shape == (33, 35) and out.dtype == np.uint8
