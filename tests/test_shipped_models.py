"""Every model in exported/manifest.json is tested automatically (timm-style registry tests):
its file matches its sha256, its metadata validates, and denoisers run on the bundled samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT
from edge_ae import Denoiser, list_models, load_model
from edge_ae.files.imageio import read_image
from training.metrics import psnr

MANIFEST = json.loads((ROOT / "exported" / "manifest.json").read_text())["models"]
DENOISERS = [m["name"] for m in MANIFEST if m["kind"] == "denoiser"]
SAMPLES = sorted((ROOT / "samples" / "noisy").glob("*.png"))


def test_registry_matches_manifest():
    assert sorted(e.name for e in list_models()) == sorted(m["name"] for m in MANIFEST)


@pytest.mark.parametrize("name", [m["name"] for m in MANIFEST])
def test_shipped_model_loads_by_name(name):
    entry = next(m for m in MANIFEST if m["name"] == name)
    model = load_model(name)
    assert model.spec.name == name
    assert model.spec.kind == entry["kind"] and model.spec.channels == entry["channels"]
    assert model.spec.provenance.get("training_command")


def test_default_denoisers_are_shipped():
    assert {"denoise-gray", "denoise-color"} <= set(DENOISERS)


@pytest.mark.parametrize("name", DENOISERS)
def test_shipped_denoiser_removes_added_noise(name, rng):
    """On a bundled photo with Gaussian noise (sigma 25) added, the output is closer to the
    photo than the noisy input is: a real denoiser, not a pass-through. The plain-CAE baselines
    only have to help; the product's models must gain at least 3 dB."""
    clean = read_image(SAMPLES[0]).astype(np.float32) / 255
    clean = clean[:128, :128]
    if Denoiser(name).model_for(1).spec.channels == 3:
        clean = np.repeat(clean[:, :, None], 3, axis=2)
    noisy = (clean + rng.standard_normal(clean.shape).astype(np.float32) * 25 / 255).astype(np.float32)
    out = Denoiser(name, threads=1)(noisy, sigma=25)

    def db(x):
        return psnr(clean, np.clip(x, 0, 1))

    assert db(out) > db(noisy) + (3.0 if name.startswith("denoise-") else 1.0)


def test_default_denoiser_picks_model_by_channels():
    d = Denoiser(threads=1)
    assert d.model_for(1).spec.name == "denoise-gray"
    assert d.model_for(3).spec.name == "denoise-color"


def test_demo_job_on_bundled_samples(tmp_path, capsys):
    """What `make demo` runs: the default models on the six bundled photos, with before|after."""
    from edge_ae.cli.main import main

    rc = main(["denoise", str(ROOT / "samples" / "noisy"), "-o", str(tmp_path / "out"),
               "--compare", str(tmp_path / "cmp"), "--threads", "2"])
    assert rc == 0
    assert "6 denoised, 0 failed" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in SAMPLES)
    assert len(list((tmp_path / "cmp").iterdir())) == 6


QUANTIZED = [n for n in DENOISERS if load_model(n).spec.provenance.get("quantized_from")]


@pytest.mark.parametrize("name", QUANTIZED)
def test_shipped_8bit_denoiser_stays_close_to_its_float_model(name, rng):
    """An 8-bit model names the float model it came from (by sha256) and, on a bundled photo with
    Gaussian noise (sigma 25), loses at most 0.5 dB against it (the tool's own bound is 0.3 dB on
    its check images; one photo is noisier evidence)."""
    source = load_model(name).spec.provenance["quantized_from"]
    float_entry = next(m for m in MANIFEST if m["name"] == source["name"])
    assert float_entry["sha256"] == source["sha256"], f"{name} was made from another {source['name']}"
    clean = read_image(SAMPLES[0]).astype(np.float32)[:192, :192] / 255
    if load_model(name).spec.channels == 3:
        clean = np.repeat(clean[:, :, None], 3, axis=2)
    noisy = (clean + rng.standard_normal(clean.shape).astype(np.float32) * 25 / 255).astype(np.float32)

    def db(model):
        return psnr(clean, np.clip(Denoiser(model, threads=1)(noisy, sigma=25), 0, 1))

    assert db(name) > db(source["name"]) - 0.5
