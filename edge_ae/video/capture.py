"""Capture in its own thread, so a slow model never stalls the camera.

* ``Mailbox``: the hand-over between the capture thread and the worker. With ``drop=True``
  (live sources) it holds one frame and a new frame replaces an unread one - latest frame
  wins, so latency stays one frame of processing instead of growing without bound. With
  ``drop=False`` (files, folders) the capture thread waits, so no frame is lost.
* ``Capture``: reads a source into a mailbox; a live source that vanishes is reopened with
  exponential back-off until ``reconnect_for`` seconds have passed. What happens is reported
  as ``Notice`` objects the worker thread collects (the capture thread never touches sinks).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge_ae.video.sources import FrameSkipped, Source, SourceError, SourceLost


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source, counting frames dropped before processing
    image: np.ndarray
    captured: float  # time.monotonic() when the source delivered it
    wall_time: float  # time.time() at the same moment, for logs
    name: str = ""  # the file it came from, for a folder source


@dataclass(frozen=True)
class Notice:
    """Something the capture thread wants reported: ``kind`` is "lost", "reconnected",
    "retry", "gave_up", "skipped" (an unreadable frame, the source goes on) or "error"."""

    kind: str
    message: str
    wall_time: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: ``initial``, doubling up to ``maximum``."""

    initial: float = 0.5
    maximum: float = 8.0
    factor: float = 2.0

    def delays(self):  # an endless generator of floats
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


DEFAULT_BACKOFF = Backoff()


class Mailbox:
    """A one-slot hand-over; see the module docstring for ``drop``."""

    def __init__(self, *, drop: bool) -> None:
        self.drop = drop
        self.dropped = 0
        self._item: Frame | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: Frame, *, stop: threading.Event) -> None:
        with self._cond:
            if self.drop:
                if self._item is not None:
                    self.dropped += 1
            else:
                while self._item is not None and not stop.is_set():
                    self._cond.wait(0.05)
            self._item = item
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The waiting frame, or None after ``timeout`` seconds (or once closed and empty)."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            self._cond.notify_all()
        if item is not None and not self.drop:
            # A file is read ahead of need: its latency counts from when work on the frame starts.
            item = replace(item, captured=time.monotonic())
        return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed and self._item is None


class Capture:
    """Runs ``source`` in a daemon thread. ``start()`` opens the source in the caller's thread
    first, so a camera that cannot be opened at all is an immediate ``SourceError``."""

    def __init__(self, source: Source, *, drop: bool | None = None, backoff: Backoff = DEFAULT_BACKOFF,
                 reconnect_for: float | None = 60.0) -> None:
        self.source = source
        self.mailbox = Mailbox(drop=source.live if drop is None else drop)
        self.backoff = backoff
        self.reconnect_for = reconnect_for  # None: keep trying for ever
        self.captured = 0
        self.skipped = 0  # frames the source could not read and went past
        self.reconnects = 0
        self.failed: str | None = None  # why capture ended early, if it did
        self._notices: deque[Notice] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-ae-capture", daemon=True)

    def start(self) -> None:
        self.source.open()
        self._thread.start()

    def stop(self, *, timeout: float = 2.0) -> bool:
        """Ask the thread to end; True if it did within ``timeout`` (a read blocked in a driver
        may not return; the thread is a daemon, so it cannot keep the process alive)."""
        self._stop.set()
        self.mailbox.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def notices(self) -> list[Notice]:
        out = []
        while self._notices:
            out.append(self._notices.popleft())
        return out

    def _notify(self, kind: str, message: str, **details: Any) -> None:
        self._notices.append(Notice(kind, message, details=details))

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    image = self.source.read()
                except FrameSkipped as exc:
                    self.skipped += 1
                    self._notify("skipped", f"{exc} (frame skipped)")
                    continue
                except SourceLost as exc:
                    if not self._reconnect(str(exc)):
                        return
                    continue
                if image is None:
                    return  # end of file or folder
                now = time.monotonic()
                frame = Frame(index=self.captured, image=image, captured=now, wall_time=time.time(),
                              name=getattr(self.source, "current", ""))
                self.captured += 1
                self.mailbox.put(frame, stop=self._stop)
        except SourceError as exc:
            self.failed = str(exc)
            self._notify("error", str(exc))
        except Exception as exc:  # a driver bug must end the stream with a reason, not a silent thread
            self.failed = f"{self.source.description}: capture failed ({type(exc).__name__}: {exc})"
            self._notify("error", self.failed)
        finally:
            self.source.close()
            self.mailbox.close()

    def _reconnect(self, reason: str) -> bool:
        """Reopen a lost live source with back-off; False when giving up or stopping."""
        lost_at = time.monotonic()
        self._notify("lost", reason)
        self.source.close()
        for attempt, delay in enumerate(self.backoff.delays(), start=1):
            waited = time.monotonic() - lost_at
            if self.reconnect_for is not None and waited + delay > self.reconnect_for:
                self.failed = f"{self.source.description}: lost, gave up after {attempt - 1} attempts in {waited:.1f} s"
                self._notify("gave_up", self.failed, attempts=attempt - 1, down_s=round(waited, 3))
                return False
            if self._stop.wait(delay):
                return False
            try:
                self.source.open()
            except SourceError as exc:
                self._notify("retry", f"attempt {attempt} failed ({exc}); next in up to "
                             f"{min(delay * self.backoff.factor, self.backoff.maximum):g} s", attempt=attempt)
                continue
            down = time.monotonic() - lost_at
            self.reconnects += 1
            self._notify("reconnected", f"{self.source.description}: back after {down:.1f} s ({attempt} attempts)",
                         attempts=attempt, down_s=round(down, 3))
            return True
        return False  # unreachable: delays() is endless
