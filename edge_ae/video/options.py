"""The option objects of a live run (``Stream`` / ``edge_ae.stream``), grouped by what they
govern and checked once, when made: where frames come from (``CaptureOptions``), what happens to
each frame besides denoising (``FrameOptions``; the denoising itself is a ``DenoiseOptions``),
where results go (``OutputOptions``), when the run ends (``Limits``) and how it reports and
stops (``ControlOptions``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_ae.files.imageio import DEFAULT_MAX_PIXELS
from edge_ae.video.capture import DEFAULT_BACKOFF, Backoff, Notice
from edge_ae.video.sinks import Sink
from edge_ae.video.stats import StreamReport
from edge_ae.video.temporal import TemporalFilter


def _positive(name: str, value: float | None, *, whole: bool = False) -> None:
    if value is None:
        return
    kind = "whole number" if whole else "number"
    ok = not isinstance(value, bool) and isinstance(value, int if whole else (int, float)) and \
        math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(f"{name} must be a positive {kind} or None, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class CaptureOptions:
    """Where frames come from. ``size`` (width, height) is asked of a camera; ``max_pixels``
    bounds a folder's images; ``drop`` overrides latest-frame-wins (default: on for live
    sources); a live source lost mid-run is reopened with ``backoff`` for up to
    ``reconnect_for`` seconds (None: for ever)."""

    size: tuple[int, int] | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    drop: bool | None = None
    backoff: Backoff = DEFAULT_BACKOFF
    reconnect_for: float | None = 60.0

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in self.size)):
            raise ValueError(f"size must be (width, height) in whole pixels, got {self.size!r}")
        _positive("max_pixels", self.max_pixels, whole=True)
        if self.reconnect_for is not None and not (isinstance(self.reconnect_for, (int, float))
                                                   and self.reconnect_for >= 0):
            raise ValueError(f"reconnect_for must be seconds >= 0 or None (for ever), got {self.reconnect_for!r}")


@dataclass(frozen=True, kw_only=True)
class FrameOptions:
    """Per-frame work besides denoising: the learned noise level is re-estimated every
    ``estimate_every`` frames; ``temporal`` (True or a ``TemporalFilter``; for fixed cameras)
    blends with the previous output where the scene has not changed; ``overlay``
    (``f(frame, result) -> BGR uint8``; default ``edge_ae.anomaly.detector.draw_overlay``) draws
    the anomaly result on the view."""

    estimate_every: int = 8
    temporal: bool | TemporalFilter = False
    overlay: Callable[[np.ndarray, Any], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.estimate_every, bool) or not isinstance(self.estimate_every, int) or self.estimate_every < 1:
            raise ValueError(f"estimate_every must be a whole number >= 1, got {self.estimate_every!r}")


@dataclass(frozen=True, kw_only=True)
class OutputOptions:
    """Where results go, each optional: ``record`` (video path; ``record_fps`` overrides its
    frame rate), ``frames`` (folder of numbered images), ``events`` (JSON-lines log; flagged
    frames and their heatmaps go next to it), ``show`` (a window), ``sinks`` (more objects with
    write/close: the ``Sink`` protocol)."""

    record: str | Path | None = None
    record_fps: float | None = None
    frames: str | Path | None = None
    events: str | Path | None = None
    show: bool = False
    sinks: Sequence[Sink] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _positive("record_fps", self.record_fps)
        bad = [type(s).__name__ for s in self.sinks if not isinstance(s, Sink)]
        if bad:
            raise TypeError(f"sinks need write(frame) and close() methods; {', '.join(bad)} lacks them")
        object.__setattr__(self, "sinks", tuple(self.sinks))


@dataclass(frozen=True, kw_only=True)
class Limits:
    """When the run ends besides the source's end or ``stop()``: ``max_fps`` caps processing (a
    live source drops the frames in between; a file is slowed down), ``max_frames`` and
    ``duration`` (seconds)."""

    max_fps: float | None = None
    max_frames: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        _positive("max_fps", self.max_fps)
        _positive("max_frames", self.max_frames, whole=True)
        _positive("duration", self.duration)


@dataclass(frozen=True, kw_only=True)
class ControlOptions:
    """How the run reports and stops: ``on_notice`` (source lost, reopened, a frame skipped) and
    ``on_progress`` (a running report every ``progress_every`` seconds) are called from the run's
    thread; with ``handle_signals``, SIGINT and SIGTERM end the run between two frames."""

    handle_signals: bool = True
    on_notice: Callable[[Notice], None] | None = None
    on_progress: Callable[[StreamReport], None] | None = None
    progress_every: float = 1.0

    def __post_init__(self) -> None:
        _positive("progress_every", self.progress_every)
