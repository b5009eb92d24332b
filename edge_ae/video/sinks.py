"""Where processed frames go. Every sink has ``write(frame)`` and ``close()``; the stream calls
them from one thread only.

* ``VideoSink``: a video file, recorded in short segments (``NAME.recording/``, all but the
  last playable after a kill) and put in place on ``close()`` once every frame is on disk;
* ``ImageSequenceSink``: one numbered image per frame;
* ``WindowSink``: an OpenCV window, only where a display and a GUI-enabled OpenCV exist;
* ``EventLog``: JSON lines (one object per event, flushed at once) plus, for flagged frames,
  the frame and its heatmap overlay as images.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from edge_ae.errors import EdgeAEError, ImageError
from edge_ae.files.imageio import write_image
from edge_ae.image import to_bgr8
from edge_ae.video.recording import RemuxError, Segments, join, probe, recording_path, segments_of

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

    def write(self, frame: Output) -> None:
        """Take one processed frame (in order, from the stream's thread)."""

    def close(self) -> None:
        """Finish the output; SinkError if it could not be finished."""


class VideoSink:
    """``--record out.mp4``: .mp4/.m4v/.mov (MPEG-4 part 2), .avi (Motion JPEG) or .mkv (Xvid).

    Frames go to ``out.mp4.recording/`` in segments of ``SEGMENT_SECONDS``, each closed (on
    disk, playable) before the next starts (``edge_ae.video.recording``): a run killed outright
    (kill -9, a power cut) loses the segment in progress only. Each closed segment's frames are
    counted on disk (the writer itself reports no full disk): if some are missing the recording
    stops with ``SinkError``. A clean stop copies the segments, without re-encoding, into
    ``out.mp4``; only then is the video in place (``saved``). If that cannot be written, ``close``
    raises ``SinkError`` naming the path and the segments are kept. The segments a killed run left
    are joined into ``out.interrupted-DATE-TIME.mp4`` before a new recording starts
    (``recovered``), never overwritten.

    The writer opens on the first frame (its size fixes the video's); later frames of another
    size (a camera reconnected at another resolution) are resized to it. ``fps`` may be set
    until then. With ``realtime`` (live sources) each frame is held until the next one arrives,
    so the video plays at the speed things happened however slow the processing; gaps longer
    than ``max_gap`` seconds (a camera away) are shortened to that."""

    SEGMENT_SECONDS = 2.0  # of video: at most this much is lost to a kill

    def __init__(self, path: str | Path, *, fps: float | None = None, realtime: bool = False, max_gap: float = 2.0) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise SinkError(f"{self.path}: video must end in {', '.join(FOURCC)}")
        if fps is not None and not fps > 0:
            raise SinkError(f"{self.path}: frame rate must be positive, got {fps}")
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise SinkError(f"{self.path}: {folder} is a file, not a folder")
        if not folder.is_dir():
            raise SinkError(f"{self.path}: folder {folder} does not exist")
        self.fps = fps
        self.realtime = realtime
        self.max_gap = max_gap
        self.recording = recording_path(self.path)
        _check_writable(folder)  # a read-only folder is named now, not blamed on the codec
        self.recovered = self._keep_interrupted()
        self.frames = 0  # frames written to the file, repeats included
        self.saved = False  # the video is in place, every frame in it
        self._segments: Segments | None = None
        self._stopped = False  # a write failed: the recording ended there
        self._size: tuple[int, int] | None = None
        self._held: np.ndarray | None = None
        self._t0 = 0.0

    @property
    def fourcc(self) -> str:
        """The codec the file's suffix asks for (four characters)."""
        return FOURCC[self.path.suffix.lower()]

    def write(self, frame: Output) -> None:
        """Add the frame's view to the recording (the first frame fixes the size)."""
        view = frame.view
        if self._segments is None:
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
        try:
            self._segments = Segments(self.recording, fourcc=self.fourcc, fps=float(self.fps), size=self._size,
                                      frames_per_segment=round(self.fps * self.SEGMENT_SECONDS))
            self._segments.start()  # a codec this OpenCV cannot write is refused here, and said so
        except (OSError, RemuxError) as exc:
            raise SinkError(f"{self.path}: {exc}") from None

    def _put(self, view: np.ndarray) -> None:
        assert self._segments is not None
        try:
            self._segments.put(view)
        except (OSError, RemuxError) as exc:
            self._stopped = True  # close() then keeps the segments as they are: no video from them
            raise SinkError(f"{self.path}: recording stopped after {self.frames} frames: {exc} (disk full?); what "
                            f"was written is in {self.recording}") from None
        self.frames += 1

    def close(self) -> None:
        """Finalise the recording and put the video in place; nothing is left if no frame came.
        Raises ``SinkError`` (the segments kept, and named) if not every frame could be saved."""
        if self._segments is None:
            return
        segments, self._segments = self._segments, None
        if self._stopped:  # the error was raised when it happened; what was written stays where it said
            return
        try:
            if self._held is not None:
                segments.put(self._held)
                self.frames += 1
                self._held = None
            segments.close_segment()
        except (OSError, RemuxError) as exc:
            raise SinkError(f"{self.path}: not saved: {exc} (disk full?); what was written is in "
                            f"{self.recording}") from None
        assert self.fps is not None and self._size is not None
        tmp = self.path.with_name(f".{self.path.stem}.joining{self.path.suffix}")  # the suffix picks the container
        try:
            join(segments_of(self.recording), tmp, fourcc=self.fourcc, fps=float(self.fps), size=self._size)
            os.replace(tmp, self.path)
        except (OSError, RemuxError) as exc:
            tmp.unlink(missing_ok=True)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SinkError(f"{self.path}: not saved: cannot write it ({why}; disk full?); the recording is "
                            f"kept in {self.recording}") from None
        shutil.rmtree(self.recording, ignore_errors=True)
        self.saved = True

    def _keep_interrupted(self) -> Path | None:
        """The segments a killed run left, joined into ``out.interrupted-DATE-TIME.mp4`` (after
        their last write) so that a new recording never replaces them; None if there were none."""
        folder = self.recording
        if not folder.is_dir():
            return None
        segments = [p for p in segments_of(folder) if p.stat().st_size > 0]
        if not segments:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(p.stat().st_mtime for p in segments)))
        kept = next(k for n in range(1, 10**6) if not (k := self.path.with_name(
            f"{self.path.stem}.interrupted-{stamp}{'' if n == 1 else f'-{n}'}{self.path.suffix}")).exists())
        found = probe(segments[0])
        try:
            if found is None:
                raise RemuxError(f"cannot read {segments[0]}")
            join(segments, kept, fourcc=self.fourcc, fps=found[1], size=found[2])
        except (OSError, RemuxError):
            kept.unlink(missing_ok=True)
            kept = kept.with_name(kept.stem + ".segments")  # the segments themselves, each playable
            try:
                os.replace(folder, kept)
            except OSError as exc:
                raise SinkError(f"{folder}: an interrupted recording that cannot be moved aside "
                                f"({exc.strerror or exc}); move it yourself") from None
            return kept
        shutil.rmtree(folder, ignore_errors=True)
        return kept


def _check_writable(folder: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SinkError(f"{folder}: cannot write the recording there ({exc.strerror or exc})") from None


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
        """Write the frame as the next numbered file (atomically); SinkError if it cannot."""
        image = frame.view if self.use_view else frame.image
        # PNG has no float pixels: float frames (from float TIFF inputs) stay lossless as TIFF.
        suffix = ".tif" if image.dtype == np.float32 and self.suffix == ".png" else self.suffix
        try:
            write_image(self.folder / f"frame_{frame.index:06d}{suffix}", image)
        except (ImageError, OSError) as exc:
            raise SinkError(str(exc)) from None

    def close(self) -> None:
        """Nothing to finish: every frame is already a file."""
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
        """Show the frame's view; q, Esc or closing the window sets ``closed_by_user``."""
        cv2.imshow(self.title, frame.view)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.closed_by_user = True

    def close(self) -> None:
        """Close the window."""
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
        """Append one event (a JSON line, flushed at once)."""
        record = {"event": event, "time": fields.pop("time", time.time()), **fields}
        self._file.write(json.dumps(record, default=_plain) + "\n")
        self._file.flush()

    def write(self, frame: Output) -> None:
        """Log a flagged frame (and save it with its overlay, at most once per ``snapshot_interval``)."""
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
        """Close the log file."""
        if not self._file.closed:
            self._file.close()


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and paths in event fields."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
