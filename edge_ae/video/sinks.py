"""Where processed frames go. Every sink has ``write(frame)`` and ``close()``; the stream calls
them from one thread only.

* ``VideoSink``: a video file, recorded as ``NAME.recording.mkv`` (playable after a kill) and
  put in place on ``close()`` once every frame is known to be on disk;
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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from edge_ae.errors import EdgeAEError, ImageError
from edge_ae.files.imageio import write_image
from edge_ae.image import to_bgr8
from edge_ae.video.recording import RECORDING_SUFFIX, RemuxError, count_packets, recording_path, remux

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

    Frames go to ``out.recording.mkv`` as they come (``edge_ae.video.recording``): a run killed
    outright (kill -9, a power cut) leaves it playable up to its last second or so. A clean stop
    counts the frames that reached the disk (the writer itself reports no full disk) and copies
    them, without re-encoding, into ``out.mp4``; only then is the video in place (``saved``). If
    frames are missing, or the copy cannot be written, ``close`` raises ``SinkError`` naming the
    path and the recording is kept. A recording left by a killed run is renamed
    ``out.interrupted-DATE-TIME.mkv`` before a new one starts (``recovered``), never overwritten.

    The writer opens on the first frame (its size fixes the video's); later frames of another
    size (a camera reconnected at another resolution) are resized to it. ``fps`` may be set
    until then. With ``realtime`` (live sources) each frame is held until the next one arrives,
    so the video plays at the speed things happened however slow the processing; gaps longer
    than ``max_gap`` seconds (a camera away) are shortened to that."""

    # Stop recording when the disk has less than this free: the writer would lose frames silently.
    MIN_FREE_BYTES = 1 << 20
    CHECK_EVERY = 25  # frames between two looks at the free space

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
        self.recovered = _keep_interrupted(self.recording)
        _check_writable(self.recording)  # a read-only folder is named now, not blamed on the codec
        self.frames = 0  # frames written to the file, repeats included
        self.saved = False  # the video is in place, every frame in it
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
        writer = cv2.VideoWriter(str(self.recording), cv2.VideoWriter.fourcc(*self.fourcc), float(self.fps), self._size)
        if not writer.isOpened():
            writer.release()
            self.recording.unlink(missing_ok=True)
            raise SinkError(f"{self.path}: this OpenCV build cannot write {self.fourcc} video")
        self._writer = writer

    @property
    def fourcc(self) -> str:
        return FOURCC[self.path.suffix.lower()]

    def _put(self, view: np.ndarray) -> None:
        assert self._writer is not None
        if self.frames % self.CHECK_EVERY == 0 and _free_bytes(self.recording.parent) < self.MIN_FREE_BYTES:
            raise SinkError(f"{self.path}: the disk is full; recording stopped after {self.frames} frames")
        self._writer.write(view)
        self.frames += 1

    def close(self) -> None:
        """Finalise the recording and put the video in place; nothing is left if no frame came.
        Raises ``SinkError`` (the recording kept, and named) if not every frame could be saved."""
        if self._writer is None:
            return
        if self._held is not None:
            self._put(self._held)
            self._held = None
        writer, self._writer = self._writer, None
        writer.release()
        found = count_packets(self.recording)
        if found < self.frames:
            raise SinkError(f"{self.path}: not saved: only {found} of {self.frames} frames reached the disk (full?); "
                            f"what was written is in {self.recording}")
        try:
            if self.path.suffix.lower() == ".mkv":
                os.replace(self.recording, self.path)
            else:
                self._convert()
        except (OSError, RemuxError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SinkError(f"{self.path}: not saved: cannot write it ({why}; disk full?); the recording is "
                            f"kept in {self.recording}") from None
        self.saved = True

    def _convert(self) -> None:
        """The recording's frames, copied into the container asked for, then moved into place."""
        assert self.fps is not None and self._size is not None
        tmp = self.path.with_name(f".{self.path.stem}.converting{self.path.suffix}")  # the suffix picks the container
        tmp.unlink(missing_ok=True)
        try:
            remux(self.recording, tmp, fourcc=self.fourcc, fps=float(self.fps), size=self._size)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.recording.unlink()


def _check_writable(path: Path) -> None:
    try:
        with open(path, "xb"):
            pass
        path.unlink()
    except OSError as exc:
        raise SinkError(f"{path.parent}: cannot write the recording there ({exc.strerror or exc})") from None


def _keep_interrupted(recording: Path) -> Path | None:
    """A recording a killed run left: renamed after its last write, so a new run never replaces it."""
    if not recording.exists():
        return None
    if recording.stat().st_size == 0:  # killed before its first frame reached the disk
        recording.unlink(missing_ok=True)
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(recording.stat().st_mtime))
    base = recording.name[: -len(RECORDING_SUFFIX)]
    for n in range(1, 1000):
        kept = recording.with_name(f"{base}.interrupted-{stamp}{'' if n == 1 else f'-{n}'}.mkv")
        if not kept.exists():
            try:
                os.replace(recording, kept)
            except OSError as exc:
                raise SinkError(f"{recording}: an interrupted recording that cannot be moved aside "
                                f"({exc.strerror or exc}); move it yourself") from None
            return kept
    raise SinkError(f"{recording}: an interrupted recording is in the way; move it aside")


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62  # cannot tell: the count at the end still catches lost frames


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
