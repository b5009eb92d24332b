"""Where frames come from, behind one interface: ``open()``, ``read()`` -> frame or None at
the end, ``close()``; iterating a source yields its frames.

* ``VideoSource``: OpenCV ``VideoCapture`` - a camera index, a video file, an RTSP/HTTP URL;
* ``PicameraSource``: a Raspberry Pi ribbon camera through ``picamera2`` (not reachable
  through OpenCV), imported only when such a source is opened;
* ``FolderSource``: the images of a folder, in natural order (frame2 before frame10).

A *live* source (camera, URL) has frames that go stale and can vanish mid-run: ``read()``
raises ``SourceLost`` and the caller may ``open()`` it again. A file or folder simply ends.
Frames are BGR (or gray) numpy arrays under the image contract of ``edge_ae.image``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_ae.errors import EdgeAEError
from edge_ae.files.batch import failure_message
from edge_ae.files.imageio import DEFAULT_MAX_PIXELS, READ_SUFFIXES, read_image

PICAMERA = "picamera2"
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(EdgeAEError):
    """A source that cannot be opened or read (no such camera, file or folder)."""


class SourceLost(SourceError):
    """A live source stopped delivering frames; it may come back after ``open()``."""


class FrameSkipped(SourceError):
    """One frame could not be read (a corrupt file in a folder); the source goes on with the next."""


class Source:
    """Base class. Subclasses set ``live``, ``description`` and ``fps`` (None when unknown)."""

    live: bool = False
    description: str = "source"
    fps: float | None = None

    def open(self) -> None:
        """Open (or reopen) the source; SourceError if it cannot be opened."""
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        """The next frame (runtime image contract), or None at the end of a file or folder; SourceLost when a
        live source goes away."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
        pass

    def __iter__(self) -> Iterator[np.ndarray]:
        self.open()
        try:
            while (frame := self.read()) is not None:
                yield frame
        finally:
            self.close()


class VideoSource(Source):
    """A camera index, video file or stream URL through ``cv2.VideoCapture``.

    ``capture_factory`` builds the capture object (tests pass a fake); it is called again on
    every ``open()``, which is how a lost camera is reconnected."""

    def __init__(self, target: int | str, *, live: bool | None = None, size: tuple[int, int] | None = None,
                 capture_factory: Callable[..., Any] = cv2.VideoCapture) -> None:
        self.target = target
        self.size = size  # (width, height) to ask a camera for; files keep their own
        self.live = isinstance(target, int) if live is None else live
        self.description = f"camera {target}" if isinstance(target, int) else str(target)
        self._factory = capture_factory
        self._cap: Any = None

    def open(self) -> None:
        """Open the camera or video through OpenCV (reopening closes the old handle first)."""
        self.close()
        cap = self._factory(self.target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.description}: cannot open" + (" (no such camera, or it is busy)"
                                                                   if isinstance(self.target, int) else ""))
        if self.size is not None and self.live:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])  # a request: the driver picks the nearest mode
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None
        self._cap = cap

    def read(self) -> np.ndarray | None:
        """The next decoded frame; None at the end of a file, SourceLost when a camera stops delivering."""
        if self._cap is None:
            raise SourceError(f"{self.description}: read before open")
        ok, frame = self._cap.read()
        if ok and frame is not None and frame.size:
            return frame
        if self.live:
            raise SourceLost(f"{self.description}: no frame (disconnected?)")
        return None  # end of file

    def close(self) -> None:
        """Release OpenCV's capture."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PicameraSource(Source):
    """A Raspberry Pi camera through ``picamera2`` (``pip install edge-ae[picamera]``, or apt's
    ``python3-picamera2`` on Raspberry Pi OS)."""

    live = True

    def __init__(self, *, size: tuple[int, int] = (640, 480), camera: int = 0) -> None:
        self.size = size
        self.camera = camera
        self.description = f"picamera2 camera {camera}"
        self._cam: Any = None

    def open(self) -> None:
        """Start the Raspberry Pi camera through picamera2 (a clear SourceError without it)."""
        self.close()
        try:
            from picamera2 import Picamera2  # optional extra; only a Pi has it
        except ImportError:
            raise SourceError(
                "picamera2 is not installed: on Raspberry Pi OS `sudo apt install python3-picamera2` and use "
                "a venv made with --system-site-packages (see docs/RASPBERRY_PI.md)"
            ) from None
        try:
            cam = Picamera2(self.camera)
            # "RGB888" is picamera2's name for 24-bit pixels stored B, G, R: OpenCV's order.
            main = {"format": "RGB888", "size": tuple(self.size)}
            make = getattr(cam, "create_video_configuration", None)
            cam.configure(make(main=main) if make else {"main": main})
            cam.start()
        except Exception as exc:  # picamera2/libcamera raise many types; all mean "no camera"
            raise SourceError(f"{self.description}: cannot open ({exc})") from None
        self._cam = cam

    def read(self) -> np.ndarray | None:
        """The next frame from picamera2 (a fourth padding byte dropped); SourceLost if capture fails."""
        if self._cam is None:
            raise SourceError(f"{self.description}: read before open")
        try:
            frame = np.asarray(self._cam.capture_array())
        except Exception as exc:
            raise SourceLost(f"{self.description}: capture failed ({exc})") from None
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = frame[:, :, :3]  # XRGB8888 layouts carry an unused fourth byte
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        """Stop and close the camera."""
        cam, self._cam = self._cam, None
        if cam is not None:
            for step in ("stop", "close"):
                try:
                    getattr(cam, step)()
                except Exception:  # closing a camera that already failed
                    pass


def natural_key(path: Path) -> list[object]:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class FolderSource(Source):
    """The image files of a folder (not recursive), in natural order."""

    def __init__(self, folder: str | Path, *, fps: float | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.folder = Path(folder)
        self.description = f"folder {self.folder}"
        self.fps = fps
        self.max_pixels = max_pixels
        self.current = ""  # the file of the frame read last
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> None:
        """List the folder's images in natural order (frame2 before frame10); SourceError if there are none."""
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self._files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in READ_SUFFIXES and p.is_file()),
                             key=natural_key)
        if not self._files:
            raise SourceError(f"{self.folder}: no images ({', '.join(READ_SUFFIXES)})")
        self._next = 0

    def read(self) -> np.ndarray | None:
        """The next readable image; an unreadable one raises FrameSkipped (named, counted), None at the end."""
        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        self._next += 1
        self.current = str(path)
        try:
            return read_image(path, max_pixels=self.max_pixels)
        except Exception as exc:  # one bad file is skipped and named; the folder goes on
            raise FrameSkipped(failure_message(path, exc)) from None


def open_source(spec: str | int | Path | Source, *, size: tuple[int, int] | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Source:
    """A source from what a user types: ``0`` (camera index), ``picamera2``, a URL, a folder or
    a video file. ``size`` (width, height) is asked of cameras; ``max_pixels`` bounds a folder's
    images. Nothing is opened yet; the caller calls ``open()``."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, int):
        return VideoSource(spec, size=size)
    text = str(spec).strip()
    if not text:  # Path("") is the current folder: never a source by accident
        raise SourceError("the source is empty: give a camera index, 'picamera2', a URL, a video file or a folder")
    if text.isdigit():
        return VideoSource(int(text), size=size)
    if text.lower() == PICAMERA:
        return PicameraSource(size=size or (640, 480))
    if text.lower().startswith(URL_SCHEMES):
        return VideoSource(text, live=True)
    path = Path(text)
    if path.is_dir():
        return FolderSource(path, max_pixels=max_pixels)
    if path.is_file():
        return VideoSource(str(path), live=False)
    if text.startswith("/dev/video"):
        return VideoSource(text, live=True, size=size)
    raise SourceError(f"{text}: not a camera index, 'picamera2', URL, folder or existing video file")
