"""edge_ae.Autoencoder and ``edge-ae embed`` end to end on a tiny autoencoder exported here,
plus every shipped autoencoder / encoder / decoder in exported/manifest.json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_ae import Autoencoder, EdgeAEError, ImageError, ModelError, load_model
from edge_ae.cli.main import main
from edge_ae.model.registry import _read_manifest

ROOT = Path(__file__).resolve().parent.parent
LATENT = 8


def write_tiny_autoencoder(folder: Path, *, name: str = "tiny-ae", seed: int = 0) -> Path:
    """An untrained 784-8-784 dense autoencoder written with onnx.helper (no torch), as the MNIST
    export writes one: the whole model, its encoder and its decoder, and their manifest entries."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge_ae.model.contract import METADATA_KEY, ModelSpec
    from edge_ae.model.registry import sha256_of

    rng = np.random.default_rng(seed)
    arrays = {"w_enc": rng.normal(0, 0.05, (784, LATENT)), "b_enc": rng.normal(0, 0.05, LATENT),
              "w_dec": rng.normal(0, 0.3, (LATENT, 784)), "b_dec": rng.normal(0, 0.1, 784)}
    weights = {k: numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()}
    weights["shape"] = numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64), "shape")
    encode = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "w_enc", "b_enc"], ["latent"])]

    def decode(source: str, out: str) -> list:
        return [helper.make_node("Gemm", [source, "w_dec", "b_dec"], ["logits"]),
                helper.make_node("Sigmoid", ["logits"], ["pixels"]),
                helper.make_node("Reshape", ["pixels", "shape"], [out])]

    def tensor(name_: str, dims: list) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name_, TensorProto.FLOAT, dims)

    image, latent = tensor("image", ["batch", 1, 28, 28]), tensor("latent", ["batch", LATENT])
    graphs = {
        "autoencoder": (encode + decode("latent", "reconstruction"), [image], [tensor("reconstruction", ["batch", 1, 28, 28])],
                        ["w_enc", "b_enc", "w_dec", "b_dec", "shape"]),
        "encoder": (encode, [image], [latent], ["w_enc", "b_enc"]),
        "decoder": (decode("latent", "image"), [latent], [image], ["w_dec", "b_dec", "shape"]),
    }
    common = dict(channels=1, color_order="GRAY", input_size=(28, 28), receptive_field=28, latent_dim=LATENT,
                  provenance={"training_command": "tests (hand-built, untrained)"})
    entries = []
    for kind, (nodes, inputs, outputs, used) in graphs.items():
        part_name = name if kind == "autoencoder" else f"{name}-{kind}"
        parts = {"encoder": f"{name}-encoder.onnx", "decoder": f"{name}-decoder.onnx"} if kind == "autoencoder" else {}
        spec = ModelSpec(name=part_name, kind=kind, description=f"tiny test {kind}", parts=parts, **common)
        model = helper.make_model(helper.make_graph(nodes, part_name, inputs, outputs, [weights[k] for k in used]),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 9
        helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
        onnx.checker.check_model(model)
        path = folder / f"{part_name}.onnx"
        onnx.save(model, str(path))
        entries.append({"name": part_name, "file": path.name, "sha256": sha256_of(path), "kind": kind, "channels": 1,
                        "description": spec.description, "size_bytes": path.stat().st_size,
                        "training_command": "tests (hand-built, untrained)", "quality": {}, "speed": {}})
    (folder / "manifest.json").write_text(json.dumps({"schema_version": 1, "models": entries}, indent=2) + "\n")
    return folder / f"{name}.onnx"


@pytest.fixture(scope="module")
def tiny_ae(tmp_path_factory) -> Path:
    """The runtime's autoencoder tests run a hand-built model (no torch)."""
    return write_tiny_autoencoder(tmp_path_factory.mktemp("ae"))


@pytest.fixture
def digits(rng) -> np.ndarray:
    return (rng.random((5, 28, 28)) * 255).astype(np.uint8)


def test_shapes_single_and_batch(tiny_ae, digits):
    ae = Autoencoder(tiny_ae, threads=1)
    assert ae.input_size == (28, 28) and ae.latent_dim == LATENT
    assert ae.encode(digits[0]).shape == (LATENT,)
    z = ae.encode(digits)
    assert z.shape == (5, LATENT) and z.dtype == np.float32
    assert ae.decode(z[0]).shape == (28, 28)
    images = ae.decode(z)
    assert images.shape == (5, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert ae.reconstruct(digits).shape == (5, 28, 28)
    assert isinstance(ae.score(digits[0]), float)
    assert ae.score(digits).shape == (5,)


def test_reconstruct_is_decode_of_encode_and_score_is_mse(tiny_ae, digits):
    ae = Autoencoder(tiny_ae, threads=1)
    recon = ae.reconstruct(digits)
    np.testing.assert_allclose(ae.decode(ae.encode(digits)), recon, atol=1e-5)
    expected = ((recon - digits / 255.0) ** 2).reshape(5, -1).mean(axis=1)
    np.testing.assert_allclose(ae.score(digits), expected, rtol=1e-4, atol=1e-7)


def test_dtypes_colour_and_size_are_adapted(tiny_ae, digits):
    ae = Autoencoder(tiny_ae, threads=1)
    gray = digits[0]
    z = ae.encode(gray)
    np.testing.assert_allclose(ae.encode(gray.astype(np.float32) / 255), z, atol=1e-5)
    np.testing.assert_allclose(ae.encode(gray.astype(np.uint16) * 257), z, atol=1e-5)
    np.testing.assert_allclose(ae.encode(np.repeat(gray[:, :, None], 3, axis=2)), z, atol=1e-2)
    np.testing.assert_allclose(ae.encode(gray[:, :, None]), z, atol=1e-6)
    big = cv2.resize(gray, (56, 56), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_allclose(ae.encode(big), z, atol=1e-4)  # 2x nearest, area-shrunk back: same pixels
    batch = ae.encode([gray, big, np.dstack([gray] * 4)])  # a list may mix sizes and channels
    assert batch.shape == (3, LATENT)


def test_clear_errors(tiny_ae, digits):
    ae = Autoencoder(tiny_ae, threads=1)
    with pytest.raises(EdgeAEError, match=rf"\({LATENT},\) or \(N, {LATENT}\).*got \(3,\)"):
        ae.decode(np.zeros(3, np.float32))
    with pytest.raises(ImageError, match="uint8, uint16 or float32"):
        ae.encode(np.zeros((28, 28), np.int32))
    with pytest.raises(ImageError, match="empty"):
        ae.encode([])
    with pytest.raises(ImageError, match="shape"):
        ae.encode(np.zeros((2, 2, 28, 28, 1), np.uint8))
    with pytest.raises(ModelError, match="expected an autoencoder model, found an encoder"):
        Autoencoder(tiny_ae.parent / "tiny-ae-encoder.onnx")


def test_missing_part_fails_only_where_needed(tiny_ae, tmp_path, digits):
    lonely = tmp_path / "tiny-ae.onnx"
    lonely.write_bytes(tiny_ae.read_bytes())
    ae = Autoencoder(lonely, threads=1)
    assert ae.reconstruct(digits).shape == (5, 28, 28)
    with pytest.raises(ModelError, match="tiny-ae-encoder.onnx is missing"):
        ae.encode(digits)


def test_load_by_name_checks_parts(tiny_ae, monkeypatch, digits):
    monkeypatch.setenv("EDGE_AE_MODELS", str(tiny_ae.parent))
    _read_manifest.cache_clear()
    try:
        ae = Autoencoder("tiny-ae", threads=1)
        assert ae.encode(digits).shape == (5, LATENT)
        assert ae._parts["encoder"].path == tiny_ae.parent / "tiny-ae-encoder.onnx"
    finally:
        _read_manifest.cache_clear()


def _folder_with_broken_file(tmp_path: Path, digits: np.ndarray) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, im in enumerate(digits[:3]):
        cv2.imwrite(str(folder / f"d{i}.png"), im)
    cv2.imwrite(str(folder / "big-color.jpg"), cv2.resize(np.dstack([digits[3]] * 3), (64, 64)))
    (folder / "broken.png").write_bytes(b"not a png at all")
    return folder


def test_embed_cli_npy_and_csv(tiny_ae, tmp_path, digits, capsys):
    folder = _folder_with_broken_file(tmp_path, digits)
    out = tmp_path / "out" / "latents.npy"
    assert main(["embed", str(folder), "-m", str(tiny_ae), "-o", str(out), "--threads", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("failed:") == 1 and "broken.png" in captured.err
    assert "4 embedded" in captured.out and "1 failed" in captured.out
    latents = np.load(out)
    names = out.with_suffix(".files.txt").read_text().splitlines()
    assert latents.shape == (4, LATENT) and len(names) == 4
    d0 = names.index(str(folder / "d0.png"))
    np.testing.assert_allclose(latents[d0], Autoencoder(tiny_ae).encode(digits[0]), atol=1e-5)
    assert not list(out.parent.glob("*.part"))

    csv_out = tmp_path / "latents.csv"
    assert main(["embed", str(folder / "d0.png"), str(folder / "d1.png"), "-m", str(tiny_ae), "-o", str(csv_out)]) == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "path," + ",".join(f"z{i}" for i in range(LATENT)) and len(lines) == 3


def test_embed_cli_refuses_bad_output_and_model(tiny_ae, tmp_path, capsys):
    assert main(["embed", str(tmp_path), "-m", str(tiny_ae), "-o", str(tmp_path / "x.txt")]) == 2
    decoder = tiny_ae.parent / "tiny-ae-decoder.onnx"
    assert main(["embed", str(tmp_path), "-m", str(decoder), "-o", str(tmp_path / "x.npy")]) == 2
    assert "expected an autoencoder model" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def _shipped(kinds: tuple[str, ...]) -> list[dict]:
    manifest = ROOT / "exported" / "manifest.json"
    if not manifest.is_file():
        return []
    return [m for m in json.loads(manifest.read_text())["models"] if m["kind"] in kinds]


@pytest.mark.parametrize("entry", _shipped(("autoencoder", "encoder", "decoder")) or [None],
                         ids=lambda e: e["name"] if e else "none-shipped")
def test_shipped_autoencoder_models_load(entry, monkeypatch):
    if entry is None:
        pytest.skip("no autoencoder/encoder/decoder models in exported/manifest.json")
    monkeypatch.delenv("EDGE_AE_MODELS", raising=False)
    model = load_model(entry["name"], threads=1)
    assert model.spec.kind == entry["kind"] and model.spec.input_size == (28, 28) and model.spec.latent_dim
    if entry["kind"] == "autoencoder":
        ae = Autoencoder(entry["name"], threads=1)
        zeros = np.zeros((2, 28, 28), np.uint8)
        assert ae.encode(zeros).shape == (2, ae.latent_dim)
        assert ae.decode(ae.encode(zeros)).shape == (2, 28, 28)
        assert ae.score(zeros).shape == (2,)


def test_embed_cli_bad_input_corpus(tiny_ae, tmp_path, digits, capsys):
    """Issue 43: a header bomb, a multi-frame file, NaN pixels and a stale temporary file: one
    line per bad file, the rest embedded, the output written, exit 1."""
    from test_bad_inputs import float_tiff, multi_frame, png_bomb

    folder = tmp_path / "in"
    folder.mkdir()
    for i, im in enumerate(digits[:2]):
        cv2.imwrite(str(folder / f"d{i}.png"), im)
    png_bomb(folder / "bomb.png")
    multi_frame(folder / "pages.tif")
    float_tiff(folder / "nan.tif", bad=np.nan, count=3, rng=np.random.default_rng(0))
    out = tmp_path / "out" / "latents.npy"
    out.parent.mkdir()
    stale = out.parent / ".latents.npy.0badc0de.part"
    stale.write_bytes(b"half")
    # An old-pattern temporary (no writer PID in its name) counts as a leftover once a day old.
    os.utime(stale, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert main(["embed", str(folder), "-m", str(tiny_ae), "-o", str(out), "--threads", "1"]) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(failures) == 3 and "Traceback" not in captured.err
    assert any("bomb.png" in f and "over the limit" in f for f in failures)
    assert any("pages.tif" in f and "3 frames" in f for f in failures)
    assert any("nan.tif" in f and "NaN" in f for f in failures)
    assert "2 embedded" in captured.out and "3 failed" in captured.out
    assert np.load(out).shape == (2, LATENT) and not stale.exists()


def test_embed_output_folder_that_cannot_be_created(tiny_ae, tmp_path, digits, capsys):
    cv2.imwrite(str(tmp_path / "d.png"), digits[0])
    (tmp_path / "afile").write_text("x")
    assert main(["embed", str(tmp_path / "d.png"), "-m", str(tiny_ae), "-o", str(tmp_path / "afile" / "l.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot create it" in err and "afile" in err


def test_providers_reach_every_part(tiny_ae, digits):
    ae = Autoencoder(tiny_ae, threads=1, providers=["CPUExecutionProvider"])
    assert ae.encode(digits[:2]).shape == (2, ae.latent_dim)
    assert ae._part("encoder").session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ModelError, match="not available"):
        Autoencoder(tiny_ae, providers=["NoSuchExecutionProvider"])
