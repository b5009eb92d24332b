"""Bad option values and unwritable outputs are refused before any work, on one line with exit
status 2; a result that cannot be saved at the end (full disk) is one line naming the path, exit
1, nothing half-written (issue 51, item 6). Full disks are made with RLIMIT_FSIZE in a child
process (works as root, where chmod does not bite); unwritable folders with a parent that is a file."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_ae.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # refused while parsing: argparse exits
        return int(exc.code or 0)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), np.full((24, 24), 100, np.uint8))
    return path


@pytest.mark.parametrize("argv, expected", [
    (["denoise", "{photo}", "-o", "{out}", "--threads", "0"], "--threads"),
    (["denoise", "{photo}", "-o", "{out}", "--threads", "-1"], "--threads"),
    (["denoise", "{photo}", "-o", "{out}", "--jobs", "0"], "--jobs"),
    (["denoise", "{photo}", "-o", "{out}", "--max-pixels", "inf"], "--max-pixels"),
    (["denoise", "{photo}", "-o", "{out}", "--sigma", "nan"], "--sigma"),
    (["denoise", "{photo}", "-o", "{out}", "--sigma", "inf"], "--sigma"),
    (["denoise", "{photo}", "-o", "{out}", "--tile", "0"], "--tile"),
    (["denoise", "{photo}", "-o", "{out}", "--strength", "nan"], "--strength"),
    (["bench", "--size", "100000x100000"], "--size"),
    (["camera", "--source", "{photo}", "--sigma", "inf"], "--sigma"),
    (["embed", "{photo}", "-o", "{out}/z.npy", "--threads", "0"], "--threads"),
    (["anomaly", "{photo}", "--threads", "-1"], "--threads"),
    (["anomaly", "fit", "--normal", "{dir}", "-o", "{out}/m.onnx", "--fpr", "0"], "--fpr"),
    (["anomaly", "fit", "--normal", "{dir}", "-o", "{out}/m.onnx", "--threads", "0"], "--threads"),
    (["anomaly", "fit", "--normal", "{dir}", "-o", "{out}/m.onnx", "--memory", "0"], "--memory"),
    (["anomaly", "calibrate", "-m", "anomaly-magnetic-tile-fast", "--normal", "{dir}", "-o", "{out}/m.onnx", "--fpr", "0"],
     "--fpr"),
    (["anomaly", "calibrate", "-m", "anomaly-magnetic-tile-fast", "--normal", "{dir}", "-o", "{out}/m.onnx", "--threads",
      "0"], "--threads"),
])
def test_bad_values_are_refused_while_parsing(photo, tmp_path, capsys, argv, expected):
    out = tmp_path / "out"
    argv = [a.format(photo=photo, out=out, dir=photo.parent) for a in argv]
    assert exit_code(argv) == 2
    assert expected in one_line_error(capsys)
    assert not out.exists()  # refused before anything was written


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if fitting or scoring starts: the checks must come first."""
    def forbidden(*_args, **_kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr("edge_ae.cli.anomaly_fit.fit_anomaly_model", forbidden)
    monkeypatch.setattr("edge_ae.cli.anomaly_calibrate.scores_of_folder", forbidden)


@pytest.mark.parametrize("command", [["anomaly", "fit"], ["anomaly", "calibrate", "-m", "anomaly-magnetic-tile-fast"]])
def test_unwritable_output_is_refused_before_the_work(photo, tmp_path, capsys, no_work, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = [*command, "--normal", str(photo.parent), "-o", str(blocker / "sub" / "m.onnx")]
    assert exit_code(argv) == 2
    err = one_line_error(capsys)
    assert str(blocker) in err and "not a folder" in err


def test_fit_output_that_fails_at_the_end_is_one_line(photo, tmp_path, capsys, monkeypatch):
    from edge_ae.anomaly.fit import FitResult
    from edge_ae.model.contract import AnomalyCalibration, ModelSpec

    cal = AnomalyCalibration(threshold=1.0, score_mean=0.5, score_std=0.1, target_fpr=0.01, n_images=12)
    spec = ModelSpec(name="m", kind="anomaly", channels=3, color_order="BGR", input_size=(64, 64), anomaly=cal)
    monkeypatch.setattr("edge_ae.cli.anomaly_fit.fit_anomaly_model",
                        lambda *a, **k: FitResult(b"x" * 100, spec, 12, 12, 10, 1.0))

    def full(path, data, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("edge_ae.cli.anomaly_fit.write_bytes_atomic", full)
    out = tmp_path / "m.onnx"
    assert exit_code(["anomaly", "fit", "--normal", str(photo.parent), "-o", str(out)]) == 1
    err = one_line_error(capsys)
    assert str(out) in err and "No space left" in err


def _limited(max_bytes: int):
    """preexec_fn: files this child writes may not exceed ``max_bytes`` (a full disk, without root
    or a small file system); the write fails with EFBIG instead of killing the process."""
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def run_full_disk(argv: list[str], max_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_ae", *argv], capture_output=True, text=True, timeout=300,
                          cwd=cwd, preexec_fn=_limited(max_bytes), env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE needs a POSIX child process")
def test_embed_on_a_full_disk_is_one_line_and_leaves_nothing(photo, tmp_path):
    out = tmp_path / "out" / "z.npy"
    result = run_full_disk(["embed", str(photo), "-o", str(out)], 64, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and str(out) in result.stderr
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE needs a POSIX child process")
def test_calibrate_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    normal = tmp_path / "normal"
    normal.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(normal / f"{i}.png"), (rng.random((64, 64)) * 255).astype(np.uint8))
    out = tmp_path / "out" / "cal.onnx"
    result = run_full_disk(["anomaly", "calibrate", "-m", "anomaly-magnetic-tile-fast", "--normal", str(normal), "-o",
                            str(out), "--threads", "1"], 100_000, tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and str(out) in last and "File too large" in last
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def test_deeply_nested_model_metadata_is_one_line(tmp_path, capsys):
    from edge_ae.model.contract import METADATA_KEY
    from edge_ae.model.onnx_meta import rewrite_metadata_file

    source = ROOT / "exported" / "mnist-conv-encoder.onnx"
    spec = json.loads(json.dumps({"schema_version": 1, "name": "x", "kind": "encoder", "channels": 1,
                                  "color_order": "GRAY", "latent_dim": 4}))
    for depth, name in ((100_000, "deep.onnx"), (200, "deeper-than-allowed.onnx")):
        text = json.dumps(spec)[:-1] + ', "provenance": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        model = rewrite_metadata_file(source, tmp_path / name, METADATA_KEY, text)
        assert exit_code(["info", "-m", str(model)]) == 2
        err = one_line_error(capsys)
        assert "nested too deeply" in err and name in err
