"""Shared fixtures. Tiny models are built and exported here (torch is in the dev venv), so the
runtime is tested end to end without the shipped models or ../shared."""

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
    and calibration tests."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    for i in range(count):
        image = 127 + 100 * np.sin(x / (5 + i)) * np.cos(y / (7 + i))
        cv2.imwrite(str(folder / f"{i}.png"), np.dstack([image, image[::-1], image[:, ::-1]]).astype(np.uint8))
    return folder


def export_tiny_denoiser(out_dir: Path, *, channels: int, name: str = "tiny", noise_input: bool = True,
                         seed: int = 0) -> Path:
    import torch

    from edge_ae.model.contract import COLOR_ORDERS, ModelSpec
    from training.denoise.export import DenoiserGraph, measure_receptive_field
    from training.nets import build
    from training.onnx_export import export

    torch.manual_seed(seed)
    net = build("unet_dae", channels=channels, width=4, depths=(1, 1, 1)).eval()
    spec = ModelSpec(
        name=name, kind="denoiser", channels=channels, color_order=COLOR_ORDERS[channels],
        size_multiple=net.size_multiple, receptive_field=measure_receptive_field(net, channels),
        noise_input=noise_input, noise_levels=(0.0, 50.0), description="tiny test model",
        provenance={"training_command": "tests/conftest.py (untrained)"},
    )
    graph = DenoiserGraph(net, noise_input)
    example = (torch.rand(1, channels, 32, 32), torch.full((1, 1), 0.1))
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "denoised": {0: "batch", 2: "height", 3: "width"}}
    if noise_input:
        dyn["sigma"] = {0: "batch"}
    return export(graph, example if noise_input else example[:1], spec, out_dir / f"{name}.onnx", dynamic_axes=dyn)


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

