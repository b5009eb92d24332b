"""Process a live camera or a video in real time: capture -> denoise -> temporal filter ->
anomaly detection -> sinks, with live fps and latency.

    import edge_ae
    report = edge_ae.stream(0, denoise="denoise-color-fast", record="out.mp4", max_fps=10)
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
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.errors import ImageError
from edge_ae.files.imageio import DEFAULT_MAX_PIXELS
from edge_ae.image import to_bgr8
from edge_ae.video.capture import DEFAULT_BACKOFF, Backoff, Capture, Frame, Notice
from edge_ae.video.sinks import EventLog, ImageSequenceSink, Output, SinkError, VideoSink, WindowSink
from edge_ae.video.sources import Source, open_source
from edge_ae.video.temporal import TemporalFilter

DEFAULT_LIVE_FPS = 15.0
DEFAULT_FILE_FPS = 25.0


class LatencyHistogram:
    """Latencies in 1 ms bins up to a minute: exact count, mean and max, percentiles to the
    millisecond, in constant memory however long the run."""

    BINS = 60_000

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS + 1, np.int64)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self.counts[min(int(ms), self.BINS)] += 1
        self.n += 1
        self.total += ms
        self.max = max(self.max, ms)

    def percentile(self, q: float) -> float:
        if not self.n:
            return 0.0
        rank = int(np.ceil(q / 100.0 * self.n))
        return float(np.searchsorted(np.cumsum(self.counts), max(rank, 1)) + 1)  # bin's upper edge, ms

    def summary(self) -> dict[str, float]:
        mean = self.total / self.n if self.n else 0.0
        return {"mean": round(mean, 1), "p50": self.percentile(50), "p95": self.percentile(95), "max": round(self.max, 1)}


@dataclass(frozen=True)
class StreamReport:
    """How a run went; ``summary()`` renders it for people, ``asdict`` for logs."""

    source: str
    stop_reason: str
    frames_captured: int
    frames_processed: int
    frames_dropped: int  # stale frames replaced before processing (live sources only)
    elapsed_s: float
    fps: float  # frames processed per second
    capture_fps: float  # frames delivered by the source per second
    latency_ms: dict[str, float]  # capture to sinks done: mean, p50, p95, max
    work_ms: float  # mean processing time per frame (models, filter, sinks)
    reconnects: int
    anomalies: int
    failed: str | None = None  # set when the run ended on an error (e.g. the camera never came back)
    outputs: dict[str, str] = field(default_factory=dict)
    frames_skipped: int = 0  # frames that could not be read or processed (a corrupt file in a folder)

    def summary(self) -> str:
        lat = self.latency_ms
        lines = [
            f"{self.source}: {self.frames_processed} frames processed in {self.elapsed_s:.1f} s "
            f"({self.fps:.1f} fps; source {self.capture_fps:.1f} fps, {self.frames_dropped} stale frames dropped)",
            f"latency capture->output: mean {lat['mean']:.0f} ms, p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, "
            f"max {lat['max']:.0f} ms; work {self.work_ms:.0f} ms/frame",
            f"stopped: {self.stop_reason}" + (f"; reconnects: {self.reconnects}" if self.reconnects else "")
            + (f"; anomalous frames: {self.anomalies}" if self.anomalies else "")
            + (f"; skipped frames: {self.frames_skipped} (unreadable or unusable)" if self.frames_skipped else ""),
        ]
        lines += [f"{name}: {where}" for name, where in self.outputs.items()]
        if self.failed:
            lines.append(f"error: {self.failed}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Stream:
    """A configured run over one source; iterate it (or call ``run()``) once.

    Processing, each optional: ``denoise`` (model name, .onnx path, or any callable
    ``f(image, sigma=...)``), ``sigma`` (0-255 noise level; None: estimated, smoothed over
    frames: by the denoiser's learned noise-level model every ``estimate_every`` frames when it
    has one, a per-pixel map, else by the wavelet estimate on every frame), ``strength``
    (multiplies the estimate: above 1 cleans harder, below 1 keeps more grain), ``temporal``
    (True or a ``TemporalFilter``; for fixed cameras), ``anomaly``
    (model name, path, or a detector object ``d(frame) -> AnomalyResult``) with ``overlay``
    (``f(frame, result) -> BGR uint8``; default ``edge_ae.anomaly.detector.draw_overlay``).

    Outputs, each optional: ``record`` (video path; ``record_fps`` overrides its frame rate),
    ``frames`` (folder of numbered images), ``events`` (JSON-lines log; flagged frames and their
    heatmaps go next to it), ``show`` (a window), ``sinks`` (more objects with write/close).

    ``size`` (width, height) is asked of a camera. Pace and limits: ``max_fps`` caps processing
    (a live source drops the frames in between; a file is slowed down), ``max_frames``,
    ``duration`` (seconds). ``drop`` overrides latest-frame-wins (default: on for live sources).
    A live source lost mid-run is reopened with ``backoff`` for up to ``reconnect_for`` seconds
    (None: for ever). A folder's unreadable files (and frames a model refuses, such as NaN
    pixels) are skipped, named in a notice and counted; ``max_pixels`` bounds a folder's images.
    """

    def __init__(
        self,
        source: str | int | Path | Source,
        *,
        size: tuple[int, int] | None = None,
        denoise: str | Path | Callable[..., np.ndarray] | None = None,
        sigma: float | None = None,
        strength: float = 1.0,
        estimate_every: int = 8,
        temporal: bool | TemporalFilter = False,
        anomaly: Any = None,
        overlay: Callable[[np.ndarray, Any], np.ndarray] | None = None,
        record: str | Path | None = None,
        record_fps: float | None = None,
        frames: str | Path | None = None,
        events: str | Path | None = None,
        show: bool = False,
        sinks: Sequence[Any] = (),
        max_fps: float | None = None,
        max_frames: int | None = None,
        duration: float | None = None,
        threads: int | None = None,
        drop: bool | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        reconnect_for: float | None = 60.0,
        handle_signals: bool = True,
        on_notice: Callable[[Notice], None] | None = None,
        on_progress: Callable[[StreamReport], None] | None = None,
        progress_every: float = 1.0,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        if max_fps is not None and not max_fps > 0:
            raise ValueError(f"max_fps must be positive, got {max_fps}")
        if sigma is not None and not (np.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0 (0-255 scale), got {sigma}")
        if not (isinstance(strength, (int, float)) and 0.25 <= strength <= 4.0):
            raise ValueError(f"strength must be a number from 0.25 to 4, got {strength!r}")
        if isinstance(estimate_every, bool) or not isinstance(estimate_every, int) or estimate_every < 1:
            raise ValueError(f"estimate_every must be a whole number >= 1, got {estimate_every!r}")
        self.source = open_source(source, size=size, max_pixels=max_pixels)
        # Models load here, before any camera opens: a bad model path fails fast.
        self.denoiser = _make_denoiser(denoise, threads)
        self.detector = _make_detector(anomaly, threads)
        self.overlay = overlay
        self.temporal = temporal if isinstance(temporal, TemporalFilter) else (TemporalFilter() if temporal else None)
        self.sigma = sigma
        self.strength = float(strength)
        self.estimate_every = estimate_every
        self.max_fps = max_fps
        self.max_frames = max_frames
        self.duration = duration
        self.handle_signals = handle_signals
        self.on_notice, self.on_progress, self.progress_every = on_notice, on_progress, progress_every
        self.capture = Capture(self.source, drop=drop, backoff=backoff, reconnect_for=reconnect_for)
        self.sinks: list[Any] = []
        # Sinks that can refuse (no display, no such folder) come before the event log opens its file.
        self.window = WindowSink() if show else None
        self.video = VideoSink(record, fps=record_fps, realtime=self.source.live) if record is not None else None
        self._extra = [*([ImageSequenceSink(frames)] if frames is not None else []), *sinks]
        self.event_log = EventLog(events) if events is not None else None
        self._stop_reason: str | None = None
        self._started = False
        self._frames: Generator[Output, None, None] | None = None
        self._old_handlers: dict[int, Any] = {}
        self._sigma_ema: float | None = None
        self._level_map: np.ndarray | None = None  # learned estimate, 0-255, reused between estimates
        self._level_age = 0
        self._learned = True  # until the denoiser turns out to have no noise-level model
        self._hist = LatencyHistogram()
        self._processed = 0
        self._skipped = 0  # frames read but refused by a model (a NaN frame, a strip too thin to score)
        self._anomalies = 0
        self._work = 0.0
        self._t0 = 0.0
        self._t_end: float | None = None
        self._failed: str | None = None
        self.report: StreamReport | None = None

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
        try:
            self.capture.start()  # raises SourceError if the source cannot be opened at all
        except BaseException:
            for sink in (self.event_log, self.window):
                if sink is not None:
                    sink.close()
            raise
        try:
            self._open_sinks()
            self._install_signals()
            self._t0 = last_progress = time.monotonic()
            next_due = self._t0
            while self._stop_reason is None:
                self._handle_notices()
                if self._limit_reached():
                    break
                if self.max_fps:
                    wait = next_due - time.monotonic()
                    if wait > 0:
                        time.sleep(min(wait, 0.1))
                        continue
                frame = self.capture.mailbox.get(timeout=0.1)
                if frame is None:
                    if self.capture.mailbox.closed:
                        self._handle_notices()
                        self._failed = self.capture.failed
                        self.stop("source failed" if self.capture.failed else "end of source")
                    continue
                if self.max_fps:
                    next_due = max(next_due + 1.0 / self.max_fps, time.monotonic() - 1.0 / self.max_fps)
                try:
                    out = self._process(frame)
                except ImageError as exc:
                    if self.source.live:
                        raise  # a camera's frames are all alike: one refused is all refused
                    self._skipped += 1
                    self._notice(Notice("skipped", f"{frame.name or f'frame {frame.index}'}: {exc} (frame skipped)"))
                    continue
                if self.window is not None and self.window.closed_by_user:
                    self.stop("window closed")
                now = time.monotonic()
                if self.on_progress and now - last_progress >= self.progress_every:
                    last_progress = now
                    self.on_progress(self._make_report("running"))
                yield out
        finally:
            self._t_end = time.monotonic()
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
        image = frame.image
        out = image
        sigma = self._noise_level(image) if (self.denoiser is not None or self.temporal is not None) else None
        if self.denoiser is not None:
            out = self.denoiser(image, sigma=sigma)
        if self.temporal is not None:
            mean = float(np.mean(sigma)) if isinstance(sigma, np.ndarray) else sigma
            out = self.temporal(out, raw=image if self.denoiser is not None else None, sigma=mean)
        result = self.detector(out) if self.detector is not None else None
        view = to_bgr8(out)
        if result is not None:
            self._anomalies += bool(result.is_anomaly)
            view = self._overlay()(view, result)
        output = Output(index=frame.index, wall_time=frame.wall_time, image=out, view=view, anomaly=result)
        for sink in self.sinks:
            sink.write(output)
        done = time.monotonic()
        self._work += done - start
        self._hist.add(done - frame.captured)
        self._processed += 1
        return output

    def _noise_level(self, image: np.ndarray) -> float | np.ndarray:
        if self.sigma is not None:
            return self.sigma
        learned = self._learned_level(image)
        if learned is not None:
            return learned * np.float32(self.strength)
        # One frame's estimate wobbles by a few percent; smoothing keeps the denoising strength
        # from flickering on a fixed camera.
        estimate = estimate_sigma(image)
        self._sigma_ema = estimate if self._sigma_ema is None else 0.8 * self._sigma_ema + 0.2 * estimate
        return self._sigma_ema * self.strength

    def _learned_level(self, image: np.ndarray) -> np.ndarray | None:
        """The denoiser's learned noise map, re-estimated every ``estimate_every`` frames (a
        camera's noise changes with its exposure, not from frame to frame) and averaged with the
        previous estimate so the strength does not flicker; None without a noise-level model."""
        noise_map = getattr(self.denoiser, "noise_map", None)
        if not self._learned or noise_map is None:
            return None
        stale = self._level_map is None or self._level_map.shape[:2] != image.shape[:2]
        if stale or self._level_age >= self.estimate_every:
            estimate = noise_map(image)
            if estimate is None:
                self._learned = False
                return None
            self._level_map = estimate if stale else 0.5 * (self._level_map + estimate)
            self._level_age = 0
        self._level_age += 1
        return self._level_map

    def _overlay(self) -> Callable[[np.ndarray, Any], np.ndarray]:
        if self.overlay is None:
            from edge_ae.anomaly.detector import draw_overlay  # the anomaly runtime, only when used

            self.overlay = draw_overlay
        return self.overlay

    def _limit_reached(self) -> bool:
        if self.max_frames is not None and self._processed >= self.max_frames:
            self.stop(f"{self.max_frames} frames done")
        elif self.duration is not None and time.monotonic() - self._t0 >= self.duration:
            self.stop(f"{self.duration:g} s elapsed")
        return self._stop_reason is not None

    # -- notices, sinks, signals -------------------------------------------------------------

    def _handle_notices(self) -> None:
        for notice in self.capture.notices():
            if notice.kind == "reconnected":
                # The view may have moved while the camera was away: start the average afresh.
                if self.temporal is not None:
                    self.temporal.reset()
                self._sigma_ema = None
            self._notice(notice)

    def _notice(self, notice: Notice) -> None:
        if self.event_log is not None:
            self.event_log.log(f"source_{notice.kind}", time=notice.wall_time, message=notice.message, **notice.details)
        if self.on_notice is not None:
            self.on_notice(notice)

    def _open_sinks(self) -> None:
        if self.video is not None:
            self.video.fps = self.video.fps or self._default_record_fps()  # a file's own rate is known only now
            self.sinks.append(self.video)
        self.sinks += self._extra
        if self.event_log is not None:
            self.sinks.append(self.event_log)
            self.event_log.log("start", source=self.source.description, live=self.source.live,
                               denoise=self.denoiser is not None, temporal=self.temporal is not None,
                               anomaly=self.detector is not None)
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
        end = self._t_end if self._t_end is not None else time.monotonic()
        elapsed = max(end - self._t0, 1e-9) if self._t0 else 0.0
        outputs = {}
        for sink in self.sinks:
            if isinstance(sink, VideoSink):
                outputs["video"] = f"{sink.path} ({sink.frames} frames at {sink.fps:g} fps)"
            elif isinstance(sink, ImageSequenceSink):
                outputs["frames"] = str(sink.folder)
            elif isinstance(sink, EventLog):
                outputs["events"] = f"{sink.path} ({sink.flagged} flagged frames; snapshots in {sink.snapshots})"
        return StreamReport(
            source=self.source.description,
            stop_reason=reason,
            frames_captured=self.capture.captured,
            frames_processed=self._processed,
            frames_dropped=self.capture.mailbox.dropped,
            elapsed_s=round(elapsed, 3),
            fps=round(self._processed / elapsed, 2) if elapsed else 0.0,
            capture_fps=round(self.capture.captured / elapsed, 2) if elapsed else 0.0,
            latency_ms=self._hist.summary(),
            work_ms=round(1000.0 * self._work / self._processed, 1) if self._processed else 0.0,
            reconnects=self.capture.reconnects,
            anomalies=self._anomalies,
            failed=self._failed,
            outputs=outputs,
            frames_skipped=self.capture.skipped + self._skipped,
        )


def stream(source: str | int | Path | Source, **options: Any) -> StreamReport:
    """Run a ``Stream`` over ``source`` to its end and return the report (options: ``Stream``)."""
    return Stream(source, **options).run()


def _make_denoiser(denoise: Any, threads: int | None) -> Callable[..., np.ndarray] | None:
    if denoise is None or callable(denoise):
        return denoise
    from edge_ae.denoise.denoiser import Denoiser

    return Denoiser(denoise, threads=threads)


def _make_detector(anomaly: Any, threads: int | None) -> Any:
    if anomaly is None or callable(anomaly):
        return anomaly
    from edge_ae.anomaly.detector import AnomalyDetector  # the anomaly runtime, only when used

    return AnomalyDetector(anomaly, threads=threads)
