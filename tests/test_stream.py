"""Live video: sources, capture thread, sinks and the Stream / `edge-ae camera` path, with
generated videos, fake cameras and a fake picamera2 - no real camera, no display."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import write_hand_made_denoiser
from edge_ae.cli.main import main
from edge_ae.denoise.options import DenoiseOptions
from edge_ae.video.capture import Backoff, Capture, Frame, Mailbox
from edge_ae.video.options import CaptureOptions, ControlOptions, FrameOptions, Limits, OutputOptions
from edge_ae.video.sinks import EventLog, Output, SinkError, VideoSink, WindowSink
from edge_ae.video.sources import FolderSource, Source, SourceError, VideoSource, open_source
from edge_ae.video.stream import Stream, stream

QUIET = ControlOptions(handle_signals=False)  # no signal handlers in tests

ROOT = Path(__file__).resolve().parent.parent
FAST = Backoff(initial=0.01, maximum=0.04)


def scene(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame ``i`` of a gray background with a bright square moving right."""
    frame = np.full((h, w, 3), 90, np.uint8)
    x = (3 * i) % (w - 12)
    frame[16:28, x:x + 12] = (40, 200, 240)
    return frame


def write_video(path: Path, n: int, *, fps: float = 20.0, fourcc: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert writer.isOpened()
    for i in range(n):
        writer.write(scene(i))
    writer.release()
    return path


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


class FakeLive(Source):
    """A live camera delivering ``fps`` frames a second, each stamped with its index in pixel [0, 0]."""

    live = True
    description = "fake camera"

    def __init__(self, fps: float = 200.0) -> None:
        self.period = 1.0 / fps
        self.count = 0
        self.opened = self.closed = 0

    def open(self) -> None:
        self.opened += 1

    def read(self) -> np.ndarray:
        time.sleep(self.period)
        frame = scene(self.count)
        frame[0, 0, 0] = self.count % 256
        self.count += 1
        return frame

    def close(self) -> None:
        self.closed += 1


class FlakyCamera:
    """Stands in for cv2.VideoCapture: after ``good`` frames every read fails (unplugged), and the
    next ``refuse`` opens fail before the camera is back."""

    def __init__(self, state: dict) -> None:
        self.state = state
        state["opens"] += 1
        self.opened = state["opens"] == 1 or state["refused"] >= state["refuse"]
        if not self.opened:
            state["refused"] += 1

    def isOpened(self) -> bool:  # OpenCV's name
        return self.opened

    def get(self, prop: int) -> float:
        return 30.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def read(self):
        self.state["reads"] += 1
        if self.state["reads"] == self.state["good"] + 1:
            return False, None
        return True, scene(self.state["reads"])

    def release(self) -> None:
        pass


def flaky(good: int, refuse: int) -> tuple[VideoSource, dict]:
    state = {"opens": 0, "reads": 0, "refused": 0, "good": good, "refuse": refuse}
    return VideoSource(0, capture_factory=lambda _target: FlakyCamera(state)), state


def slow_denoise(delay: float):
    def denoise(image: np.ndarray, *, sigma: float | None = None) -> np.ndarray:
        time.sleep(delay)
        return image

    return denoise


# -- sources -------------------------------------------------------------------------------


def test_open_source_dispatch(tmp_path):
    video = write_video(tmp_path / "clip.avi", 3)
    assert isinstance(open_source("0"), VideoSource) and open_source("0").live
    assert open_source("rtsp://cam.local/stream").live
    assert isinstance(open_source(str(tmp_path)), FolderSource)
    file_source = open_source(str(video))
    assert isinstance(file_source, VideoSource) and not file_source.live
    with pytest.raises(SourceError, match="not a camera index"):
        open_source(str(tmp_path / "missing.mp4"))


def test_video_file_source_reads_all_frames_then_ends(tmp_path):
    video = write_video(tmp_path / "clip.avi", 7)
    source = open_source(str(video))
    frames = list(source)
    assert len(frames) == 7 and frames[0].shape == (48, 64, 3)
    assert source.fps == pytest.approx(20.0)


def test_folder_source_natural_order(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((8, 8), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [int(f[0, 0]) for f in FolderSource(tmp_path)] == [1, 2, 10]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        FolderSource(tmp_path / "empty").open()


def fake_picamera2(calls: list, *, channels: int = 3) -> types.ModuleType:
    module = types.ModuleType("picamera2")

    class Picamera2:
        def __init__(self, camera: int = 0) -> None:
            calls.append(("init", camera))
            self.size = (640, 480)

        def create_video_configuration(self, main: dict) -> dict:
            self.size = main["size"]
            return {"main": main}

        def configure(self, config: dict) -> None:
            calls.append(("configure", config["main"]["format"], tuple(config["main"]["size"])))

        def start(self) -> None:
            calls.append(("start",))

        def capture_array(self) -> np.ndarray:
            w, h = self.size
            return np.full((h, w, channels), 128, np.uint8)

        def stop(self) -> None:
            calls.append(("stop",))

        def close(self) -> None:
            calls.append(("close",))

    module.Picamera2 = Picamera2
    return module


@pytest.mark.parametrize("channels", [3, 4])
def test_picamera2_source_through_stream(monkeypatch, tmp_path, channels):
    calls: list = []
    monkeypatch.setitem(sys.modules, "picamera2", fake_picamera2(calls, channels=channels))
    report = stream("picamera2", capture=CaptureOptions(size=(96, 64)), output=OutputOptions(record=tmp_path / "pi.mp4"),
                    limits=Limits(max_frames=5), control=QUIET)
    assert report.frames_processed == 5 and report.failed is None
    assert ("configure", "RGB888", (96, 64)) in calls
    assert calls[-2:] == [("stop",), ("close",)]
    cap = cv2.VideoCapture(str(tmp_path / "pi.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape == (64, 96, 3)


def test_picamera2_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as if not installed
    with pytest.raises(SourceError, match="python3-picamera2"):
        open_source("picamera2").open()


# -- capture thread ------------------------------------------------------------------------


def test_mailbox_latest_frame_wins():
    box = Mailbox(drop=True)
    stop = threading.Event()
    for i in range(3):
        box.put(Frame(i, np.zeros((2, 2), np.uint8), 0.0, 0.0), stop=stop)
    assert box.get(0.01).index == 2 and box.dropped == 2
    assert box.get(0.01) is None


def test_slow_processing_drops_stale_frames_and_bounds_latency():
    source = FakeLive(fps=200)
    report = Stream(source, denoise=slow_denoise(0.03), limits=Limits(duration=0.8), control=QUIET).run()
    assert report.frames_dropped > report.frames_processed > 5
    assert report.frames_captured >= report.frames_processed + report.frames_dropped
    # Latest frame wins: a frame waits at most one processing time, never in a growing queue.
    # (The median, not the tail: a loaded test machine can stall any single frame.) Measured
    # against this run's own time per processed frame, not in absolute ms, so a slow machine
    # cannot fail it; a queue that grew would put the median near half the run instead.
    per_frame_ms = 1000 * report.elapsed_s / report.frames_processed
    assert report.latency_ms["p50"] < 3 * per_frame_ms, (report.latency_ms, per_frame_ms)
    assert report.stop_reason == "0.8 s elapsed"


def test_file_source_loses_no_frame_when_processing_is_slow(tmp_path):
    video = write_video(tmp_path / "clip.avi", 12)
    report = stream(str(video), denoise=slow_denoise(0.01), control=QUIET)
    assert (report.frames_processed, report.frames_dropped, report.stop_reason) == (12, 0, "end of source")


def test_max_fps_caps_work(tmp_path):
    video = write_video(tmp_path / "clip.avi", 10)
    report = stream(str(video), limits=Limits(max_fps=40), control=QUIET)
    assert report.frames_processed == 10
    assert report.elapsed_s >= 9 / 40 - 0.02 and report.fps <= 45


def test_lost_camera_is_retried_with_backoff_and_reported(tmp_path):
    source, state = flaky(good=4, refuse=2)
    notices = []
    events = tmp_path / "events.jsonl"
    report = Stream(source, capture=CaptureOptions(backoff=FAST, reconnect_for=5.0), output=OutputOptions(events=events),
                    limits=Limits(max_frames=8), control=ControlOptions(on_notice=notices.append, handle_signals=False)).run()
    assert report.frames_processed == 8 and report.reconnects == 1 and report.failed is None
    assert [n.kind for n in notices] == ["lost", "retry", "retry", "reconnected"]
    assert notices[-1].details["attempts"] == 3
    logged = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert logged == ["start", "source_lost", "source_retry", "source_retry", "source_reconnected", "stop"]


def test_camera_that_never_returns_gives_up_with_a_reason():
    source, _ = flaky(good=3, refuse=10**6)
    report = Stream(source, capture=CaptureOptions(backoff=FAST, reconnect_for=0.15), control=QUIET).run()
    assert report.frames_captured == 3 and report.frames_processed >= 1  # an instant fake camera: stale frames drop
    assert report.stop_reason == "source failed" and "gave up" in report.failed


def test_capture_start_fails_fast_for_missing_camera():
    source = VideoSource(0, capture_factory=lambda _t: types.SimpleNamespace(isOpened=lambda: False, release=lambda: None))
    with pytest.raises(SourceError, match="camera 0: cannot open"):
        Capture(source).start()


# -- sinks ---------------------------------------------------------------------------------


def out(i: int, t: float, image: np.ndarray | None = None, anomaly=None) -> Output:
    image = scene(i) if image is None else image
    return Output(index=i, wall_time=t, image=image, view=image, anomaly=anomaly)


def test_video_sink_is_only_in_place_once_finalised(tmp_path):
    sink = VideoSink(tmp_path / "v.mp4", fps=10)
    for i in range(4):
        sink.write(out(i, 100.0 + i))
    assert not (tmp_path / "v.mp4").exists() and sink.recording.exists()
    sink.close()
    assert count_frames(tmp_path / "v.mp4") == 4 and not sink.recording.exists() and sink.saved


def test_realtime_video_holds_frames_for_their_duration(tmp_path):
    sink = VideoSink(tmp_path / "v.avi", fps=10, realtime=True, max_gap=1.0)
    for t in (0.0, 0.3, 0.35, 0.5, 5.0):  # 0.35 falls in the same slot as 0.3; 0.5 -> 5.0 is a long gap
        sink.write(out(int(t * 10), 1000.0 + t))
    sink.close()
    # slots: 3 x frame@0.0, frame@0.35 (replaces 0.3) for 2, frame@0.5 held for max_gap 1 s = 10, last 1
    assert count_frames(tmp_path / "v.avi") == 3 + 2 + 10 + 1


def test_sink_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(SinkError, match="video must end in"):
        VideoSink(tmp_path / "v.gif", fps=10)
    with pytest.raises(SinkError, match="does not exist"):
        VideoSink(tmp_path / "nope" / "v.mp4", fps=10)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(SinkError, match="no display"):
            WindowSink()


class FakeResult:
    def __init__(self, score: float) -> None:
        self.score = score
        self.normalized_score = 1.0 / (1.0 + np.exp(-(score - 0.5) * 10))
        self.is_anomaly = score > 0.5
        self.anomaly_map = np.full((48, 64), score, np.float32)


class FakeDetector:
    """Same interface as edge_ae.anomaly.detector.AnomalyDetector: flags frames whose bright square is at the left."""

    def __call__(self, frame: np.ndarray) -> FakeResult:
        bright = np.argwhere(frame[20, :, 2] > 200)
        return FakeResult(1.0 if len(bright) and bright[0][0] < 10 else 0.1)


def fake_overlay(frame: np.ndarray, result: FakeResult) -> np.ndarray:
    view = frame.copy()
    view[:, :, 2] = np.maximum(view[:, :, 2], np.uint8(255 * min(result.score, 1.0)))
    return view


def test_anomaly_events_log_and_snapshots(tmp_path):
    video = write_video(tmp_path / "clip.avi", 30)
    events = tmp_path / "log" / "events.jsonl"
    report = stream(str(video), anomaly=FakeDetector(), frame=FrameOptions(overlay=fake_overlay),
                    output=OutputOptions(events=events, record=tmp_path / "flagged.avi"), control=QUIET)
    flagged = [i for i in range(30) if FakeDetector()(scene(i)).is_anomaly]
    assert report.anomalies == len(flagged) > 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    anomalies = [rec for rec in lines if rec["event"] == "anomaly"]
    assert [rec["frame"] for rec in anomalies] == flagged
    assert anomalies[0]["score"] == 1.0 and anomalies[0]["normalized_score"] > 0.5
    # At most one snapshot pair a second: the first flagged frame has its images.
    assert Path(anomalies[0]["image"]).is_file() and Path(anomalies[0]["heatmap"]).is_file()
    assert cv2.imread(anomalies[0]["heatmap"]).shape == (48, 64, 3)
    assert lines[-1]["event"] == "stop" and lines[-1]["anomalies"] == len(flagged)
    assert count_frames(tmp_path / "flagged.avi") == 30


def test_event_log_appends_json_lines(tmp_path):
    log = EventLog(tmp_path / "e.jsonl", snapshot_interval=0.0)
    log.write(out(3, 5.0, anomaly=FakeResult(0.9)))
    log.write(out(4, 6.0, anomaly=FakeResult(0.1)))  # normal frames are not events
    log.close()
    (record,) = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert record["event"] == "anomaly" and record["frame"] == 3 and record["time"] == 5.0


# -- the whole path ------------------------------------------------------------------------


def blur_denoiser(path: Path) -> Path:
    """A real edge-ae denoiser ONNX file, made by hand (no torch): a 3x3 depthwise blur."""
    from onnx import TensorProto, helper

    kernel = np.full((3, 1, 3, 3), 0.5 / 8, np.float32)
    kernel[:, :, 1, 1] = 0.5
    return write_hand_made_denoiser(
        path, helper.make_node("Conv", ["image", "w"], ["denoised"], group=3, pads=[1, 1, 1, 1]),
        helper.make_tensor("w", TensorProto.FLOAT, kernel.shape, kernel.flatten()), name="blur", receptive_field=3)


def test_video_file_whole_path_with_a_real_denoiser(tmp_path):
    video = write_video(tmp_path / "clip.avi", 15)
    model = blur_denoiser(tmp_path / "blur.onnx")
    report = stream(str(video), denoise=model, threads=1, denoising=DenoiseOptions(sigma=10), frame=FrameOptions(temporal=True),
                    output=OutputOptions(record=tmp_path / "out.mp4", frames=tmp_path / "frames", events=tmp_path / "e.jsonl"),
                    control=QUIET)
    assert (report.frames_processed, report.frames_dropped, report.stop_reason) == (15, 0, "end of source")
    assert count_frames(tmp_path / "out.mp4") == 15
    assert sorted(p.name for p in (tmp_path / "frames").iterdir())[:2] == ["frame_000000.png", "frame_000001.png"]
    assert len(list((tmp_path / "frames").iterdir())) == 15
    assert report.latency_ms["max"] > 0 and report.fps > 0
    assert "15 frames processed" in report.summary()


def test_iterating_a_stream_and_stopping_it_finalises_the_video(tmp_path):
    s = Stream(FakeLive(fps=100), output=OutputOptions(record=tmp_path / "live.mp4"), control=QUIET)
    seen = []
    for output in s:
        seen.append(output.index)
        if len(seen) == 6:
            s.stop()
    assert len(seen) == 6 and s.report.stop_reason == "stopped"
    assert count_frames(tmp_path / "live.mp4") >= 1
    assert not list(tmp_path.glob(".*partial*"))


def test_stop_from_another_thread(tmp_path):
    s = Stream(FakeLive(fps=100), output=OutputOptions(record=tmp_path / "live.avi"), control=QUIET)
    threading.Timer(0.3, s.stop).start()
    report = s.run()
    assert report.stop_reason == "stopped" and report.frames_processed > 0
    # A live recording runs in real time at its nominal 15 fps, however many frames came in.
    assert abs(count_frames(tmp_path / "live.avi") - report.elapsed_s * 15) <= 3


def test_sigint_in_process_stops_cleanly_and_restores_handlers(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    s = Stream(FakeLive(fps=100), output=OutputOptions(record=tmp_path / "live.mp4"))
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    report = s.run()
    assert report.stop_reason == "signal SIGINT"
    assert signal.getsignal(signal.SIGINT) is before
    assert count_frames(tmp_path / "live.mp4") >= 1


def test_cli_sigterm_finalises_a_playable_video(tmp_path):
    video = write_video(tmp_path / "long.avi", 200)
    out_path = tmp_path / "rec.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge_ae", "camera", "--source", str(video), "--record", str(out_path),
                             "--max-fps", "25", "--events", str(tmp_path / "e.jsonl")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "rec.mp4.recording"
    deadline = time.monotonic() + 20
    while not partial.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "stopped: signal SIGTERM" in stdout
    assert 0 < count_frames(out_path) < 200 and not partial.exists()
    last = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "stop" and last["stop_reason"] == "signal SIGTERM"


def test_cli_camera_command(tmp_path, capsys):
    video = write_video(tmp_path / "clip.avi", 8)
    assert main(["camera", "--source", str(video), "--record", str(tmp_path / "o.avi"), "--max-frames", "5",
                 "--temporal"]) == 0
    stdout = capsys.readouterr().out
    assert "5 frames processed" in stdout and "stopped: 5 frames done" in stdout
    assert count_frames(tmp_path / "o.avi") == 5


@pytest.mark.parametrize("args, message", [
    (["--source", "/no/such/video.mp4"], "not a camera index"),
    (["--source", "{video}", "--record", "{tmp}/x.gif"], "video must end in"),
    (["--source", "{video}", "--denoise", "no-such-model"], "unknown model"),
    (["--source", "{video}", "--sigma", "-1"], "argument --sigma: must be 0 or more"),  # refused by the parser
])
def test_cli_user_mistakes_are_one_line(tmp_path, capsys, args, message):
    video = write_video(tmp_path / "clip.avi", 2)
    argv = ["camera", *[a.format(video=video, tmp=tmp_path) for a in args]]
    try:
        code = main(argv)
    except SystemExit as exc:  # a value refused while parsing: argparse exits
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def bright_spot_anomaly_model(path: Path) -> Path:
    """A real edge-ae anomaly ONNX file, made by hand (no torch): the map is how far each pixel's
    mean is from mid-gray, the score its maximum; calibrated so a bright spot is anomalous."""
    import onnx
    from onnx import TensorProto, helper

    from edge_ae.model.contract import METADATA_KEY, AnomalyCalibration, ModelSpec

    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("Sub", ["image", "half"], ["centred"]),
        helper.make_node("Abs", ["centred"], ["dist"]),
        helper.make_node("ReduceMean", ["dist"], ["anomaly_map"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "bright-spot",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["n", 1, 32, 32]),
         helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])],
        [half],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    spec = ModelSpec(name="bright-spot", kind="anomaly", channels=3, color_order="BGR", input_size=(32, 32),
                     anomaly=AnomalyCalibration(threshold=0.3, score_mean=0.15, score_std=0.05))
    helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.save(model, str(path))
    return path


def test_real_anomaly_detector_on_a_folder_stream(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    spots = {3, 4, 9}
    for i in range(12):
        image = np.full((48, 64, 3), 128, np.uint8)
        if i in spots:
            image[10:30, 20:44] = 250
        cv2.imwrite(str(frames / f"f{i}.png"), image)
    model = bright_spot_anomaly_model(tmp_path / "spot.onnx")
    events = tmp_path / "events.jsonl"
    report = stream(str(frames), anomaly=str(model), output=OutputOptions(events=events, record=tmp_path / "overlay.avi"),
                    control=QUIET)
    assert report.anomalies == len(spots) and report.frames_processed == 12
    flagged = [rec for rec in map(json.loads, events.read_text().splitlines()) if rec["event"] == "anomaly"]
    assert [rec["frame"] for rec in flagged] == sorted(spots)
    heatmap = cv2.imread(flagged[0]["heatmap"])
    assert heatmap.shape == (48, 64, 3) and not np.all(heatmap == heatmap[0, 0])  # draw_overlay drew on it
    assert count_frames(tmp_path / "overlay.avi") == 12


def test_leaving_a_with_block_finalises_at_once(tmp_path):
    with Stream(FakeLive(fps=100), output=OutputOptions(record=tmp_path / "w.mp4"), control=QUIET) as s:
        for output in s:
            if output.index >= 3:
                break
    assert s.report is not None and count_frames(tmp_path / "w.mp4") >= 1
    assert not list(tmp_path.glob(".*partial*"))


def test_cli_reports_a_lost_camera_and_exits_1(monkeypatch, capsys):
    source, _ = flaky(good=3, refuse=10**6)
    monkeypatch.setattr("edge_ae.video.stream.open_source", lambda spec, **_: source)
    assert main(["camera", "--source", "0", "--reconnect-for", "0.2"]) == 1
    captured = capsys.readouterr()
    assert "camera 0: no frame (disconnected?)" in captured.err
    assert "gave up" in captured.err and "error: camera 0: lost, gave up" in captured.out
