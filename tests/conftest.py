"""Shared fixtures. The runtime's tiny models are written here with onnx.helper (no torch), so
the runtime's tests run where only the runtime and pytest are installed, end to end, without
the shipped models or ../shared. Tests of training build theirs through training (torch) and
skip when torch is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def needs_shared(*parts: str):
    """Skip unless ../shared/data/<parts> exists (a user's fresh machine has no shared data)."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared data set not present: {path}")


def write_wave_images(folder: Path, *, height: int, width: int, count: int = 6) -> Path:
    """``count`` smooth, textured color PNGs (products of sine waves): clean images for training
    and calibration tests; the same maker ``tools/training_fingerprint.py`` trains on."""
    from tools.training_fingerprint import wave_images

    return wave_images(folder, height=height, width=width, count=count)


def requires_torch(reason: str = "tests training and export code"):
    """Skip a test (or, at module level, a file) of training or of the exports when torch is absent."""
    return pytest.importorskip("torch", reason=f"{reason}: needs torch (the train extra)")


def export_tiny_denoiser(out_dir: Path, *, channels: int, name: str = "tiny", noise_input: bool = True,
                         seed: int = 0) -> Path:
    """A tiny edge-ae denoiser written with onnx.helper (no torch): two 3x3 convolutions with
    random weights (receptive field 5) as a residual scaled by the noise level, dynamic batch
    and size, size multiple 4 (so padding to the multiple is exercised), valid metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge_ae.model.contract import COLOR_ORDERS, METADATA_KEY, ModelSpec

    rng = np.random.default_rng(seed)
    width = 4
    weights = {
        "w1": rng.normal(0, 0.5, (width, channels, 3, 3)).astype(np.float32),
        "b1": rng.normal(0, 0.1, width).astype(np.float32),
        "w2": rng.normal(0, 0.5, (channels, width, 3, 3)).astype(np.float32),
        "b2": rng.normal(0, 0.1, channels).astype(np.float32),
        "shape": np.array([-1, 1, 1, 1], np.int64),
        "level": np.array(0.1, np.float32),  # the residual's scale without a noise input
    }
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], **conv),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["residual"], **conv)]
    if noise_input:
        nodes.append(helper.make_node("Reshape", ["sigma", "shape"], ["scale"]))
    nodes += [helper.make_node("Mul", ["residual", "scale" if noise_input else "level"], ["scaled"]),
              helper.make_node("Sub", ["image", "scaled"], ["denoised"])]
    dims = ["batch", channels, "height", "width"]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)]
    if noise_input:
        inputs.append(helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["batch", 1]))
    graph = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info("denoised", TensorProto.FLOAT, dims)],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    spec = ModelSpec(
        name=name, kind="denoiser", channels=channels, color_order=COLOR_ORDERS[channels], size_multiple=4,
        receptive_field=5, noise_input=noise_input, noise_levels=(0.0, 50.0), description="tiny test model",
        provenance={"training_command": "tests/conftest.py (hand-built, untrained)"},
    )
    helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def export_tiny_unet(out_dir: Path, *, channels: int, name: str = "tiny-unet", seed: int = 0) -> Path:
    """An untrained tiny U-Net exported through training (needs torch): for tests of the
    exporter and of tools that look inside a real network."""
    torch = requires_torch()

    from edge_ae.model.contract import COLOR_ORDERS, ModelSpec
    from training.denoise.export import DenoiserGraph, measure_receptive_field
    from training.nets import build
    from training.onnx_export import export

    torch.manual_seed(seed)
    net = build("unet_dae", channels=channels, width=4, depths=(1, 1, 1)).eval()
    spec = ModelSpec(
        name=name, kind="denoiser", channels=channels, color_order=COLOR_ORDERS[channels],
        size_multiple=net.size_multiple, receptive_field=measure_receptive_field(net, channels),
        noise_input=True, noise_levels=(0.0, 50.0), description="tiny test model",
        provenance={"training_command": "tests/conftest.py (untrained)"},
    )
    example = (torch.rand(1, channels, 32, 32), torch.full((1, 1), 0.1))
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "denoised": {0: "batch", 2: "height", 3: "width"},
           "sigma": {0: "batch"}}
    return export(DenoiserGraph(net, True), example, spec, out_dir / f"{name}.onnx", dynamic_axes=dyn)


def write_tiny_anomaly_model(path: Path, *, size: int = 32, channels: int = 1, name: str = "tiny-anomaly",
                             level: float = 0.8) -> Path:
    """A tiny edge-ae anomaly model written with onnx.helper (no torch): the map is how far each
    pixel (channel mean) is above ``level``, the score the map's maximum; fixed size x size input,
    calibrated so that a pixel a tenth above ``level`` is anomalous. Bright blobs on a darker
    texture (tests/test_anomaly.py's images) score higher than the texture."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge_ae.model.contract import COLOR_ORDERS, METADATA_KEY, AnomalyCalibration, ModelSpec

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Sub", ["mean", "level"], ["above"]),
             helper.make_node("Relu", ["above"], ["anomaly_map"]),
             helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0)]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch", 1, size, size]),
         helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
        [numpy_helper.from_array(np.array(level, np.float32), "level")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    spec = ModelSpec(
        name=name, kind="anomaly", channels=channels, color_order=COLOR_ORDERS[channels], size_multiple=1,
        receptive_field=1, input_size=(size, size), description="tiny test model (brightness above a level)",
        anomaly=AnomalyCalibration(threshold=0.1, score_mean=0.02, score_std=0.03, target_fpr=0.01, n_images=8),
        provenance={"training_command": "tests/conftest.py (hand-built)"},
    )
    helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("models")
    return {
        "gray": export_tiny_denoiser(out, channels=1, name="tiny-gray"),
        "color": export_tiny_denoiser(out, channels=3, name="tiny-color"),
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def write_hand_made_denoiser(path: Path, node, initializer, *, name: str, receptive_field: int) -> Path:
    """An edge-ae color denoiser ONNX file made by hand (no torch): one ``node`` from ``image``
    to ``denoised`` with one ``initializer``, dynamic batch and size, and valid metadata."""
    import onnx
    from onnx import TensorProto, helper

    from edge_ae.model.contract import METADATA_KEY, ModelSpec

    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["n", 3, "h", "w"])], [initializer])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    spec = ModelSpec(name=name, kind="denoiser", channels=3, color_order="BGR", receptive_field=receptive_field)
    helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.save(model, str(path))
    return path

