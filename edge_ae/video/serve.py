"""``edge-ae camera --serve``: watch a running stream from a browser.

``ServeSink`` is a sink like the others: the stream hands it each processed frame. It keeps a
reference to the newest one and nothing else, so the camera loop never waits for a browser.
One encoder thread turns that frame into JPEG for the views someone is watching (before, after,
side by side) and into thumbnails of flagged frames; each client connection (``webserver``) sends
the newest JPEG of its view whenever there is one newer than the last it sent, so a slow client
skips frames instead of holding anything up.

    sink = ServeSink(ServeOptions(host="0.0.0.0", port=8080, token="..."))  # listens at once
    with Stream(0, denoise="denoise-color-fast", output=OutputOptions(sinks=[sink])) as s:
        sink.attach(s)   # live figures, and the strength / denoise controls of its pipeline
        s.run()          # the stream closes its sinks, the server with them, once its source has opened;
                         # if the source never opens (an error from run), call sink.close() yourself

Nothing here prints: ``ServeSink.warning`` says, for the caller to show, when the page is open to
anyone on the network.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge_ae.image import to_bgr8
from edge_ae.video.serve_options import LOOPBACK_NAMES, VIEWS, ServeOptions  # noqa: F401  (importable here too)
from edge_ae.video.sinks import Output, SinkError

if TYPE_CHECKING:
    from edge_ae.video.pipeline import FramePipeline
    from edge_ae.video.stream import Stream

@dataclass(frozen=True)
class Thumbnail:
    id: int  # the flagged-frame count when it was taken; its path is /flagged/<id>.jpg
    frame: int
    score: float | None
    wall_time: float
    jpeg: bytes


class FrameHub:
    """The newest frame, its JPEGs and the figures the page shows; shared by the camera loop
    (``put``), the encoder thread and the client threads, under one condition variable."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.cond = threading.Condition()
        self.closed = False
        self.seq = 0  # frames put
        self.index = -1  # the newest frame's index in the source
        self._latest: tuple[np.ndarray | None, np.ndarray] | None = None
        self._jpegs: dict[str, tuple[int, bytes]] = {}
        self._tried: dict[str, int] = {}  # the newest frame encoded (or found unencodable) per view
        self._wanted: Counter[str] = Counter()
        self._times: deque[float] = deque(maxlen=64)
        self.anomaly: dict[str, Any] | None = None
        self.flagged = 0
        self.thumbnails: deque[Thumbnail] = deque(maxlen=max(options.thumbnails, 1))
        self._thumb_due: tuple[np.ndarray, int, float | None, float, int] | None = None
        self._last_thumb = -float("inf")
        self.error: str | None = None  # the last frame the encoder could not draw, for the figures
        self.encoded = 0  # frames encoded (one per watched view)
        self.encode_cpu_s = 0.0  # the encoder thread's CPU time for them: what watching costs
        self._thread = threading.Thread(target=self._encode_loop, name="edge-ae-serve-encoder", daemon=True)
        self._thread.start()

    # -- camera loop ------------------------------------------------------------------------

    def put(self, frame: Output) -> None:
        """A reference swap and a few counters: the loop's whole cost when nobody watches."""
        now = time.monotonic()
        result = frame.anomaly
        with self.cond:
            self.seq += 1
            self.index = frame.index
            self._times.append(now)
            self._latest = (frame.raw, frame.view)
            if result is not None:
                flagged = bool(result.is_anomaly)
                self.anomaly = {"score": _finite(result.score), "normalized": _finite(result.normalized_score),
                                "threshold": _finite(getattr(result, "threshold", None)), "flagged": flagged}
                if flagged:
                    self.flagged += 1
                    if now - self._last_thumb >= self.options.thumbnail_every and self.options.thumbnails:
                        self._last_thumb = now
                        self._thumb_due = (frame.view, frame.index, _finite(result.score), frame.wall_time, self.flagged)
            self.cond.notify_all()

    def fps(self) -> float:
        with self.cond:
            times = list(self._times)
        recent = [t for t in times if t >= time.monotonic() - 3.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)

    # -- client threads ---------------------------------------------------------------------

    def watch(self, view: str) -> _Watch:
        return _Watch(self, view)

    def next_jpeg(self, view: str, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest JPEG of ``view`` newer than frame ``after``; None after ``timeout`` seconds
        or once closed."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed:
                item = self._jpegs.get(view)
                if item is not None and item[0] > after:
                    return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
        return None

    def thumbnail(self, thumb_id: int) -> bytes | None:
        with self.cond:
            return next((t.jpeg for t in self.thumbnails if t.id == thumb_id), None)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self._latest = None
            self.cond.notify_all()
        self._thread.join(2.0)

    # -- encoder thread ---------------------------------------------------------------------

    def _work(self) -> tuple[int, tuple[np.ndarray | None, np.ndarray] | None, list[str], Any]:
        """Called under the lock: what to encode now (views watched and not yet encoded for the
        newest frame, a thumbnail due)."""
        views = [v for v in VIEWS if self._wanted[v] > 0 and self._tried.get(v, 0) < self.seq]
        thumb, self._thumb_due = self._thumb_due, None
        return self.seq, (self._latest if views else None), views, thumb

    def _encode_loop(self) -> None:
        while True:
            with self.cond:
                seq, latest, views, thumb = self._work()
                while not self.closed and latest is None and thumb is None:
                    self.cond.wait(0.5)
                    seq, latest, views, thumb = self._work()
                if self.closed:
                    return
            # cv2 resizes and encodes without the GIL: this runs beside the camera loop, not in it.
            cpu = time.thread_time()
            try:
                encoded = {v: self._jpeg(compose(v, *latest, max_width=self.options.max_width)) for v in views} \
                    if latest else {}
                thumbnail = None
                if thumb is not None:
                    view, index, score, wall_time, flag_id = thumb
                    thumbnail = Thumbnail(flag_id, index, score, wall_time, self._jpeg(shrink(view, 160)))
            except Exception as exc:  # one frame the encoder cannot draw must not end the page's stream
                self.error = f"frame {seq} not shown: {type(exc).__name__}: {exc}"
                encoded, thumbnail = {}, None
            cpu = time.thread_time() - cpu
            with self.cond:
                self.encoded += len(encoded)
                self.encode_cpu_s += cpu
                for v in views:
                    self._tried[v] = seq  # done or failed: not tried again until a newer frame
                for v, data in encoded.items():
                    self._jpegs[v] = (seq, data)
                if thumbnail is not None:
                    self.thumbnails.append(thumbnail)
                self.cond.notify_all()

    def _jpeg(self, image: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality])
        if not ok:
            raise ValueError(f"JPEG encoding failed for a {image.dtype} image of shape {image.shape}")
        return buf.tobytes()


class _Watch:
    """``with hub.watch(view):`` - while inside, the encoder keeps that view encoded."""

    def __init__(self, hub: FrameHub, view: str) -> None:
        self.hub, self.view = hub, view

    def __enter__(self) -> _Watch:
        with self.hub.cond:
            self.hub._wanted[self.view] += 1
            self.hub.cond.notify_all()  # the newest frame is encoded for this view at once
        return self

    def __exit__(self, *exc: object) -> None:
        with self.hub.cond:
            self.hub._wanted[self.view] -= 1


def shrink(image: np.ndarray, max_width: int) -> np.ndarray:
    if image.shape[1] <= max_width:
        return image
    height = max(1, round(image.shape[0] * max_width / image.shape[1]))
    return cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA)


def compose(view: str, raw: np.ndarray | None, processed: np.ndarray, *, max_width: int) -> np.ndarray:
    """The picture of ``view``: the frame as captured, as processed (with the anomaly overlay),
    or both side by side, labelled; at most ``max_width`` pixels wide."""
    before = to_bgr8(raw) if raw is not None else processed
    if view == "before":
        return shrink(before, max_width)
    if view == "after":
        return shrink(processed, max_width)
    if before.shape[:2] != processed.shape[:2]:
        before = cv2.resize(before, (processed.shape[1], processed.shape[0]), interpolation=cv2.INTER_AREA)
    side = shrink(np.hstack([before, processed]), max_width)
    half = side.shape[1] // 2
    scale = max(side.shape[0] / 480.0, 0.35)
    for text, x in (("before", 6), ("after", half + 6)):
        y = side.shape[0] - 8
        cv2.putText(side, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, round(3 * scale)), cv2.LINE_AA)
        cv2.putText(side, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, round(scale)), cv2.LINE_AA)
    return side


class ServeSink:
    """A sink that serves the live page (see the module docstring). Listens as soon as it is made,
    so a port in use fails before any model loads; ``close()`` (the stream calls it) stops the
    server and ends every connection."""

    def __init__(self, options: ServeOptions | None = None) -> None:
        from edge_ae.video.webserver import PageServer

        self.options = options or ServeOptions()
        self.hub = FrameHub(self.options)
        self.pipeline: FramePipeline | None = None
        self.source = ""
        self._dropped: Any = None
        try:
            self.server = PageServer(self.options, self)
        except OSError as exc:
            self.hub.close()
            raise SinkError(f"--serve {self.options.host}:{self.options.port}: cannot listen "
                            f"({exc.strerror or exc})") from None
        self.server.start()

    @property
    def url(self) -> str:
        """Where to open the page; for every interface (0.0.0.0, ::) with this machine's name."""
        host, port = self.server.server_name, self.server.server_port
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname() or "THIS-MACHINE"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    @property
    def warning(self) -> str | None:
        """Why the page is not private, for the caller to show on start; None when it is."""
        if self.options.loopback or self.options.token:
            return None
        return (f"serving on {self.options.host} without --serve-token: anyone on the network who can reach "
                f"port {self.server.server_port} can watch the camera and change the denoising")

    def attach(self, stream: Stream) -> None:
        """Show this stream's figures and give the page its pipeline's controls."""
        self.pipeline = stream.pipeline
        self.source = stream.source.description
        mailbox = stream.capture.mailbox
        self._dropped = lambda: mailbox.dropped

    def write(self, frame: Output) -> None:
        self.hub.put(frame)

    def close(self) -> None:
        """Stop serving; safe to call more than once."""
        self.hub.close()  # first: wakes every client waiting for a frame, so they end on their own
        self.server.stop()

    # -- what the page reads ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        hub, pipe = self.hub, self.pipeline
        with hub.cond:
            figures: dict[str, Any] = {
                "frames": hub.seq, "frame_index": hub.index, "flagged": hub.flagged, "anomaly": hub.anomaly,
                "encode_ms": round(1000.0 * hub.encode_cpu_s / hub.encoded, 1) if hub.encoded else None,
                "thumbnails": [{"id": t.id, "frame": t.frame, "score": t.score, "time": t.wall_time}
                               for t in reversed(hub.thumbnails)],
            }
        figures.update(
            running=not hub.closed, source=self.source, fps=round(hub.fps(), 2),
            dropped=int(self._dropped()) if self._dropped else 0, clients=self.server.clients, error=hub.error,
        )
        if pipe is not None:
            figures.update(
                models={"denoise": model_name(pipe.denoiser), "anomaly": model_name(pipe.detector)},
                temporal=pipe.temporal is not None,
                sigma=_finite(pipe.last_sigma, 2),
                strength=pipe.strength, strength_applies=pipe.sigma is None,
                denoise=None if (pipe.denoiser is None and pipe.temporal is None) else pipe.denoise_enabled,
            )
        return figures

    def control(self, change: dict[str, Any]) -> None:
        """Apply ``{"strength": x, "denoise": bool}`` from the page on the next frame; raises
        ``ValueError`` for anything else."""
        unknown = sorted(set(change) - {"strength", "denoise"})
        if unknown:
            raise ValueError(f"expected the keys strength and/or denoise, got {', '.join(unknown)}")
        if self.pipeline is None:
            raise ValueError("no stream attached: nothing to control")
        self.pipeline.controls.request(strength=change.get("strength"), denoise=change.get("denoise"))


def model_name(model: Any) -> str | None:
    """What to call a model on the page: its manifest name, else its type."""
    if model is None:
        return None
    for holder in (model, getattr(model, "model", None)):
        spec = getattr(holder, "spec", None)
        if spec is not None and getattr(spec, "name", None):
            return str(spec.name)
    name = getattr(model, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(model, "__name__", None) or type(model).__name__


def _finite(value: Any, digits: int = 6) -> float | None:
    """A number the page's JSON can carry: NaN and infinities (a detector's bad day) become null."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None
