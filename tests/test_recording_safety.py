"""`camera --record` loses nothing silently (issue 51, items 2 and 3): a full disk is an error
naming the video (exit 1, never counted as saved), a read-only folder is blamed on the folder, and
a recording killed with SIGKILL keeps what was recorded up to its last two seconds. Full disks come
from RLIMIT_FSIZE in a child process; a folder root cannot write is /sys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_ae.video.options import ControlOptions, OutputOptions
from edge_ae.video.sinks import VideoSink
from edge_ae.video.stream import Stream
from tools.record_kill_check import decoded

QUIET = ControlOptions(handle_signals=False)  # no signal handlers in tests

ROOT = Path(__file__).resolve().parent.parent
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX child processes and signals")


def noisy_video(path: Path, n: int, size: tuple[int, int] = (320, 240)) -> Path:
    """Frames of noise: they compress badly, so a few fill a small file limit."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    rng = np.random.default_rng(0)
    for _ in range(n):
        writer.write((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))
    writer.release()
    return path


def decodable(path: Path) -> int:
    return decoded(path)  # the frames OpenCV can decode, counted as the kill check counts them


def camera(args: list[str], cwd: Path, *, max_bytes: int | None = None, **kwargs) -> subprocess.Popen:
    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.Popen([sys.executable, "-m", "edge_ae", "camera", "--denoise", "none", *args], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=limit if max_bytes else None, **kwargs)


@posix_only
def test_a_full_disk_is_an_error_and_the_video_is_not_counted_as_saved(tmp_path):
    source = noisy_video(tmp_path / "src.avi", 40)
    proc = camera(["--source", str(source), "--record", "out.mp4"], tmp_path, max_bytes=300_000)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    assert "out.mp4" in stdout and "not saved" in stdout and "40 frames at" not in stdout
    assert not (tmp_path / "out.mp4").exists()  # no half-written video under the name asked for
    assert (tmp_path / "out.mp4.recording").is_dir()  # what did reach the disk is kept, and named
    assert "out.mp4.recording" in stdout


def test_frames_missing_from_a_closed_segment_stop_the_recording_with_an_error(tmp_path, monkeypatch):
    from edge_ae.video import recording

    real = recording.count_packets  # segments found empty, as on a full disk; the rest counted as they are
    monkeypatch.setattr(recording, "count_packets", lambda path: 0 if path.parent.name.endswith(".recording") else real(path))
    stream = Stream(noisy_video(tmp_path / "src.avi", 12), output=OutputOptions(record=tmp_path / "out.mp4", record_fps=2),
                    control=QUIET)  # 2 fps: a segment of 4 frames
    report = stream.run()
    assert report.failed and "recording stopped after 3 frames" in report.failed and "out.mp4" in report.failed
    assert report.frames_processed == 4 and not (tmp_path / "out.mp4").exists()  # not made at close either
    assert "NOT saved" in report.summary()
    assert [p.name for p in (tmp_path / "out.mp4.recording").iterdir()] == ["000001.mkv"]  # kept, named


def test_a_folder_that_cannot_be_written_is_blamed(tmp_path):
    if os.geteuid() == 0:  # root writes through chmod; /sys refuses even root
        folder = Path("/sys")
        if not folder.is_dir() or os.access(folder, os.W_OK) and _can_create(folder):
            pytest.skip("no folder here that root cannot write")
    else:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
    with pytest.raises(Exception) as refused:
        VideoSink(folder / "out.mp4", fps=10)
    message = str(refused.value)
    assert str(folder) in message and "cannot write" in message and "OpenCV" not in message


def _can_create(folder: Path) -> bool:
    try:
        (folder / ".edge-ae-probe").touch()
    except OSError:
        return False
    (folder / ".edge-ae-probe").unlink()
    return True


@posix_only
def test_a_killed_recording_keeps_all_but_its_last_seconds(tmp_path):
    source = noisy_video(tmp_path / "src.avi", 400, size=(160, 120))
    seen = tmp_path / "seen"
    proc = camera(["--source", str(source), "--record", "out.mp4", "--frames", str(seen), "--max-fps", "25"], tmp_path)
    deadline = time.monotonic() + 120
    while (not seen.is_dir() or len(os.listdir(seen)) < 75) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.kill()  # SIGKILL: no handler runs, nothing is finalised
    proc.communicate()
    processed = len(list(seen.glob("frame_*")))
    recording = tmp_path / "out.mp4.recording"
    assert recording.is_dir(), sorted(p.name for p in tmp_path.iterdir())
    kept = sum(decodable(p) for p in sorted(recording.iterdir()))
    assert kept >= processed - 2 * 25 - 1, f"{kept} of {processed} frames decode: more than the last 2 s lost"

    # The next run keeps the interrupted recording aside, under a visible name, and records anew.
    rerun = camera(["--source", str(source), "--record", "out.mp4", "--max-frames", "5"], tmp_path)
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    (interrupted,) = tmp_path.glob("out.interrupted-*.mp4")  # the segments joined into one video
    assert interrupted.name in stderr and decodable(interrupted) >= kept
    assert decodable(tmp_path / "out.mp4") == 5 and not recording.exists()


@pytest.mark.parametrize("suffix, fourcc", [(".mp4", "mp4v"), (".mkv", "XVID"), (".avi", "MJPG")])
def test_segments_joined_decode_like_the_segments(tmp_path, suffix, fourcc):
    """The packet copy leaves the MPEG-4 configuration out; put back (the MP4's esds box, in front
    of the first frame elsewhere), every frame of every segment decodes, in order."""
    from edge_ae.video.recording import join

    rng = np.random.default_rng(3)
    segments = []
    for k in range(2):
        segment = tmp_path / f"{k + 1:06d}.mkv"
        writer = cv2.VideoWriter(str(segment), cv2.VideoWriter_fourcc(*fourcc), 25.0, (96, 64))
        for i in range(15):
            writer.write(np.full((64, 96, 3), 8 * i + 100 * k, np.uint8) + (rng.random((64, 96, 3)) * 40).astype(np.uint8))
        writer.release()
        segments.append(segment)
    target = tmp_path / f"a{suffix}"
    assert join(segments, target, fourcc=fourcc, fps=25.0, size=(96, 64)) == 30

    def frames(path: Path) -> list[np.ndarray]:
        cap, out = cv2.VideoCapture(str(path)), []
        while True:
            ok, frame = cap.read()
            if not ok:
                return out
            out.append(frame)

    want = frames(segments[0]) + frames(segments[1])
    got = frames(target)
    assert len(got) == 30 and all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    if suffix == ".mp4":
        data = target.read_bytes()
        esds = data.index(b"esds")
        assert b"\x05\x80\x80\x80" in data[esds:esds + 120]  # a DecoderSpecificInfo descriptor
