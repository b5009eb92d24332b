"""Every MNIST recipe (issue 4) for one epoch on a small slice: metrics JSON, figures, ONNX
export with parity, shipped models in a temporary manifest. Uses the first 240 images of the
real data when ../shared is present, else synthetic digits; the full runs are
``python -m training.mnist all`` (docs/SEEDS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="tests training (the train extra): needs torch")

from training.mnist import data, metrics
from training.mnist.context import Context
from training.mnist.recipes import RECIPES, run_recipe
from training.onnx_export import PARITY_TOLERANCE

SHIPPED = {"dense36": "mnist-dense36", "deep": "mnist-deep", "conv": "mnist-conv", "denoise": "mnist-denoise"}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Context:
    root = tmp_path_factory.mktemp("mnist")
    return Context(out=root / "runs", epochs=1, limit=240, allow_synthetic=True, ship_dir=root / "exported",
                   classes=(0, 1))


def _parities(export: dict) -> list[float]:
    if "parity_max_abs_diff" in export:
        return list(export["parity_max_abs_diff"].values())
    return [v for sub in export.values() if isinstance(sub, dict) for v in _parities(sub)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_runs_on_a_slice(ctx, name):
    record = run_recipe(name, ctx)
    folder = ctx.out / name
    assert json.loads((folder / "metrics.json").read_text())["recipe"] == name
    assert record["command"].startswith(f"python -m training.mnist {name}")
    for figure in record["figures"]:
        assert (folder / figure).stat().st_size > 1000, figure
    assert record["headline"]["value"] is not None
    assert all(d <= PARITY_TOLERANCE for d in _parities(record["export"]))
    if name in SHIPPED:
        manifest = json.loads((ctx.ship_dir / "manifest.json").read_text())
        names = {m["name"]: m for m in manifest["models"]}
        base = SHIPPED[name]
        assert {base, f"{base}-encoder", f"{base}-decoder"} <= set(names)
        assert names[base]["kind"] == "autoencoder" and names[base]["quality"]
        assert names[f"{base}-decoder"]["quality"]["part_of"] == base
        from edge_ae import Autoencoder

        ae = Autoencoder(ctx.ship_dir / f"{base}.onnx", threads=1)
        x = ctx.data().test.x[:4, 0]
        assert ae.encode(x).shape == (4, ae.latent_dim)
        assert ae.reconstruct(x).shape == (4, 28, 28)


@pytest.mark.slow
def test_oneclass_reports_every_class(ctx):
    record = json.loads((ctx.out / "oneclass" / "metrics.json").read_text()) if (ctx.out / "oneclass").exists() \
        else run_recipe("oneclass", ctx)
    for dataset in ("mnist", "fashion_mnist"):
        aucs = record["results"]["auroc"][dataset]
        assert set(aucs) == {"0", "1"} and all(0 <= v <= 1 for v in aucs.values())


def test_synthetic_data_looks_like_mnist():
    ds = data.synthetic(50, 20)
    assert ds.train.x.shape == (50, 1, 28, 28) and ds.train.x.dtype == np.float32
    assert 0 <= ds.train.x.min() and ds.train.x.max() <= 1
    assert set(ds.train.y) == set(range(10))


def test_metrics():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert metrics.purity(labels, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(4 / 6)
    perfect = metrics.clustering_scores(labels, np.array([2, 2, 0, 0, 1, 1]))
    assert perfect == {"purity": 1.0, "nmi": 1.0, "ari": 1.0}
    clean = np.zeros((2, 1, 4, 4), np.float32)
    assert metrics.mean_psnr(clean, clean + 0.1) == pytest.approx(20.0, abs=1e-3)
    assert metrics.auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0


def test_cli_rejects_unknown_recipe(capsys):
    from training.mnist.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["nonsense"])
    assert exc.value.code == 2 and "unknown recipe" in capsys.readouterr().err


def test_cli_short_run_never_ships(tmp_path, monkeypatch):
    """--epochs/--limit runs are quick checks: they must not replace exported/ models."""
    from training.mnist import cli

    seen = {}

    def fake_run(name, ctx):
        seen["ctx"] = ctx
        return {"headline": {"metric": "m", "value": 0}, "wall_seconds": 0}

    monkeypatch.setattr(cli, "run_recipe", fake_run)
    assert cli.main(["dense36", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert seen["ctx"].ship_dir is None


def test_export_parts_have_the_contract(ctx):
    from edge_ae.model.loading import load_model

    folder = ctx.ship_dir
    if not (folder / "mnist-dense36.onnx").exists():
        run_recipe("dense36", ctx)
    ae = load_model(Path(folder) / "mnist-dense36.onnx")
    assert ae.spec.parts == {"encoder": "mnist-dense36-encoder.onnx", "decoder": "mnist-dense36-decoder.onnx"}
    assert ae.spec.input_size == (28, 28) and ae.spec.latent_dim == 36
    enc = load_model(Path(folder) / ae.spec.parts["encoder"])
    dec = load_model(Path(folder) / ae.spec.parts["decoder"])
    assert (enc.spec.kind, dec.spec.kind) == ("encoder", "decoder")
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    z = enc.run({"image": x})[0]
    assert z.shape == (3, 36)
    np.testing.assert_allclose(dec.run({"latent": z})[0], ae.run({"image": x})[0], atol=1e-5)
