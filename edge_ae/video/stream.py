"""Process a live camera or a video in real time: capture -> denoise -> temporal filter ->
anomaly detection -> sinks, with live fps and latency.

    import edge_ae
    from edge_ae.video.options import Limits, OutputOptions
    report = edge_ae.stream(0, denoise="denoise-color-fast", output=OutputOptions(record="out.mp4"),
                            limits=Limits(max_fps=10))
    print(report.summary())

    with edge_ae.Stream("picamera2", anomaly="anomaly-magnetic-tile") as s:  # embedding
        for out in s:                      # each processed frame, after the sinks had it
            if out.anomaly is not None and out.anomaly.is_anomaly:
                ...
            if enough:
                s.stop()

Capture runs in its own thread (``edge_ae.video.capture``): from a live source the newest frame wins
and stale ones are dropped; a file or folder is read frame by frame without loss. SIGINT and
SIGTERM end the run between two frames, so every sink is closed properly (the video file is
finalised and playable). Nothing here prints; ``on_notice`` and ``on_progress`` report.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_ae.denoise.options import DenoiseOptions
from edge_ae.errors import ImageError
from edge_ae.files.output_paths import check_stream_outputs
from edge_ae.video.capture import Capture, Frame, Notice
from edge_ae.video.options import CaptureOptions, ControlOptions, FrameOptions, Limits, OutputOptions
from edge_ae.video.pipeline import FramePipeline
from edge_ae.video.recording import recording_path
from edge_ae.video.sinks import EventLog, ImageSequenceSink, Output, Sink, SinkError, VideoSink, WindowSink
from edge_ae.video.sources import Source, open_source
from edge_ae.video.stats import LatencyHistogram, RunStats, StreamReport
from edge_ae.video.temporal import TemporalFilter

__all__ = ["LatencyHistogram", "Stream", "StreamReport", "stream"]

DEFAULT_LIVE_FPS = 15.0
DEFAULT_FILE_FPS = 25.0


class Stream:
    """A configured run over one source; iterate it (or call ``run()``) once.

    What to do with each frame, each optional: ``denoise`` (model name, .onnx path, or any
    callable ``f(image, sigma=...)``), with ``denoising`` (a ``DenoiseOptions``: ``sigma``, the
    0-255 noise level, None to estimate it, smoothed over frames: by the denoiser's learned
    noise-level model every ``frame.estimate_every`` frames when it has one, a per-pixel map,
    else by the wavelet estimate on every frame; ``strength`` multiplies the estimate: above 1
    cleans harder, below 1 keeps more grain); ``anomaly`` (model name, path, or a detector object
    ``d(frame) -> AnomalyResult``); ``frame`` (a ``FrameOptions``: the temporal filter, the
    overlay, how often the level is re-estimated); ``threads`` for the models it loads.

    The rest, one option object each (``edge_ae.video.options``), all optional: ``capture``
    (camera size, reconnection, latest-frame-wins), ``output`` (recording, frames, event log,
    window, more sinks), ``limits`` (max_fps, max_frames, duration), ``control`` (signals,
    notices and progress callbacks). A folder's unreadable files (and frames a model refuses,
    such as NaN pixels) are skipped, named in a notice and counted.
    """

    def __init__(
        self,
        source: str | int | Path | Source,
        *,
        denoise: str | Path | Callable[..., np.ndarray] | None = None,
        denoising: DenoiseOptions | None = None,
        anomaly: Any = None,
        frame: FrameOptions | None = None,
        threads: int | None = None,
        capture: CaptureOptions | None = None,
        output: OutputOptions | None = None,
        limits: Limits | None = None,
        control: ControlOptions | None = None,
    ) -> None:
        frame = _option(frame, FrameOptions, "frame")
        capture = _option(capture, CaptureOptions, "capture")
        output = _option(output, OutputOptions, "output")
        limits = _option(limits, Limits, "limits")
        control = _option(control, ControlOptions, "control")
        self.output, self.limits, self.control = output, limits, control
        record, frames, events = output.record, output.frames, output.events
        # The batch commands' output rules (docs/BATCH.md), before any model loads or file opens.
        check_stream_outputs(source, record=record, frames=frames, events=events)
        # Models load here, before any camera opens: a bad model path fails fast.
        self.pipeline = FramePipeline(denoise=denoise, options=_option(denoising, DenoiseOptions, "denoising"),
                                      estimate_every=frame.estimate_every, temporal=frame.temporal, anomaly=anomaly,
                                      overlay=frame.overlay, threads=threads)
        self.source = open_source(source, size=capture.size, max_pixels=capture.max_pixels)
        self.max_fps = limits.max_fps
        self.max_frames = limits.max_frames
        self.duration = limits.duration
        self.handle_signals = control.handle_signals
        self.on_notice, self.on_progress, self.progress_every = control.on_notice, control.on_progress, control.progress_every
        self.capture = Capture(self.source, drop=capture.drop, backoff=capture.backoff, reconnect_for=capture.reconnect_for)
        self.sinks: list[Sink] = []
        # Sinks that can refuse (no display, no such folder) come before the event log opens its file.
        self.window = WindowSink() if output.show else None
        if record is not None and isinstance(source, (str, Path)) and Path(source).exists() and \
                Path(source).resolve() == recording_path(Path(record)).resolve():
            raise SinkError(f"{record}: it records into {source}, the source: choose another name")
        self.video = VideoSink(record, fps=output.record_fps, realtime=self.source.live) if record is not None else None
        self._extra = [*([ImageSequenceSink(frames)] if frames is not None else []), *output.sinks]
        self.event_log = EventLog(events) if events is not None else None
        self._stop_reason: str | None = None
        self._started = False
        self._frames: Generator[Output, None, None] | None = None
        self._old_handlers: dict[int, Any] = {}
        self.stats = RunStats()
        self._failed: str | None = None
        self.report: StreamReport | None = None

    @property
    def denoiser(self) -> Callable[..., np.ndarray] | None:
        """The denoiser the frames go through (None: no denoising)."""
        return self.pipeline.denoiser

    @property
    def detector(self) -> Any:
        """The anomaly detector the frames go through (None: no detection)."""
        return self.pipeline.detector

    @property
    def temporal(self) -> TemporalFilter | None:
        """The temporal filter (None: off)."""
        return self.pipeline.temporal

    # -- control ---------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """End the run after the frame in hand; safe from any thread or a signal handler."""
        # No lock: a signal handler runs on the main thread between bytecodes, and waiting
        # there for a lock the main thread holds would hang. Losing a race only changes the reason.
        if self._stop_reason is None:
            self._stop_reason = reason

    def run(self) -> StreamReport:
        """Process until the source ends, ``stop()``, a signal or a limit; return the report."""
        for _ in self:
            pass
        assert self.report is not None
        return self.report

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop and finish at once (sinks closed, video finalised), even if the loop over the
        stream was left with ``break``."""
        self.stop()
        if self._frames is not None:
            self._frames.close()

    def __iter__(self) -> Iterator[Output]:
        if self._started:
            raise RuntimeError("a Stream runs once; make a new one")
        self._started = True
        self._frames = self._run()
        return self._frames

    def _run(self) -> Generator[Output, None, None]:
        self._start_capture()
        try:
            self._open_sinks()
            self._install_signals()
            self.stats.t0 = last_progress = time.monotonic()
            pace = _Pace(self.max_fps, self.stats.t0)
            while self._stop_reason is None:
                self._handle_notices()
                if self._limit_reached():
                    break
                if not pace.ready():
                    continue
                frame = self._next_frame()
                if frame is None:
                    continue
                pace.taken()
                out = self._process_or_skip(frame)
                if out is None:
                    continue
                if self.window is not None and self.window.closed_by_user:
                    self.stop("window closed")
                now = time.monotonic()
                if self.on_progress and now - last_progress >= self.progress_every:
                    last_progress = now
                    self.on_progress(self._make_report("running"))
                yield out
        finally:
            self._finish()

    def _start_capture(self) -> None:
        try:
            self.capture.start()  # raises SourceError if the source cannot be opened at all
        except BaseException:
            for sink in (self.event_log, self.window):
                if sink is not None:
                    sink.close()
            raise

    def _next_frame(self) -> Frame | None:
        frame = self.capture.mailbox.get(timeout=0.1)
        if frame is None and self.capture.mailbox.closed:
            self._handle_notices()
            self._failed = self.capture.failed
            self.stop("source failed" if self.capture.failed else "end of source")
        return frame

    def _process_or_skip(self, frame: Frame) -> Output | None:
        try:
            return self._process(frame)
        except ImageError as exc:
            if self.source.live:
                raise  # a camera's frames are all alike: one refused is all refused
            self.stats.skipped += 1
            self._notice(Notice("skipped", f"{frame.name or f'frame {frame.index}'}: {exc} (frame skipped)"))
            return None

    def _finish(self) -> None:
        self.stats.t_end = time.monotonic()
        self.stop()
        if not self.capture.stop():
            self._notice(Notice("error", f"{self.source.description}: capture thread did not stop within 2 s"))
        self._handle_notices()
        self._restore_signals()
        self._close_sinks()
        self.report = self._make_report(self._stop_reason or "stopped")
        if self.event_log is not None:
            self.event_log.log("stop", **{k: v for k, v in self.report.to_dict().items() if k != "outputs"})
            self.event_log.close()

    # -- per frame ---------------------------------------------------------------------------

    def _process(self, frame: Frame) -> Output:
        start = time.monotonic()
        done = self.pipeline(frame.image)
        output = Output(index=frame.index, wall_time=frame.wall_time, image=done.image, view=done.view, anomaly=done.anomaly,
                        raw=frame.image)
        for sink in self.sinks:
            try:
                sink.write(output)
            except SinkError as exc:  # an output that cannot go on (a full disk): the run ends, failed
                self._failed = "; ".join([*filter(None, [self._failed]), str(exc)])
                self.stop("an output failed")
                break
        anomalous = done.anomaly is not None and bool(done.anomaly.is_anomaly)
        self.stats.frame_done(started=start, captured=frame.captured, anomalous=anomalous)
        return output

    def _limit_reached(self) -> bool:
        if self.max_frames is not None and self.stats.processed >= self.max_frames:
            self.stop(f"{self.max_frames} frames done")
        elif self.duration is not None and time.monotonic() - self.stats.t0 >= self.duration:
            self.stop(f"{self.duration:g} s elapsed")
        return self._stop_reason is not None

    # -- notices, sinks, signals -------------------------------------------------------------

    def _handle_notices(self) -> None:
        for notice in self.capture.notices():
            if notice.kind == "reconnected":
                # The view may have moved while the camera was away: start the average afresh.
                self.pipeline.reset()
            self._notice(notice)

    def _notice(self, notice: Notice) -> None:
        if self.event_log is not None:
            self.event_log.log(f"source_{notice.kind}", time=notice.wall_time, message=notice.message, **notice.details)
        if self.on_notice is not None:
            self.on_notice(notice)

    def _open_sinks(self) -> None:
        if self.video is not None:
            self.video.fps = self.video.fps or self._default_record_fps()  # a file's own rate is known only now
            if self.video.recovered is not None:
                self._notice(Notice("recovered", f"an interrupted recording was kept as {self.video.recovered}"))
            self.sinks.append(self.video)
        self.sinks += self._extra
        if self.event_log is not None:
            self.sinks.append(self.event_log)
            self.event_log.log("start", source=self.source.description, live=self.source.live,
                               denoise=self.pipeline.denoiser is not None, temporal=self.pipeline.temporal is not None,
                               anomaly=self.pipeline.detector is not None)
        if self.window is not None:
            self.sinks.append(self.window)

    def _default_record_fps(self) -> float:
        if not self.source.live:
            return self.source.fps or DEFAULT_FILE_FPS
        known = [f for f in (self.source.fps, self.max_fps) if f]
        return min(known) if known else DEFAULT_LIVE_FPS

    def _close_sinks(self) -> None:
        problems = []
        for sink in self.sinks:
            if sink is self.event_log:
                continue  # closed last, after the stop line
            try:
                sink.close()
            except SinkError as exc:
                problems.append(str(exc))
        if problems:
            self._failed = "; ".join([*(filter(None, [self._failed])), *problems])

    def _install_signals(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stop(f"signal {signal.Signals(signum).name}")
        # A second Ctrl-C gets the usual behaviour back, should closing itself hang.
        self._restore_signals()

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    def _make_report(self, reason: str) -> StreamReport:
        outputs = {}
        for sink in self.sinks:
            if isinstance(sink, VideoSink):
                if sink.saved or reason == "running":
                    outputs["video"] = f"{sink.path} ({sink.frames} frames at {sink.fps:g} fps)"
                elif sink.frames:  # the error says why, and where what was recorded is kept
                    outputs["video"] = f"{sink.path} NOT saved"
            elif isinstance(sink, ImageSequenceSink):
                outputs["frames"] = str(sink.folder)
            elif isinstance(sink, EventLog):
                outputs["events"] = f"{sink.path} ({sink.flagged} flagged frames; snapshots in {sink.snapshots})"
        return self.stats.report(
            source=self.source.description, reason=reason, captured=self.capture.captured,
            dropped=self.capture.mailbox.dropped, reconnects=self.capture.reconnects,
            capture_skipped=self.capture.skipped, failed=self._failed, outputs=outputs,
        )


class _Pace:
    """``max_fps``: frames are taken no sooner than one period after the last (a late frame
    does not earn a burst: the schedule never lags the clock by more than one period)."""

    def __init__(self, max_fps: float | None, start: float) -> None:
        self.period = 1.0 / max_fps if max_fps else 0.0
        self.next_due = start

    def ready(self) -> bool:
        if not self.period:
            return True
        wait = self.next_due - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 0.1))
            return False
        return True

    def taken(self) -> None:
        if self.period:
            self.next_due = max(self.next_due + self.period, time.monotonic() - self.period)


def stream(
    source: str | int | Path | Source,
    *,
    denoise: str | Path | Callable[..., np.ndarray] | None = None,
    denoising: DenoiseOptions | None = None,
    anomaly: Any = None,
    frame: FrameOptions | None = None,
    threads: int | None = None,
    capture: CaptureOptions | None = None,
    output: OutputOptions | None = None,
    limits: Limits | None = None,
    control: ControlOptions | None = None,
) -> StreamReport:
    """Run a ``Stream`` over ``source`` to its end and return the report (options as ``Stream``)."""
    return Stream(source, denoise=denoise, denoising=denoising, anomaly=anomaly, frame=frame, threads=threads,
                  capture=capture, output=output, limits=limits, control=control).run()


def _option(value: Any, kind: type, name: str) -> Any:
    """``value``, or the defaults of ``kind`` for None; a TypeError naming the expected type for
    anything else (a dict or a keyword from the old flat signature, say)."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__} (edge_ae.video.options), got {type(value).__name__}")
    return value
