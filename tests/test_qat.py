"""Quantization-aware fine-tuning (training/denoise/qat.py): the simulation rounds what onnxruntime will
round, comes off cleanly, and the fine-tuned checkpoint exports and quantizes like any other."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="tests training (the train extra): needs torch")

import torch
from torch.nn.utils import parametrize

from conftest import write_wave_images
from edge_ae import load_model
from training.denoise.export import export_checkpoint
from training.denoise.qat import Simulation, fine_tune
from training.denoise.qat import main as qat_main
from training.denoise.train import DenoiserConfig, train
from training.nets import build


def test_simulation_rounds_weights_and_activations_and_comes_off_cleanly():
    torch.manual_seed(0)
    net = build("unet_dae", channels=1, width=4, depths=[1, 1, 1], merge="add")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, s = torch.rand(2, 1, 32, 32), torch.full((2, 1), 0.1)
    with torch.no_grad():
        plain = net(x, s)
        sim = Simulation(net)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        first = next(k for k in before if k.endswith("weight"))
        assert not parametrize.is_parametrized(convs[0]) and torch.equal(convs[0].weight, before[first])
        for conv in convs[1:]:  # the others: whole multiples of a per-channel step, within 7 bits
            original = conv.parametrizations.weight.original
            step = original.abs().amax(dim=(1, 2, 3), keepdim=True) / 63.5
            levels = conv.weight / step
            assert torch.allclose(levels, levels.round(), atol=1e-3) and levels.abs().max() <= 64
            assert not torch.equal(conv.weight, original)
        net.train()
        net(x, s)  # ranges from one batch
        net.eval()
        weights_only = net(x, s)
        sim.enable()
        rounded = net(x, s)
        # Activations are rounded on top of the weights, and all of it stays close to the float net.
        assert not torch.equal(rounded, weights_only) and not torch.equal(weights_only, plain)
        assert (rounded - plain).abs().max() < 0.1
        restored = sim.remove()
    assert restored.state_dict().keys() == before.keys()
    assert all(torch.equal(restored.state_dict()[k], before[k]) for k in before)
    with torch.no_grad():
        assert torch.equal(restored(x, s), plain)


def test_fine_tuned_checkpoint_exports_with_its_record(tmp_path):
    folder = write_wave_images(tmp_path / "clean", height=96, width=112)
    cfg = DenoiserConfig(name="tiny", network="unet_dae", network_args={"width": 4, "depths": [1, 1, 1]},
                         channels=1, train_dirs=[str(folder)], holdout=2, patch=32, batch=4, steps=2,
                         steps_per_epoch=2, seed=0)
    trained = train(cfg, tmp_path / "runs", threads=1)
    tuned = fine_tune(trained, tmp_path / "qat", steps=3, threads=1, command="test")
    ckpt = torch.load(tuned, weights_only=False)
    assert ckpt["config"] == torch.load(trained, weights_only=False)["config"]
    assert ckpt["qat"]["steps"] == 3 and set(ckpt["qat"]["holdout_psnr_db"]) == {
        "float_before", "simulated_before", "simulated_after", "float_after"}
    path, spec = export_checkpoint(tuned, tmp_path / "exported", manifest=False)
    assert spec.provenance["qat"]["command"] == "test"
    assert spec.provenance["training_command"].endswith("&& python -m training.denoise.qat runs/tiny/best.pt --out runs/qat")
    out = load_model(path).run({"image": np.full((1, 1, 32, 32), 0.5, np.float32),
                                "sigma": np.full((1, 1), 0.1, np.float32)})[0]
    assert out.shape == (1, 1, 32, 32) and np.isfinite(out).all()


def test_qat_cli_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit) as exc:
        qat_main([str(tmp_path / "nope.pt"), "--out", str(tmp_path / "out")])
    assert "no checkpoint" in str(exc.value)
    assert not (tmp_path / "out").exists()
