"""The shared training core (training/loop.py): every loop stops, checkpoints and resumes through
it, and a run interrupted after its first checkpoint and started again ends with exactly the
weights of a run that was never interrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from conftest import write_wave_images  # noqa: E402
from training import loop as core  # noqa: E402

NET = {"width": 4, "depths": [1, 1, 1]}


class Interrupted(Exception):
    pass


@pytest.fixture
def interrupt_after_first_checkpoint(monkeypatch):
    """Make the loop's first checkpoint write the last thing a run does (as if it were killed)."""
    real = core.save_checkpoint

    def save_then_stop(state, path):
        real(state, path)
        raise Interrupted

    def arm():
        monkeypatch.setattr(core, "save_checkpoint", save_then_stop)

    def disarm():
        monkeypatch.setattr(core, "save_checkpoint", real)

    return arm, disarm


def interrupted_then_resumed(run, arm_disarm):
    arm, disarm = arm_disarm
    arm()
    with pytest.raises(Interrupted):
        run()
    disarm()
    return run()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return write_wave_images(tmp_path_factory.mktemp("clean"), height=96, width=112)


def denoise_config(clean, **over):
    from training.denoise.train import DenoiserConfig

    base = dict(name="tiny", network="unet_dae", network_args=NET, channels=3, train_dirs=[str(clean)], holdout=2,
                patch=32, batch=4, steps=6, steps_per_epoch=3, seed=0)
    return DenoiserConfig(**{**base, **over})


def test_denoiser_training_resumes_exactly(clean, tmp_path, interrupt_after_first_checkpoint):
    from training.denoise.train import train

    whole = train(denoise_config(clean), tmp_path / "a", threads=1)
    resumed = interrupted_then_resumed(lambda: train(denoise_config(clean), tmp_path / "b", threads=1),
                                       interrupt_after_first_checkpoint)
    assert same(torch.load(whole, weights_only=False)["model"], torch.load(resumed, weights_only=False)["model"])
    steps = [int(r.split(",")[0]) for r in (resumed.parent / "log.csv").read_text().splitlines()[1:]]
    assert steps == [3, 6]


def test_blind_training_resumes_exactly(clean, tmp_path, monkeypatch, interrupt_after_first_checkpoint):
    from training.denoise import real_eval, train_blind
    from training.denoise.train import train

    monkeypatch.setattr(real_eval, "POLYU", tmp_path / "no-pairs")  # no real pairs: the latest step is kept
    start = train(denoise_config(clean, steps=2, steps_per_epoch=2), tmp_path / "init", threads=1)
    cfg = train_blind.BlindConfig(name="blind", denoiser_init=str(start), denoiser_args=NET, train_dirs=[str(clean)],
                                  holdout=2, patch=32, batch=8, steps=6, eval_every=3, freeze_steps=3, scales=[1.0])
    train_blind.train(cfg, tmp_path / "a", threads=1)
    interrupted_then_resumed(lambda: train_blind.train(cfg, tmp_path / "b", threads=1),
                             interrupt_after_first_checkpoint)
    for name in ("last.pt", "best.pt"):  # the files export_blind reads keep their form
        a = torch.load(tmp_path / "a" / "blind" / name, weights_only=False)
        b = torch.load(tmp_path / "b" / "blind" / name, weights_only=False)
        assert set(a) == {"estimator", "denoiser", "config", "step", "real_psnr", "holdout_psnr25"}
        assert a["step"] == b["step"] == 6
        assert same(a["estimator"], b["estimator"]) and same(a["denoiser"], b["denoiser"])


def test_blind_training_starts_afresh_over_another_configs_checkpoint(clean, tmp_path, monkeypatch, capsys):
    from training.denoise import real_eval, train_blind
    from training.denoise.train import train

    monkeypatch.setattr(real_eval, "POLYU", tmp_path / "no-pairs")
    start = train(denoise_config(clean, steps=2, steps_per_epoch=2), tmp_path / "init", threads=1)
    cfg = train_blind.BlindConfig(name="blind", denoiser_init=str(start), denoiser_args=NET, train_dirs=[str(clean)],
                                  holdout=2, patch=32, batch=8, steps=3, eval_every=3, freeze_steps=3, scales=[1.0])
    train_blind.train(cfg, tmp_path / "runs", threads=1)
    capsys.readouterr()
    train_blind.train(train_blind.BlindConfig(**{**cfg.__dict__, "tv_weight": 0.1}), tmp_path / "runs", threads=1)
    assert "(config differ): starting afresh" in capsys.readouterr().out
    log = (tmp_path / "runs" / "blind" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == ["3.000000"]  # one fresh run, not a continued one


def test_qat_resumes_exactly(clean, tmp_path, monkeypatch, interrupt_after_first_checkpoint):
    from training.denoise.qat import fine_tune
    from training.denoise.train import train

    trained = train(denoise_config(clean, channels=1, steps=2, steps_per_epoch=2), tmp_path / "runs", threads=1)
    original = core.Loop.__init__

    def every_two(self, **kw):  # a checkpoint inside a three-step fine-tuning
        original(self, **{**kw, "eval_every": 2})

    monkeypatch.setattr(core.Loop, "__init__", every_two)
    whole = fine_tune(trained, tmp_path / "a", steps=3, threads=1, command="test")
    resumed = interrupted_then_resumed(lambda: fine_tune(trained, tmp_path / "b", steps=3, threads=1, command="test"),
                                       interrupt_after_first_checkpoint)
    a, b = torch.load(whole, weights_only=False), torch.load(resumed, weights_only=False)
    assert same(a["model"], b["model"]) and a["qat"] == b["qat"]


def test_anomaly_training_resumes_exactly_when_asked(clean, tmp_path, interrupt_after_first_checkpoint):
    from training.anomaly.config import AnomalyConfig
    from training.anomaly.train import prepare, train

    cfg = AnomalyConfig(name="an", normal=str(clean), size=32, batch=4, steps=6, eval_every=3, val_images=4,
                        threads=1, width=4, latent_channels=8, seg_width=4, holdout=0.34)
    prep = prepare(cfg, lambda _: None)
    whole = train(cfg, prep, tmp_path / "a", lambda _: None)
    resumed = interrupted_then_resumed(lambda: train(cfg, prep, tmp_path / "b", lambda _: None, resume=True),
                                       interrupt_after_first_checkpoint)
    assert whole.steps == resumed.steps == 6 and whole.val_auroc == resumed.val_auroc
    assert same(whole.net.state_dict(), resumed.net.state_dict())
    assert same(whole.segmenter.state_dict(), resumed.segmenter.state_dict())
    rows = [[r.rsplit(",", 1)[0] for r in (tmp_path / run / "log.csv").read_text().splitlines()] for run in "ab"]
    assert rows[0] == rows[1] and len(rows[0]) == 3  # seconds aside


def test_mnist_fit_resumes_exactly(tmp_path, interrupt_after_first_checkpoint):
    from training.mnist.train import fit, reconstruction

    def run(checkpoint):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU(), torch.nn.Linear(8, 64),
                                  torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 8, 8)))
        x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
        history = fit(net, x, loss_fn=reconstruction("mse"), epochs=3, batch=8, seed=0, val_x=x[:8], lr_decay=True,
                      checkpoint=checkpoint)
        return net, history

    whole, h1 = run(None)
    resumed, h2 = interrupted_then_resumed(lambda: run(tmp_path / "checkpoint.pt"), interrupt_after_first_checkpoint)
    assert same(whole.state_dict(), resumed.state_dict())
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]


def test_loop_stops_on_patience_and_on_steps():
    scores = iter([0.5, 0.6, 0.6, 0.55, 0.9])
    loop = core.Loop(steps=100, eval_every=2, patience=2, min_delta=1e-4, log=lambda _: None)
    seen = []
    loop.run(step=lambda n: None, evaluate=lambda n: next(scores), report=seen.append)
    assert loop.stopped == "patience" and loop.step == 8 and loop.best == 0.6 and loop.best_step == 4
    assert [p.improved for p in seen] == [True, True, False, False]
    loop = core.Loop(steps=5, eval_every=2, log=lambda _: None)
    steps = []
    loop.run(step=steps.append, evaluate=lambda n: float(n), report=lambda p: None)
    assert steps == [1, 2, 3, 4, 5] and loop.best_step == 5 and loop.stopped == ""


def test_loop_refuses_a_checkpoint_that_lacks_its_state(tmp_path):
    net = torch.nn.Linear(2, 2)
    core.save_checkpoint({"step": 3}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="lacks"):
        core.Loop(steps=5, eval_every=1, state={"model": net}, checkpoint=tmp_path / "c.pt").resume()


def test_cosine_factor_matches_the_scheduler():
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = core.cosine_schedule(opt, 10, warmup=2)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == [core.cosine_factor(s, 10, warmup=2) for s in range(12)]
    assert seen[0] == 0.5 and seen[10] == 0.0


@pytest.mark.slow
def test_training_fingerprints_are_reproducible():
    """tools/training_fingerprint.py: the same code and seed give the same five fingerprints."""
    import subprocess
    import sys

    from conftest import ROOT

    runs = [subprocess.run([sys.executable, "-m", "tools.training_fingerprint"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    lines = runs[0].stdout.split("\n")
    assert [line.split()[0] for line in lines if line] == ["denoise", "qat", "blind", "anomaly", "mnist"]
    assert runs[0].stdout == runs[1].stdout
