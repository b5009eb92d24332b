"""Where processed frames go. Every sink has ``write(frame)`` and ``close()``; the stream calls
them from one thread only.

* ``VideoSink``: a video file, written to a hidden partial file and renamed into place on
  ``close()``, so the path given never holds an unfinished (unplayable) video;
* ``ImageSequenceSink``: one numbered image per frame;
* ``WindowSink``: an OpenCV window, only where a display and a GUI-enabled OpenCV exist;
* ``EventLog``: JSON lines (one object per event, flushed at once) plus, for flagged frames,
  the frame and its heatmap overlay as images.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from edge_ae.errors import EdgeAEError, ImageError
from edge_ae.files.imageio import write_image
from edge_ae.image import to_bgr8

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


class SinkError(EdgeAEError):
    """An output that cannot be created or written."""


@dataclass(frozen=True)
class Output:
    """One processed frame as the sinks see it."""

    index: int
    wall_time: float
    image: np.ndarray  # the processed frame (denoised / temporally filtered), source dtype
    view: np.ndarray  # what to look at: ``image`` as 8-bit BGR, with the anomaly overlay if any
    anomaly: Any = None  # an AnomalyResult, or None when no detector runs
    raw: np.ndarray | None = None  # the frame as captured, before any processing (for before/after views)


@runtime_checkable
class Sink(Protocol):
    """Anything a ``Stream`` hands processed frames to: ``write`` each frame, ``close`` once at
    the end (raising ``SinkError`` if the output could not be finished)."""

    def write(self, frame: Output) -> None: ...

    def close(self) -> None: ...


class VideoSink:
    """``--record out.mp4``: .mp4/.m4v/.mov (MPEG-4 part 2), .avi (Motion JPEG) or .mkv (Xvid).

    The writer opens on the first frame (its size fixes the video's); later frames of another
    size (a camera reconnected at another resolution) are resized to it. ``fps`` may be set
    until then. With ``realtime`` (live sources) each frame is held until the next one arrives,
    so the video plays at the speed things happened however slow the processing; gaps longer
    than ``max_gap`` seconds (a camera away) are shortened to that."""

    def __init__(self, path: str | Path, *, fps: float | None = None, realtime: bool = False, max_gap: float = 2.0) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise SinkError(f"{self.path}: video must end in {', '.join(FOURCC)}")
        if fps is not None and not fps > 0:
            raise SinkError(f"{self.path}: frame rate must be positive, got {fps}")
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: folder {self.path.parent} does not exist")
        self.fps = fps
        self.realtime = realtime
        self.max_gap = max_gap
        self.partial = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.frames = 0  # frames written to the file, repeats included
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._held: np.ndarray | None = None
        self._t0 = 0.0

    def write(self, frame: Output) -> None:
        view = frame.view
        if self._writer is None:
            self._open(view)
            self._t0 = frame.wall_time
        if (view.shape[1], view.shape[0]) != self._size:
            view = cv2.resize(view, self._size, interpolation=cv2.INTER_AREA)
        if not self.realtime:
            self._put(view)
            return
        fps = self.fps
        assert fps is not None  # _open refused a sink without one
        slot = int((frame.wall_time - self._t0) * fps)  # where this frame starts on the timeline
        if self._held is not None:
            repeats = slot - self.frames
            longest = max(1, int(self.max_gap * fps))
            if repeats > longest:
                self._t0 += (repeats - longest) / fps  # shorten the gap, keep later frames aligned
                repeats = longest
            for _ in range(repeats):  # 0 when frames come faster than fps: the held one is skipped
                self._put(self._held)
        self._held = view

    def _open(self, view: np.ndarray) -> None:
        if self.fps is None:
            raise SinkError(f"{self.path}: no frame rate set")
        self._size = (view.shape[1], view.shape[0])
        writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter.fourcc(*FOURCC[self.path.suffix.lower()]),
                                 float(self.fps), self._size)
        if not writer.isOpened():
            writer.release()
            self.partial.unlink(missing_ok=True)
            raise SinkError(f"{self.path}: this OpenCV build cannot write {self.path.suffix} video")
        self._writer = writer

    def _put(self, view: np.ndarray) -> None:
        assert self._writer is not None
        self._writer.write(view)
        self.frames += 1

    def close(self) -> None:
        """Finalise the container and move it into place; nothing is left if no frame came."""
        if self._writer is None:
            return
        if self._held is not None:
            self._put(self._held)
            self._held = None
        writer, self._writer = self._writer, None
        writer.release()
        try:
            os.replace(self.partial, self.path)
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot finalise ({exc.strerror or exc})") from None


class ImageSequenceSink:
    """``--frames DIR``: ``frame_000000.png`` ... (PNG keeps 16-bit frames, float frames go to
    TIFF; pass ``suffix=".jpg"`` for small 8-bit files)."""

    def __init__(self, folder: str | Path, *, suffix: str = ".png", use_view: bool = False) -> None:
        self.folder = Path(folder)
        self.suffix = suffix
        self.use_view = use_view
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"{self.folder}: cannot create folder ({exc.strerror or exc})") from None

    def write(self, frame: Output) -> None:
        image = frame.view if self.use_view else frame.image
        # PNG has no float pixels: float frames (from float TIFF inputs) stay lossless as TIFF.
        suffix = ".tif" if image.dtype == np.float32 and self.suffix == ".png" else self.suffix
        try:
            write_image(self.folder / f"frame_{frame.index:06d}{suffix}", image)
        except (ImageError, OSError) as exc:
            raise SinkError(str(exc)) from None

    def close(self) -> None:
        pass


def display_available() -> str | None:
    """None if a window can be shown here, else why not."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set; run on the desktop, or use --record/--frames instead)"
    return None


class WindowSink:
    """``--show``: a live window; closing it or pressing q / Esc ends the stream."""

    def __init__(self, title: str = "edge-ae") -> None:
        why = display_available()
        if why:
            raise SinkError(f"--show: {why}")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SinkError("--show: this OpenCV has no GUI support (opencv-python-headless); "
                            "pip install opencv-python, or use --record/--frames") from None
        self.closed_by_user = False

    def write(self, frame: Output) -> None:
        cv2.imshow(self.title, frame.view)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.closed_by_user = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


class EventLog:
    """``--events events.jsonl``: one JSON object per line, appended and flushed at once so a
    crash keeps every line written. Flagged frames are saved (the frame and its heatmap overlay)
    into ``snapshots``, at most one pair every ``snapshot_interval`` seconds so that an anomaly
    that stays in view does not fill the disk."""

    def __init__(self, path: str | Path, *, snapshots: str | Path | None = None, snapshot_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.snapshots = Path(snapshots) if snapshots is not None else self.path.with_name(self.path.stem + "_frames")
        self.snapshot_interval = snapshot_interval
        self.flagged = 0
        self._last_snapshot = -float("inf")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot open for writing ({exc.strerror or exc})") from None

    def log(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": fields.pop("time", time.time()), **fields}
        self._file.write(json.dumps(record, default=_plain) + "\n")
        self._file.flush()

    def write(self, frame: Output) -> None:
        result = frame.anomaly
        if result is None or not bool(result.is_anomaly):
            return
        self.flagged += 1
        fields: dict[str, Any] = {"frame": frame.index, "score": float(result.score),
                                  "normalized_score": float(result.normalized_score)}
        now = time.monotonic()
        if now - self._last_snapshot >= self.snapshot_interval:
            self._last_snapshot = now
            image_path = self.snapshots / f"frame_{frame.index:06d}.jpg"
            heatmap_path = self.snapshots / f"frame_{frame.index:06d}_heatmap.jpg"
            try:
                write_image(image_path, to_bgr8(frame.image))
                write_image(heatmap_path, frame.view)
            except (ImageError, OSError) as exc:
                raise SinkError(str(exc)) from None
            fields.update(image=str(image_path), heatmap=str(heatmap_path))
        self.log("anomaly", time=frame.wall_time, **fields)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and paths in event fields."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
