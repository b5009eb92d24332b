"""Training, export and parity on a tiny model for a few steps (runs in CI without ../shared)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import ROOT, write_wave_images
from edge_ae import Denoiser, load_model
from training import noise
from training.export_denoiser import export_checkpoint, measure_receptive_field
from training.nets import build
from training.train_denoiser import DenoiserConfig, main, train


@pytest.fixture
def clean_folder(tmp_path):
    return write_wave_images(tmp_path / "clean", height=72, width=80)


def _config(folder, **over):
    base = dict(name="tiny", network="unet_dae", network_args={"width": 4, "depths": [1, 1, 1]}, channels=3,
                train_dirs=[str(folder)], holdout=2, patch=32, batch=4, steps=6, steps_per_epoch=3, seed=0)
    return DenoiserConfig(**{**base, **over})


def test_train_logs_checkpoints_and_resumes(clean_folder, tmp_path):
    best = train(_config(clean_folder), tmp_path / "runs", threads=1)
    run = best.parent
    assert best.exists() and (run / "checkpoint.pt").exists()
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0] == "step,loss,val_psnr,seconds" and len(rows) == 3
    # Resume: a longer run continues from step 6 instead of starting again.
    train(_config(clean_folder, steps=9), tmp_path / "runs", threads=1)
    steps = [int(r.split(",")[0]) for r in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == [3, 6, 9]


def test_same_seed_same_weights(clean_folder, tmp_path):
    a = train(_config(clean_folder), tmp_path / "a", threads=1)
    b = train(_config(clean_folder), tmp_path / "b", threads=1)
    wa, wb = torch.load(a, weights_only=False)["model"], torch.load(b, weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cli_with_own_folder(clean_folder, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**_config("unused").__dict__, "train_dirs": ["nowhere"]}))
    main([str(cfg), "--out", str(tmp_path / "runs"), "--train-dir", str(clean_folder), "--steps", "3", "--threads", "1"])
    assert (tmp_path / "runs" / "tiny" / "best.pt").exists()


def test_export_parity_and_runtime_use(clean_folder, tmp_path):
    best = train(_config(clean_folder), tmp_path / "runs", threads=1)
    path, spec = export_checkpoint(best, tmp_path / "exported")  # raises if parity > 1e-4
    model = load_model(path, kind="denoiser")
    assert model.spec == spec and spec.noise_input and spec.size_multiple == 4
    manifest = json.loads((tmp_path / "exported" / "manifest.json").read_text())
    assert manifest["models"][0]["name"] == "tiny"
    assert "train_denoiser" in spec.provenance["training_command"]
    out = Denoiser(path, threads=1)(np.zeros((33, 35, 3), np.uint8))
    assert out.shape == (33, 35, 3)


def test_receptive_field_of_known_nets():
    one_conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    class Wrap(torch.nn.Module):
        def forward(self, x, sigma):
            return one_conv(x)

    assert measure_receptive_field(Wrap(), 1, size=32) == 3
    assert measure_receptive_field(build("plain_cae", channels=1), 1) == 22
    # wider than the first 32 px probe: the probe grows instead of reporting a cut-off field
    seven_convs = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 9, padding=4) for _ in range(7)])

    class Wide(torch.nn.Module):
        def forward(self, x, sigma):
            return seven_convs(x)

    assert measure_receptive_field(Wide(), 1, size=32) == 57
    with pytest.raises(ValueError, match="fills the"):
        measure_receptive_field(Wide(), 1, size=32, largest=32)


def test_noise_models(rng):
    clean = rng.random((8, 3, 32, 32), dtype=np.float32)
    noisy, sigma = noise.gaussian(clean, rng, 0.2)
    assert noisy.shape == clean.shape and sigma.shape == (8, 1)
    measured = (noisy - clean).reshape(8, -1).std(axis=1)
    np.testing.assert_allclose(measured, sigma[:, 0], rtol=0.1, atol=0.005)
    cam, cam_sigma = noise.camera(clean, rng, 0.2)
    assert cam.min() >= 0 and cam.max() <= 1 and np.all(cam_sigma >= 0)
    mixed, mixed_sigma = noise.mixed(clean, rng, 0.2, camera_fraction=0.25)
    assert mixed.shape == clean.shape and mixed_sigma.shape == (8, 1)


@pytest.mark.parametrize("path", sorted(ROOT.glob("training/configs/**/*.json")),
                         ids=lambda p: p.stem)
def test_every_config_builds_a_net_that_fits_its_patches(path):
    cfg = DenoiserConfig.load(path)
    net = build(cfg.network, channels=cfg.channels, **cfg.network_args)
    assert cfg.patch % net.size_multiple == 0
    x = torch.rand(1, cfg.channels, cfg.patch, cfg.patch)
    with torch.no_grad():
        out = net(x, torch.full((1, 1), 0.1))
    assert out.shape == x.shape


def test_unet_skips_added_instead_of_concatenated_halve_the_decoder():
    concat = build("unet_dae", channels=1, widths=[8, 8, 8], depths=[1, 1, 1], unshuffle=4)
    added = build("unet_dae", channels=1, widths=[8, 8, 8], depths=[1, 1, 1], unshuffle=4, merge="add")
    assert added.dec1[0].in_channels == 8 and concat.dec1[0].in_channels == 16
    assert added.size_multiple == 16
    with pytest.raises(ValueError, match="merge must be"):
        build("unet_dae", channels=1, merge="sum")


def test_a_1x1_head_narrows_the_measured_receptive_field():
    torch.manual_seed(0)
    nets = {k: build("unet_dae", channels=3, width=4, depths=[1, 1, 1], head_kernel=k).eval() for k in (1, 3)}
    assert nets[1].head.kernel_size == (1, 1) and nets[3].head.kernel_size == (3, 3)
    rf = {k: measure_receptive_field(net, 3) for k, net in nets.items()}
    assert rf[1] < rf[3]  # the metadata the runtime tiles by follows the network, not a formula
    with pytest.raises(ValueError, match="head_kernel must be"):
        build("unet_dae", channels=3, head_kernel=5)


@pytest.mark.parametrize(("channels", "factor"), [(1, 2), (3, 2), (3, 4)])
def test_fused_stem_computes_what_the_fold_and_first_conv_compute(channels, factor):
    torch.manual_seed(0)
    net = build("unet_dae", channels=channels, width=4, depths=[2, 1, 1], unshuffle=factor).eval()
    x = torch.rand(2, channels, 8 * factor, 12 * factor)
    sigma = torch.tensor([[0.05], [0.2]])
    with torch.no_grad():
        before = net(x, sigma)
        net.fuse_stem()
        after = net(x, sigma)
    assert net.stem is not None and net.stem.conv.stride == (factor, factor)
    assert torch.allclose(before, after, atol=1e-5)


def test_a_folded_model_ships_without_the_fold_shuffle(clean_folder, tmp_path):
    import onnx

    cfg = _config(clean_folder, network_args={"width": 4, "depths": [1, 1, 1], "unshuffle": 2})
    best = train(cfg, tmp_path / "runs", threads=1)
    path, spec = export_checkpoint(best, tmp_path / "exported", manifest=False)  # parity vs the trained net
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    # The fold (Reshape-Transpose-Reshape) became the stem's strided conv; the unfold at the end stays.
    assert "Transpose" not in ops and "DepthToSpace" in ops and spec.size_multiple == 8
