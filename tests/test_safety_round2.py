"""Nothing lost, round 2 (issue 51): the camera's outputs get the batch rules, the start-of-run
clean-up spares a running writer's temporaries, and the smaller defects of item 11. Each test
here failed on the code before its fix."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_bad_inputs import _tree, good_images, spot_model

from edge_ae.cli.main import main
from edge_ae.errors import EdgeAEError
from edge_ae.video.options import OutputOptions


def _host() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temporary(folder: Path, name: str, *, pid: int | None, host: str | None = None, age_s: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tag = "0a1b2c3d" if pid is None else f"{pid}-{host or _host()}-0a1b2c3d"
    path = folder / f".{name}.{tag}.part"
    path.write_bytes(b"half an image")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def _video(path: Path, frames: int = 6) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    return path


# -- item 5: the clean-up removes only what a gone writer left ----------------------------------


@pytest.mark.skipif(os.name != "posix", reason="process liveness is asked only on POSIX")
def test_start_of_run_clean_up_spares_a_running_writers_temporaries(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    out = tmp_path / "out"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # another run, still writing
    try:
        in_flight = [_temporary(out, "good1.png", pid=writer.pid),
                     _temporary(out / "sub", "x.png", pid=12345, host="0f0f0f"),  # another host: cannot ask
                     _temporary(out, "old.png", pid=None)]  # an earlier release's name, fresh
        left = [_temporary(out, "good2.png", pid=_dead_pid()),
                _temporary(out / "sub", "y.png", pid=12345, host="0f0f0f", age_s=2 * 86400),
                _temporary(out, "older.png", pid=None, age_s=2 * 86400)]
        assert main(["denoise", str(src), "-o", str(out), "-m", str(tiny_models["color"])]) == 0
    finally:
        writer.kill()
        writer.wait()
    assert "removed 3 temporary file(s)" in capsys.readouterr().err
    assert all(p.read_bytes() == b"half an image" for p in in_flight)
    assert not any(p.exists() for p in left)


def test_camera_frames_folder_is_tidied_at_start(tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    stale = _temporary(tmp_path / "frames", "frame_000000.png", pid=_dead_pid())
    assert main(["camera", "--source", str(src), "--frames", str(tmp_path / "frames")]) == 0
    assert not stale.exists() and "removed 1 temporary file(s)" in capsys.readouterr().err


def test_anomaly_fit_and_calibrate_tidy_their_output_folder(tmp_path, rng, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "models"
    for command, name in ((["anomaly", "fit", "--normal", str(empty)], "fit.onnx"),
                          (["anomaly", "calibrate", str(spot_model(tmp_path / "spot.onnx")), "--normal", str(empty)],
                           "cal.onnx")):
        stale = _temporary(out, name, pid=_dead_pid())
        main([*command, "-o", str(out / name)])  # no image to learn from: it fails, after tidying
        assert not stale.exists(), command
        assert "removed 1 temporary file(s)" in capsys.readouterr().err


# -- item 1: the camera's outputs never replace its source ---------------------------------------


def test_camera_record_over_its_source_video_is_refused(tmp_path, capsys):
    video = _video(tmp_path / "vid" / "ok.avi")
    before = video.read_bytes()
    rc = main(["camera", "--source", str(video), "--record", str(video)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--record file" in err and "is the input" in err
    assert video.read_bytes() == before


@pytest.mark.parametrize("option", [["--frames", "{src}"], ["--frames", "{src}/sub"],
                                    ["--events", "{src}/good1.png"], ["--record", "{src}/good1.png"]])
def test_camera_outputs_never_go_onto_the_source_folder(tmp_path, rng, capsys, option):
    src = good_images(tmp_path / "in", rng)
    before = _tree(src)
    rc = main(["camera", "--source", str(src), option[0], option[1].format(src=src)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("edge-ae: error:")
    assert _tree(src) == before and sorted(p.name for p in src.iterdir()) == ["good1.png", "good2.png"]


def test_camera_outputs_may_not_be_one_another(tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    rc = main(["camera", "--source", str(src), "--record", str(tmp_path / "a.avi"), "--events", str(tmp_path / "a.avi")])
    assert rc == 2 and "is the --events file too" in capsys.readouterr().err


def test_stream_api_refuses_writing_over_its_source(tmp_path):
    from edge_ae.video.stream import Stream

    video = _video(tmp_path / "ok.avi")
    with pytest.raises(EdgeAEError, match="is the input"):
        Stream(str(video), output=OutputOptions(record=video))


def test_camera_empty_source_is_refused_not_taken_for_the_current_folder(tmp_path, rng, capsys, monkeypatch):
    good_images(tmp_path, rng)
    monkeypatch.chdir(tmp_path)
    rc = main(["camera", "--source", "", "--frames", str(tmp_path.parent / f"{tmp_path.name}-frames")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "empty" in err
    assert not (tmp_path.parent / f"{tmp_path.name}-frames").exists()


# -- item 11: latency percentiles ----------------------------------------------------------------


def test_latency_percentiles_never_exceed_the_maximum():
    from edge_ae.video.stats import LatencyHistogram

    hist = LatencyHistogram()
    for _ in range(19):
        hist.add(0.0110)
    hist.add(0.0114)
    summary = hist.summary()
    assert summary["p50"] <= summary["p95"] <= summary["max"]
    assert f"{summary['p95']:.0f}" == f"{summary['max']:.0f}" == "11"


# -- item 11: file names that are not UTF-8 or hold a line break ---------------------------------


def _odd_names(folder: Path, rng: np.random.Generator) -> tuple[bytes, bytes]:
    """A PNG whose name is not valid UTF-8 and one with a line break; skip where the file system
    refuses such names (macOS, Windows)."""
    good_images(folder, rng, names=("plain.png",))
    data = (folder / "plain.png").read_bytes()
    latin, broken = os.fsencode(folder) + b"/caf\xe9.png", os.fsencode(folder) + b"/two\nlines.png"
    try:
        for name in (latin, broken):
            with open(name, "wb") as f:
                f.write(data)
    except OSError:
        pytest.skip("this file system refuses such names")
    return latin, broken


def test_a_non_utf8_file_name_is_reported_and_listed_byte_for_byte(tmp_path, rng, capsys):
    latin, _ = _odd_names(tmp_path / "in", rng)
    (tmp_path / "in" / "two\nlines.png").unlink()
    report = tmp_path / "report.csv"
    rc = main(["anomaly", str(tmp_path / "in"), "-m", str(spot_model(tmp_path / "spot.onnx")), "--report", str(report)])
    assert rc == 0 and "2 scored" in capsys.readouterr().out
    assert latin in report.read_bytes()  # the name as the file system has it: it opens again
    assert main(["embed", str(tmp_path / "in"), "-o", str(tmp_path / "lat.npy")]) == 0
    names = (tmp_path / "lat.files.txt").read_bytes().splitlines()
    assert latin in names and len(names) == len(np.load(tmp_path / "lat.npy")) == 2
    assert main(["embed", str(tmp_path / "in"), "-o", str(tmp_path / "lat.csv")]) == 0
    assert latin in (tmp_path / "lat.csv").read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="non-UTF-8 file names are a POSIX matter")
def test_a_non_utf8_file_name_never_breaks_the_printed_lines(tmp_path, rng):
    _odd_names(tmp_path / "in", rng)
    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}  # strict, as in en_US.UTF-8
    result = subprocess.run([sys.executable, "-m", "edge_ae", "anomaly", str(tmp_path / "in"), "-m",
                             str(spot_model(tmp_path / "spot.onnx"))], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    assert b"3 scored" in result.stdout and b"caf\\udce9.png" in result.stdout


def test_a_line_break_in_a_name_never_shifts_the_files_list(tmp_path, rng, capsys):
    _, broken = _odd_names(tmp_path / "in", rng)
    rc = main(["embed", str(tmp_path / "in"), "-o", str(tmp_path / "lat.npy")])
    captured = capsys.readouterr()
    assert rc == 1 and "2 embedded" in captured.out and "line break" in captured.err
    names = (tmp_path / "lat.files.txt").read_bytes().splitlines()
    assert len(names) == len(np.load(tmp_path / "lat.npy")) == 2 and all(Path(os.fsdecode(n)).is_file() for n in names)
    # .csv quotes such a name: every image is there, and reads back whole.
    assert main(["embed", str(tmp_path / "in"), "-o", str(tmp_path / "lat.csv")]) == 0
    import csv

    with open(tmp_path / "lat.csv", newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.reader(f))[1:]
    assert os.fsdecode(broken) in [r[0] for r in rows] and len(rows) == 3


# -- item 11: folders that loop or cannot be read --------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_double_star_glob_ends_on_a_symlink_loop(tiny_models, tmp_path, rng):
    root = good_images(tmp_path / "root", rng, names=("a.png",))
    good_images(root / "sub", rng, names=("b.png",))
    (root / "self").symlink_to(".")
    (root / "sub" / "up").symlink_to("..")
    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "edge_ae", "denoise", str(root / "**" / "*.png"), "-r", "-o",
                             str(tmp_path / "out"), "-m", str(tiny_models["color"])], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "2 denoised, 0 failed" in result.stdout  # each real file once
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_an_unreadable_sub_folder_is_said_not_skipped_silently(tiny_models, tmp_path, rng, capsys, monkeypatch):
    src = good_images(tmp_path / "in", rng)
    locked = good_images(src / "locked", rng, names=("hidden_from_us.png",))
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(os.fsdecode(path)) == locked:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # as chmod 000 does, also for root
    rc = main(["denoise", str(src), "-r", "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"])])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line]
    assert rc == 1 and "2 denoised, 1 failed" in captured.out
    assert lines == [f"failed: {locked}: cannot read this folder (Permission denied); the images in it were not processed"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for permissions")
def test_an_unreadable_sub_folder_really_locked(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    locked = good_images(src / "locked", rng, names=("x.png",))
    locked.chmod(0)
    try:
        rc = main(["denoise", str(src), "-r", "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"])])
    finally:
        locked.chmod(0o755)
    assert rc == 1 and "cannot read this folder" in capsys.readouterr().err


# -- item 11: a custom model's output is checked against the contract -----------------------------


def _bad_denoiser(path: Path, kind: str) -> Path:
    from onnx import TensorProto, helper

    from conftest import write_hand_made_denoiser

    if kind == "nan":
        node = helper.make_node("Div", ["image", "c"], ["denoised"])  # x / 0: inf, and NaN for black pixels
        const = helper.make_tensor("c", TensorProto.FLOAT, [], [0.0])
    elif kind == "channels":
        node = helper.make_node("ReduceMean", ["image"], ["denoised"], axes=[1], keepdims=1)
        const = helper.make_tensor("c", TensorProto.FLOAT, [], [0.0])
    else:  # half the size
        node = helper.make_node("AveragePool", ["image"], ["denoised"], kernel_shape=[2, 2], strides=[2, 2])
        const = helper.make_tensor("c", TensorProto.FLOAT, [], [0.0])
    return write_hand_made_denoiser(path, node, const, name=f"bad-{kind}", receptive_field=2)


@pytest.mark.parametrize("kind", ["nan", "channels", "size"])
def test_a_model_output_off_the_contract_is_never_written_as_denoised(tmp_path, rng, capsys, kind):
    src = good_images(tmp_path / "in", rng)
    model = _bad_denoiser(tmp_path / f"{kind}.onnx", kind)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(model), "--sigma", "10"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert rc == 1 and "0 denoised, 2 failed" in captured.out and len(lines) == 2
    assert all(f"bad-{kind}: output" in line for line in lines)
    assert not any((tmp_path / "out").iterdir())


# -- item 11: --jobs, heatmaps, --report on an input ------------------------------------------------


def test_jobs_is_capped_at_the_number_of_files_with_a_note_above_the_cores(tiny_models, tmp_path, rng, capsys,
                                                                          monkeypatch):
    from edge_ae.files import batch

    src = good_images(tmp_path / "in", rng)
    seen = {}
    real_run = batch.run

    def run(tasks, factory, *, jobs=1):
        seen["jobs"] = jobs
        return real_run(tasks, factory, jobs=1)

    monkeypatch.setattr(batch, "run", run)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]), "--jobs", "500"])
    captured = capsys.readouterr()
    assert rc == 0 and seen["jobs"] == 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert ("more than this machine's" in captured.err) == (cores < 2)
    monkeypatch.setattr("edge_ae.cli.denoise.usable_cores", lambda: 1)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out2"), "-m", str(tiny_models["color"]), "--jobs", "2"])
    assert rc == 0 and "--jobs 2 is more than this machine's 1 cores" in capsys.readouterr().err


def test_a_heatmap_that_cannot_be_written_fails_the_run_naming_it(tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    heat = tmp_path / "heat"
    (heat / "good1-heatmap.png").mkdir(parents=True)  # the overlay's path is taken by a folder
    rc = main(["anomaly", str(src), "-m", str(spot_model(tmp_path / "spot.onnx")), "--heatmaps", str(heat),
               "--all-heatmaps"])
    out = capsys.readouterr().out
    assert rc == 1 and "2 scored" in out and "1 heatmap(s) not written" in out
    assert f"heatmap not written: {heat / 'good1-heatmap.png'}" in out


def test_a_report_over_an_input_file_is_refused(tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    (src / "list.csv").write_bytes(b"a user's own file")
    rc = main(["anomaly", str(src / "good1.png"), str(src / "list.csv"), "-m", str(spot_model(tmp_path / "spot.onnx")),
               "--report", str(src / "list.csv")])
    assert rc == 2 and "--report" in capsys.readouterr().err
    assert (src / "list.csv").read_bytes() == b"a user's own file"


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_output_folder_holding_a_symlinked_input_is_its_folder(tiny_models, tmp_path, rng, capsys):
    archive = good_images(tmp_path / "archive", rng, names=("a.png",))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").symlink_to(archive / "a.png")
    rc = main(["denoise", str(photos / "a.png"), "-o", str(photos), "-m", str(tiny_models["color"])])
    assert rc == 2 and "is the folder of the input" in capsys.readouterr().err
    assert (photos / "a.png").is_symlink()
