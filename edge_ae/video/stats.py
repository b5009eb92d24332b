"""What a live run measures: latencies in constant memory, frame counts, and the report built
from them. Kept apart from the loop so the numbers have one owner."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


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
        upper = float(np.searchsorted(np.cumsum(self.counts), max(rank, 1)) + 1)  # the bin's upper edge, ms
        # Never above the largest latency seen: "p95 12 ms, max 11 ms" reads as a bug.
        return min(upper, self.max)

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


@dataclass
class RunStats:
    """Counters of one run, filled in by the loop, frozen into a ``StreamReport`` at the end."""

    processed: int = 0
    skipped: int = 0  # frames read but refused by a model (a NaN frame, a strip too thin to score)
    anomalies: int = 0
    work_s: float = 0.0
    t0: float = 0.0
    t_end: float | None = None
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def frame_done(self, *, started: float, captured: float, anomalous: bool) -> None:
        done = time.monotonic()
        self.work_s += done - started
        self.latency.add(done - captured)
        self.processed += 1
        self.anomalies += anomalous

    def elapsed(self) -> float:
        end = self.t_end if self.t_end is not None else time.monotonic()
        return max(end - self.t0, 1e-9) if self.t0 else 0.0

    def report(self, *, source: str, reason: str, captured: int, dropped: int, reconnects: int, capture_skipped: int,
               failed: str | None, outputs: dict[str, str]) -> StreamReport:
        elapsed = self.elapsed()
        return StreamReport(
            source=source,
            stop_reason=reason,
            frames_captured=captured,
            frames_processed=self.processed,
            frames_dropped=dropped,
            elapsed_s=round(elapsed, 3),
            fps=round(self.processed / elapsed, 2) if elapsed else 0.0,
            capture_fps=round(captured / elapsed, 2) if elapsed else 0.0,
            latency_ms=self.latency.summary(),
            work_ms=round(1000.0 * self.work_s / self.processed, 1) if self.processed else 0.0,
            reconnects=reconnects,
            anomalies=self.anomalies,
            failed=failed,
            outputs=outputs,
            frames_skipped=capture_skipped + self.skipped,
        )
