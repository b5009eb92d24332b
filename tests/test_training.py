"""Training, export and parity on a tiny model for a few steps (runs in CI without ../shared)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="tests training (the train extra): needs torch")

import torch

from conftest import ROOT, write_wave_images
from edge_ae import Denoiser, load_model
from training.denoise import noise
from training.denoise.export import export_checkpoint, measure_receptive_field
from training.denoise.train import DenoiserConfig, main, split_images, train
from training.nets import build


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


@pytest.mark.slow
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
    assert "training.denoise.train" in spec.provenance["training_command"]
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


def test_scales_add_shrunk_copies_for_training_only(clean_folder):
    train_images, val_images = split_images(_config(clean_folder, scales=[1.0, 0.5]))
    full, _ = split_images(_config(clean_folder))
    assert [im.shape for im in train_images[::2]] == [im.shape for im in full]
    for big, small in zip(train_images[::2], train_images[1::2], strict=True):
        assert small.shape == (big.shape[0] // 2, big.shape[1] // 2, 3)
        # Area averaging: each pixel is the mean of the 2x2 block it replaces.
        np.testing.assert_allclose(small[0, 0], big[:2, :2].mean(axis=(0, 1)), atol=1e-6)
    assert len(val_images) == 2 and all(im.shape == full[0].shape for im in val_images)
    with pytest.raises(ValueError, match="positive"):
        split_images(_config(clean_folder, scales=[0.0]))


# The denoiser configs; blind-* configs train a noise-level estimator (training/denoise/train_blind.py).
DENOISER_CONFIGS = sorted(p for p in ROOT.glob("training/denoise/configs/**/*.json") if not p.stem.startswith("blind-"))


@pytest.mark.parametrize("path", DENOISER_CONFIGS, ids=lambda p: p.stem)
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


def test_heads_and_their_measured_receptive_fields():
    torch.manual_seed(0)
    nets = {k: build("unet_dae", channels=3, width=4, depths=[1, 1, 1], head=k).eval() for k in ("3x3", "1x1", "separable")}
    assert nets["1x1"].head.kernel_size == (1, 1) and nets["3x3"].head.kernel_size == (3, 3)
    assert nets["separable"].head.depthwise.groups == 4
    rf = {k: measure_receptive_field(net, 3) for k, net in nets.items()}
    # The metadata the runtime tiles by follows the network, not a formula.
    assert rf["1x1"] < rf["3x3"] == rf["separable"]
    with pytest.raises(ValueError, match="head must be one of"):
        build("unet_dae", channels=3, head="5x5")


def test_a_separable_head_starts_from_the_closest_factorisation_of_a_3x3_one():
    from training.denoise.warm_start import separable_head_from_full

    torch.manual_seed(0)
    full = build("unet_dae", channels=3, width=4, depths=[1, 1, 1]).eval()
    sep = build("unet_dae", channels=3, width=4, depths=[1, 1, 1], head="separable").eval()
    # A 3x3 head that is separable already (rank 1 per input channel) converts exactly.
    with torch.no_grad():
        u, v = torch.randn(3, 4), torch.randn(4, 3, 3)
        full.head.weight.copy_(u[:, :, None, None] * v[None])
    converted = separable_head_from_full(full.state_dict(), sep.state_dict())
    assert set(converted) == {"head.depthwise.weight", "head.pointwise.weight", "head.pointwise.bias"}
    sep.load_state_dict({**sep.state_dict(), **{k: v for k, v in full.state_dict().items() if not k.startswith("head.")},
                         **converted})
    x, sigma = torch.rand(1, 3, 16, 20), torch.full((1, 1), 0.1)
    with torch.no_grad():
        assert torch.allclose(full(x, sigma), sep(x, sigma), atol=1e-5)
    assert separable_head_from_full(full.state_dict(), full.state_dict()) == {}  # nothing to convert


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


def test_warm_start_copies_what_fits_and_records_it(clean_folder, tmp_path):
    base = train(_config(clean_folder, name="base"), tmp_path / "runs", threads=1)
    # The next config changes one layer (the head) and starts from the base's run.
    cfg = _config(clean_folder, network_args={"width": 4, "depths": [1, 1, 1], "head": "1x1"}, init_from="base")
    best = train(cfg, tmp_path / "runs", threads=1)
    start = torch.load(base, weights_only=False)["model"]
    record = torch.load(best, weights_only=False)["init"]
    assert record["file"] == "best.pt" and record["kept_random"] == ["head.weight"]
    assert record["copied"] == len(start) - 1
    # Exported, the model says what it started from and the two commands that reproduce it.
    path, spec = export_checkpoint(best, tmp_path / "exported", manifest=False)
    assert spec.provenance["init"]["sha256"] == record["sha256"]
    assert spec.provenance["training_command"] == (
        "python -m training.denoise.train training/denoise/configs/base.json && "
        "python -m training.denoise.train training/denoise/configs/tiny.json")


def test_training_command_walks_the_whole_chain_of_starting_configs():
    from training.denoise.export import CONFIGS, init_chain

    for path in (p for p in sorted(CONFIGS.glob("*.json")) if not p.stem.startswith("blind-")):
        chain = init_chain(DenoiserConfig.load(path))
        assert chain[-1] == path.stem and len(set(chain)) == len(chain)
        # Every step but the first starts from the one before it; the first starts from nothing.
        configs = [DenoiserConfig.load(CONFIGS / f"{name}.json") for name in chain]
        assert configs[0].init_from == "" and all(
            later.init_from == earlier.name for earlier, later in zip(configs, configs[1:], strict=False))


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_warm_start_from_an_exported_model_equals_its_checkpoint(clean_folder, tmp_path, unshuffle):
    from training.denoise.warm_start import weights_of

    best = train(_config(clean_folder, network_args={"width": 4, "depths": [1, 1, 1], "unshuffle": unshuffle}),
                 tmp_path / "runs", threads=1)
    path, _ = export_checkpoint(best, tmp_path / "exported", manifest=False)
    from_onnx, from_pt = weights_of(path), torch.load(best, weights_only=False)["model"]
    assert from_onnx.keys() == from_pt.keys()
    # A folded model's fused first layer maps back onto the trained one (up to float rounding).
    assert all(torch.allclose(from_onnx[k], from_pt[k], atol=1e-7) for k in from_pt)


def test_warm_start_refuses_what_cannot_seed_a_run(clean_folder, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**_config(clean_folder).__dict__, "init_from": "missing-base"}))
    with pytest.raises(SystemExit, match="first run python -m training.denoise.train training/denoise/configs/missing-base.json"):
        main([str(cfg), "--out", str(tmp_path / "runs"), "--threads", "1"])
    other = tmp_path / "other.pt"
    torch.save({"model": {"unrelated.weight": torch.zeros(2)}}, other)
    with pytest.raises(SystemExit, match="no weight fits this network"):
        main([str(cfg), "--out", str(tmp_path / "runs2"), "--threads", "1", "--init", str(other)])
