"""Issue 55: one convention across the commands (``-m`` for the model, one ``--threads``, validated
choices, an ``anomaly`` group), readable before|after names, ``edge-ae`` alone, and the
``precision="auto"`` rule (with faked CPU flags: the decision, not the speed)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_bad_inputs import spot_model

from conftest import ROOT
from edge_ae import Denoiser
from edge_ae.cli.main import build_parser, main
from edge_ae.cli.options import THREADS_HELP, usable_cores
from edge_ae.denoise import precision
from edge_ae.files.names import derived_name
from edge_ae.hardware import CpuInfo
from edge_ae.model.contract import KINDS


def _cpu(dot: bool | None, name: str = "avx512_vnni") -> CpuInfo:
    return CpuInfo(machine="x86_64", cores=2, model="", int8_dot=dot, int8_dot_name=name if dot else "", emulated=None)


def _images(folder: Path, count: int = 2, channels: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        shape = (32, 32, 3) if channels == 3 else (32, 32)
        cv2.imwrite(str(folder / f"{i}.png"), (rng.random(shape) * 255).astype(np.uint8))
    return folder


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's and sub-command's parser, by its name ('anomaly fit', ...)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found[f"{prefix}{name}"] = child
                    walk(child, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


# -- edge-ae alone, help, choices ------------------------------------------------------------


def test_no_arguments_prints_each_command_on_one_line_and_the_common_invocations(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("denoise", "anomaly", "camera", "embed", "models", "info", "bench"):
        assert sum(line.split()[:1] == [command] for line in out.splitlines()) == 1, command
    assert "Most used:" in out and "edge-ae denoise" in out and "edge-ae camera" in out


def test_models_kind_is_validated_and_every_kind_is_in_the_help(capsys):
    with pytest.raises(SystemExit) as bad:
        main(["models", "--kind", "bogus"])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and "invalid choice: 'bogus'" in err and all(k in err for k in KINDS)
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # help wraps at hyphens
    assert all(k in text for k in KINDS)
    assert main(["models", "--kind", "noise-level"]) == 0
    assert "noise-level-color" in capsys.readouterr().out


def test_threads_is_one_option_with_one_help_everywhere(capsys):
    with_threads = {name: p for name, p in _parsers().items()
                    if any("--threads" in a.option_strings for a in p._actions)}
    assert {"denoise", "anomaly score", "anomaly fit", "anomaly calibrate", "anomaly check", "embed", "camera",
            "bench"} <= set(with_threads)
    for name, parser in with_threads.items():
        (action,) = [a for a in parser._actions if "--threads" in a.option_strings]
        assert action.help == THREADS_HELP and action.default is None, name
    with pytest.raises(SystemExit) as zero:
        main(["anomaly", "check", "-m", "x", "--normal", ".", "--threads", "0"])
    assert zero.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert usable_cores() >= 1


def test_every_command_running_a_model_takes_dash_m():
    parsers = _parsers()
    for name in ("denoise", "anomaly score", "anomaly calibrate", "anomaly check", "embed", "info", "bench"):
        assert any(a.option_strings == ["-m", "--model"] for a in parsers[name]._actions), name
    camera = {s for a in parsers["camera"]._actions for s in a.option_strings}
    assert {"--denoise", "--anomaly", "--precision"} <= camera


def test_precision_values_are_validated(tmp_path, capsys):
    with pytest.raises(SystemExit) as bad:
        main(["denoise", str(tmp_path), "-o", str(tmp_path / "o"), "--precision", "fp16"])
    assert bad.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err


# -- old forms keep working, with one line on stderr ------------------------------------------


def test_info_takes_dash_m_and_the_old_positional_with_a_note(tiny_models, capsys):
    assert main(["info", "-m", str(tiny_models["gray"])]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["info", str(tiny_models["gray"])]) == 0
    captured = capsys.readouterr()
    assert "tiny-gray" in captured.out
    assert captured.err.count("\n") == 1 and "deprecated" in captured.err and "info -m MODEL" in captured.err
    assert main(["info", str(tiny_models["gray"]), "-m", str(tiny_models["color"])]) == 2
    assert main(["info"]) == 2
    assert "-m NAME" in capsys.readouterr().err


def test_bench_models_is_still_read_with_a_note(capsys):
    assert main(["bench", "--models", "mnist-dense36", "--size", "32x32", "--repeat", "1", "--warmup", "0",
                 "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "mnist-dense36" in captured.out and "--models is deprecated" in captured.err


# -- anomaly: a group with score as its default ---------------------------------------------


@pytest.fixture
def spot(tmp_path) -> Path:
    return spot_model(tmp_path / "spot.onnx")


def test_anomaly_help_lists_every_sub_command(capsys):
    with pytest.raises(SystemExit):
        main(["anomaly", "--help"])
    out = capsys.readouterr().out
    for sub in ("anomaly [score]", "anomaly fit", "anomaly calibrate", "anomaly check"):
        assert f"edge-ae {sub}" in out, sub
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "fit, calibrate or check" in capsys.readouterr().out
    with pytest.raises(SystemExit) as alone:
        main(["anomaly"])
    assert alone.value.code == 2 and "{score,fit,calibrate,check}" in capsys.readouterr().err


def test_anomaly_score_is_the_default_and_a_folder_named_check_is_scored(spot, tmp_path, capsys, monkeypatch):
    images = _images(tmp_path / "check")
    assert main(["anomaly", "score", str(images), "-m", str(spot), "--threads", "1"]) == 0
    assert "2 scored" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(["anomaly", "./check", "-m", str(spot), "--threads", "1"]) == 0
    assert "2 scored" in capsys.readouterr().out


def test_anomaly_calibrate_and_check_take_dash_m_and_normal(spot, tmp_path, capsys):
    normal = _images(tmp_path / "normal", count=4)
    new = tmp_path / "new.onnx"
    assert main(["anomaly", "calibrate", "-m", str(spot), "--normal", str(normal), "-o", str(new),
                 "--threads", "1"]) == 0
    assert "note:" not in capsys.readouterr().err.replace("note: 4 normal images are few", "")
    assert main(["anomaly", "check", "-m", str(new), "--normal", str(normal), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "the same to float precision" in captured.out and "deprecated" not in captured.err
    # the old spellings: positional model, --val-normal; each one note
    assert main(["anomaly", "check", str(new), "--val-normal", str(normal), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("deprecated") == 2 and "--normal" in err and "check -m MODEL" in err
    assert main(["anomaly", "check", "-m", str(new), "--threads", "1"]) == 2  # --normal is required
    assert "--normal DIR is required" in capsys.readouterr().err


def test_anomaly_fit_takes_anomalous_and_still_reads_val_anomalous(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    for flag in ("--anomalous", "--val-anomalous"):
        assert main(["anomaly", "fit", "--normal", str(tmp_path / "missing"), "-o", str(out), flag,
                     str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "--normal" in err and "not a folder" in err
        assert ("deprecated" in err) == (flag == "--val-anomalous")
    with pytest.raises(SystemExit):
        main(["anomaly", "fit", "--help"])
    help_text = capsys.readouterr().out
    assert "--anomalous" in help_text and "--val-anomalous" not in help_text


# -- before|after names -------------------------------------------------------------------------


def test_derived_names_are_readable_and_unique():
    assert derived_name(Path("Marilyn.png"), "compare") == Path("Marilyn-compare.png")
    assert derived_name(Path("sub/a.jpg"), "compare") == Path("sub/a-compare-jpg.png")
    names = ["a.png", "a.jpg", "a.JPG", "a.tif", "a-compare.png", "a-compare-jpg.png", "a.b.png", "a-b.png"]
    derived = [derived_name(Path(n), "compare") for n in names]
    assert len(set(derived)) == len(names)
    assert not any(str(d).endswith(".png.png") for d in derived)


def test_compare_writes_readable_names(tiny_models, tmp_path, capsys):
    src = _images(tmp_path / "in", count=1)
    (src / "0.png").rename(src / "Marilyn.png")
    cmp = tmp_path / "cmp"
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]),
                 "--compare", str(cmp)]) == 0
    assert [p.name for p in cmp.iterdir()] == ["Marilyn-compare.png"]


# -- precision="auto" -----------------------------------------------------------------------------


def _manifest_drops() -> dict[str, float]:
    """Each shipped twin's worst PSNR drop over the benchmark grid, read from the manifest here
    (not through the code under test)."""
    models = {m["name"]: m for m in json.loads((ROOT / "exported" / "manifest.json").read_text())["models"]}
    drops = {}
    for name, entry in models.items():
        if name.endswith("-int8") and name[:-5] in models:
            base = models[name[:-5]]["quality"]
            cells = [k for k, v in entry["quality"].items() if isinstance(v, dict)]
            drops[name] = max(base[k]["psnr"] - entry["quality"][k]["psnr"] for k in cells)
    return drops


def test_auto_takes_the_twin_only_with_dot_products_and_a_small_drop():
    drops = _manifest_drops()
    assert drops, "the shipped denoisers have 8-bit twins with benchmark figures"
    for twin, drop in drops.items():
        base = twin[: -len("-int8")]
        with_dot = precision.choose(base, "auto", cpu=_cpu(True))
        assert with_dot.model == (twin if drop <= precision.MAX_DROP_DB else base), (twin, drop, with_dot.reason)
        if with_dot.eight_bit:  # a default never gets worse by more than the rule allows on any cell
            assert drop <= 0.1 and "avx512_vnni" in with_dot.reason
        else:
            assert f"{drop:.2f} dB" in with_dot.reason
        for cpu in (_cpu(False), _cpu(None)):  # no dot products, or unknown: float
            choice = precision.choose(base, "auto", cpu=cpu)
            assert choice.model == base and choice.eight_bit is False and "dot" in choice.reason


def test_an_arm_core_with_dotprod_decides_like_vnni_and_one_without_like_none():
    a76 = CpuInfo(machine="aarch64", cores=4, model="", int8_dot=True, int8_dot_name="asimddp", emulated=None)
    a72 = CpuInfo(machine="aarch64", cores=4, model="", int8_dot=False, int8_dot_name="", emulated=None)
    for base in ("denoise-gray", "denoise-color", "denoise-gray-fast", "denoise-color-fast"):
        assert precision.choose(base, cpu=a76).model == precision.choose(base, cpu=_cpu(True)).model
        assert precision.choose(base, cpu=a72).model == base


def test_forced_precisions_named_twins_and_files():
    assert precision.choose("denoise-gray", "int8").model == "denoise-gray-int8"
    assert precision.choose("denoise-gray-int8", "float").model == "denoise-gray"
    assert precision.choose("denoise-gray-int8", "auto", cpu=_cpu(False)).model == "denoise-gray-int8"  # as named
    assert precision.choose("plain-cae-gray", "auto", cpu=_cpu(True)).reason == "no 8-bit twin shipped"
    with pytest.raises(Exception, match="no 8-bit twin"):
        precision.choose("plain-cae-gray", "int8")
    assert precision.choose("my.onnx", "auto").model == "my.onnx"
    with pytest.raises(ValueError, match="runs as it is"):
        precision.choose("my.onnx", "int8")
    with pytest.raises(ValueError, match="precision must be one of"):
        Denoiser(precision="half")


def test_denoiser_default_follows_auto(monkeypatch):
    monkeypatch.setattr(precision, "_this_cpu", lambda: _cpu(True))
    drops = _manifest_drops()
    d = Denoiser()
    for channels, base in ((1, "denoise-gray"), (3, "denoise-color")):
        expected = base + "-int8" if drops[base + "-int8"] <= 0.1 else base
        assert d.choice_for(channels).model == expected
        assert d.model_for(channels).spec.name == expected
    monkeypatch.setattr(precision, "_this_cpu", lambda: _cpu(False))
    assert Denoiser().model_for(1).spec.name == "denoise-gray"
    assert Denoiser(fast=True).choice_for(3).model == "denoise-color-fast"


def test_denoise_verbose_says_which_model_ran_and_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "_this_cpu", lambda: _cpu(False))
    src = _images(tmp_path / "in", count=1, channels=1)
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "-v", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "model: gray images denoise-gray (float: this CPU has no 8-bit dot-product instructions)" in err
    assert main(["denoise", str(src), "-o", str(tmp_path / "o2"), "-m", "my.onnx", "--precision", "int8"]) == 2
    assert "runs as it is" in capsys.readouterr().err


# -- camera ---------------------------------------------------------------------------------------


def test_camera_with_no_model_named_runs_the_fast_models_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "_this_cpu", lambda: _cpu(False))
    frames = _images(tmp_path / "frames", count=1)
    assert main(["camera", "--source", str(frames), "--max-frames", "1", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "no model named" in err and "denoise-color-fast (float" in err and "denoise-gray-fast (float" in err
    assert main(["camera", "--source", str(frames), "--max-frames", "1", "--denoise", "none"]) == 0
    assert "no model named" not in capsys.readouterr().err


# -- one spelling: gray, color ---------------------------------------------------------------------

BRITISH = re.compile(r"\b(grey|colour)(s|ed|scale)?\b", re.I)  # grey_fraction (a config key) is not a word


def test_help_docs_and_manifest_spell_gray_and_color():
    for name, parser in _parsers().items():
        assert not BRITISH.search(parser.format_help()), name
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    assert not [p.name for p in pages if BRITISH.search(p.read_text())]
    manifest = json.loads((ROOT / "exported" / "manifest.json").read_text())
    for entry in manifest["models"]:
        shown = [entry.get("description", ""), *(entry.get("speed") or {})]
        assert not any(BRITISH.search(s) or s.startswith(("grey_", "colour_")) for s in shown), entry["name"]


def test_old_manifest_speed_keys_are_still_read(tmp_path):
    from tools import benchmarks_md

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "models": [
        {"name": "denoise-old", "kind": "denoiser", "speed": {"grey_640x480_ms": 12.0}},
        {"name": "denoise-new", "kind": "denoiser", "speed": {"color_640x480_ms": 30.0}}]}))
    table = benchmarks_md.models_table(manifest=manifest)
    assert "12.0 ms (640x480 gray)" in table and "30.0 ms (640x480 color)" in table


def test_bench_says_what_auto_runs_and_recommends_only_that(capsys, monkeypatch):
    monkeypatch.setattr(precision, "_this_cpu", lambda: _cpu(True))
    args = ["bench", "-m", "denoise-color-fast", "denoise-color-fast-int8", "--size", "32x32", "--repeat", "1",
            "--warmup", "0", "--threads", "1", "--fps", "0.001"]
    assert main(args) == 0
    out = capsys.readouterr().out
    twin_allowed = _manifest_drops()["denoise-color-fast-int8"] <= 0.1
    ran = "denoise-color-fast-int8" if twin_allowed else "denoise-color-fast"
    assert f"denoise-color-fast       -> {ran} (" in out
    assert f"  denoiser, color        {ran} (" in out  # both reach 0.001 fps: the one auto runs is recommended
    assert main([*args, "--precision", "float"]) == 0
    assert "  denoiser, color        denoise-color-fast (" in capsys.readouterr().out


def test_precision_auto_tool_runs_on_a_bare_python(tmp_path):
    """tools/precision_auto.py is what checks the rule on an emulated Arm core, where there is no
    numpy: with numpy made unimportable it still prints each decision."""
    import subprocess
    import sys

    fake = tmp_path / "numpy"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no numpy here')\n")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "precision_auto.py")], capture_output=True,
                            text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and len(lines) == 1 + len(_manifest_drops())
    assert all(" -> denoise-" in line for line in lines[1:])


def test_camera_says_when_precision_runs_the_named_models_twin(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "_this_cpu", lambda: _cpu(True))
    frames = _images(tmp_path / "frames", count=1)
    args = ["camera", "--source", str(frames), "--max-frames", "1", "--threads", "1", "--denoise", "denoise-gray"]
    assert main(args) == 0
    err = capsys.readouterr().err
    twin = _manifest_drops()["denoise-gray-int8"] <= 0.1
    assert ("running denoise-gray-int8 (8-bit" in err) == twin
    assert main([*args, "--precision", "float"]) == 0
    assert "running" not in capsys.readouterr().err


def test_bench_help_does_not_promise_paths(capsys):
    """bench times manifest entries (their multiply-adds and quality come from the manifest): its -m help
    must not say an .onnx path is accepted, which it then refused."""
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert ".onnx path" not in capsys.readouterr().out
