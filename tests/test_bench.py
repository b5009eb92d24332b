"""``edge-ae bench`` and its library half (edge_ae.benchmark, edge_ae.hardware): one tiny shipped
model, one timed call, so it stays fast; the speed figures themselves live in benchmarks."""

from __future__ import annotations

import pytest

from edge_ae.benchmark import Timing, eight_bit_pairs, is_eight_bit, recommend, synthetic_frame, time_model
from edge_ae.cli.main import main
from edge_ae.hardware import cpu_info, emulation_reason
from edge_ae.model.registry import get_entry


def _timing(name: str, ms: float, *, quality: float | None, kind: str = "denoiser", channels: int = 1) -> Timing:
    return Timing(name=name, kind=kind, channels=channels, eight_bit=name.endswith("-int8"), size=(64, 48),
                  threads=1, repeat=1, ms=ms, ms_min=ms, macs_per_pixel=1000.0, quality=quality, quality_label="dB")


def test_bench_cli_times_one_model_and_recommends_it(capsys):
    code = main(["bench", "-m", "mnist-dense36", "denoise-gray-fast", "--size", "64x48", "--repeat", "1",
                 "--threads", "1", "--fps", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "64x48 frames, 1 thread(s), median of 1" in out
    for name in ("mnist-dense36", "denoise-gray-fast"):
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert float(row.split()[3]) > 0
    assert "denoiser, gray" in out and "denoise-gray-fast (" in out  # it reaches 1 fps, so it is recommended
    assert "autoencoder, gray" not in out  # not a camera model: timed, not recommended


def test_bench_denoiser_row_has_multiply_adds_per_second():
    entry = get_entry("denoise-gray-fast-int8")
    t = time_model(entry, size=(32, 32), threads=1, repeat=1, warmup=0)
    assert t.eight_bit and t.channels == 1 and t.ms > 0
    assert t.macs_per_second == pytest.approx(entry.speed["macs_per_pixel"] * 32 * 32 / (t.ms / 1000))
    assert not is_eight_bit(get_entry("denoise-gray-fast").path)


def test_bench_rejects_unknown_model_and_bad_repeat(capsys):
    assert main(["bench", "-m", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--repeat", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_recommend_takes_the_best_model_that_keeps_up():
    timings = [_timing("good", 200.0, quality=30.0), _timing("ok", 50.0, quality=29.0), _timing("bad", 20.0, quality=25.0)]
    (pick,) = recommend(timings, fps=10)
    assert pick.model.name == "ok" and pick.fastest.name == "bad"
    (pick,) = recommend(timings, fps=100)
    assert pick.model is None and pick.fastest.name == "bad"


def test_eight_bit_pairs_match_float_siblings():
    timings = [_timing("a", 10, quality=None), _timing("a-int8", 12, quality=None), _timing("b-int8", 5, quality=None)]
    assert [(p.name, q.name) for p, q in eight_bit_pairs(timings)] == [("a", "a-int8")]


def test_emulation_is_detected_from_qemu_signs():
    assert emulation_reason(machine="x86_64", environ={}, cpuinfo="vendor_id : GenuineIntel") is None
    assert "QEMU_CPU" in emulation_reason(machine="aarch64", environ={"QEMU_CPU": "cortex-a72"}, cpuinfo="")
    assert "x86 /proc/cpuinfo" in emulation_reason(machine="aarch64", environ={}, cpuinfo="vendor_id : GenuineIntel")
    assert emulation_reason(machine="aarch64", environ={}, cpuinfo="CPU implementer : 0x41\nFeatures : asimddp") is None
    assert cpu_info().cores >= 1


def test_synthetic_frame_is_a_camera_like_image():
    grey, colour = synthetic_frame(40, 30, 1), synthetic_frame(40, 30, 3)
    assert grey.shape == (30, 40) and colour.shape == (30, 40, 3) and grey.dtype == colour.dtype == "uint8"
    assert 20 < grey.std() < 100
