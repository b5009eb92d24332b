"""``edge-ae camera``: denoise and flag anomalies on a live camera, a stream URL, a video file
or a folder of frames, in real time."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edge_ae.cli.limits import add_max_pixels, tidy
from edge_ae.cli.options import add_precision, add_threads, resolve_threads
from edge_ae.cli.values import float_range, frame_size, non_negative_float, positive_float, positive_int, seconds_or_inf
from edge_ae.denoise.denoiser import Denoiser
from edge_ae.denoise.options import STRENGTHS, DenoiseOptions
from edge_ae.video.capture import Notice

if TYPE_CHECKING:
    from edge_ae.video.serve import ServeOptions, ServeSink


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "camera", help="denoise / flag anomalies on a camera or video in real time",
        description="Process a live camera (index, or 'picamera2' for a Raspberry Pi ribbon camera), an RTSP/HTTP "
        "URL, a video file or a folder of images. Live sources drop stale frames so latency stays low; "
        "Ctrl-C or SIGTERM stops cleanly with the recording finalised. Live fps and latency go to stderr, the "
        "summary to stdout.",
    )
    p.add_argument("--source", required=True, help="camera index (0), 'picamera2', URL, video file or image folder")
    p.add_argument("--size", type=frame_size, metavar="WxH", help="camera resolution to ask for (default: the camera's; "
                   "picamera2: 640x480)")
    p.add_argument("--denoise", metavar="MODEL",
                   help="denoiser name or .onnx path; 'none' for no denoising (default, when no model is named: the "
                   "fast models, denoise-gray-fast / denoise-color-fast by the frames' channels)")
    add_precision(p)
    p.add_argument("--sigma", type=non_negative_float,
                   help="noise level on the 0-255 scale (default: estimated, smoothed over frames)")
    p.add_argument("--strength", type=float_range(*STRENGTHS), default=1.0, metavar="X",
                   help="scale the estimated noise level (0.25-4, default 1): above 1 cleans harder, below keeps more grain")
    p.add_argument("--estimate-every", type=positive_int, default=8, metavar="N",
                   help="re-estimate the noise map every N frames with the denoiser's noise-level model (default 8)")
    p.add_argument("--temporal", action="store_true", help="temporal denoising for a fixed camera (no ghosting of moving things)")
    p.add_argument("--anomaly", metavar="MODEL", help="anomaly model name or .onnx path")
    p.add_argument("--record", metavar="VIDEO", help="write the processed video (.mp4, .avi, .mkv)")
    p.add_argument("--frames", metavar="DIR", help="write each processed frame as a PNG")
    p.add_argument("--events", metavar="JSONL", help="JSON-lines event log; flagged frames + heatmaps go next to it")
    p.add_argument("--show", action="store_true", help="show a window (needs a display; q or Esc quits)")
    p.add_argument("--max-fps", type=positive_float, metavar="N", help="process at most N frames per second")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="stop after this long")
    add_threads(p)
    p.add_argument("--reconnect-for", type=seconds_or_inf, default=60.0, metavar="SECONDS",
                   help="retry a lost camera for this long, with back-off (default 60; 'inf' for ever; 0 gives up at once)")
    p.add_argument("--serve", metavar="[HOST:]PORT",
                   help="serve a live page (before/after, anomaly overlay, figures, strength control) at "
                   "http://HOST:PORT/; HOST defaults to 127.0.0.1 (this machine only), 0.0.0.0 opens it to the network")
    p.add_argument("--serve-token", metavar="TOKEN",
                   help="every request to --serve must carry it (open http://HOST:PORT/?token=TOKEN); default: "
                   "$EDGE_AE_SERVE_TOKEN, which keeps it out of the process list")
    add_max_pixels(p)
    p.set_defaults(func=run)


def _denoiser(args: argparse.Namespace, threads: int) -> tuple[Denoiser | None, str]:
    """What ``Stream`` gets as ``denoise`` (None, or a Denoiser built at --precision), and the
    note to print: the fast models when no model is named."""
    if args.denoise is not None and args.denoise.lower() == "none":
        return None, ""
    try:
        if args.denoise is not None:
            named = Denoiser(args.denoise, threads=threads, precision=args.precision)
            choice = named.choice_for(3)
            swapped = choice.model != args.denoise  # --precision ran the named model's twin: say so
            return named, (f"edge-ae: --denoise {args.denoise}: running {choice.describe()}" if swapped else "")
        if args.anomaly is not None:  # a model is named: only what is named runs
            return None, ""
        denoiser = Denoiser(threads=threads, precision=args.precision, fast=True)
    except ValueError as exc:  # --precision float/int8 with a model file
        raise argparse.ArgumentTypeError(str(exc)) from None
    return denoiser, (f"edge-ae: no model named: denoising with the fast models, {denoiser.choice_for(3).describe()} "
                      f"for color frames, {denoiser.choice_for(1).describe()} for gray (--denoise NAME or none to "
                      "choose)")


class LiveStatus:
    """One status line on stderr, redrawn in place on a terminal; notices as their own lines."""

    LOG_EVERY = 30.0  # seconds between status lines when stderr is a log, not a terminal

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.drawn = False
        self.last_logged = time.monotonic()

    def progress(self, report) -> None:  # a StreamReport
        lat = report.latency_ms
        line = (f"{report.frames_processed} frames  {report.fps:.1f} fps  latency p50 {lat['p50']:.0f} ms "
                f"p95 {lat['p95']:.0f} ms  dropped {report.frames_dropped}"
                + (f"  anomalies {report.anomalies}" if report.anomalies else ""))
        if self.live:
            sys.stderr.write(f"\r{line}\x1b[K")
            self.drawn = True
        elif time.monotonic() - self.last_logged >= self.LOG_EVERY:  # e.g. under systemd: a line now and then
            self.last_logged = time.monotonic()
            sys.stderr.write(f"edge-ae: {line}\n")
        sys.stderr.flush()

    def notice(self, notice: Notice) -> None:
        self.clear()
        print(f"edge-ae: {notice.message}", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            self.drawn = False


def run(args: argparse.Namespace) -> int:
    import cv2

    from edge_ae.video.options import CaptureOptions, ControlOptions, FrameOptions, Limits, OutputOptions
    from edge_ae.video.stream import Stream

    serve_options = _serve_options(args)
    # OpenCV's own warnings (a camera index that does not exist...) would duplicate our one-line errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    status = LiveStatus()
    serve = _start_serving(serve_options) if serve_options is not None else None
    threads = resolve_threads(args.threads)
    try:
        denoise, note = _denoiser(args, threads)
        stream = Stream(
            args.source, denoise=denoise, denoising=DenoiseOptions(sigma=args.sigma, strength=args.strength),
            anomaly=args.anomaly, threads=threads,
            frame=FrameOptions(estimate_every=args.estimate_every, temporal=args.temporal),
            capture=CaptureOptions(size=args.size, max_pixels=args.max_pixels,
                                   reconnect_for=None if math.isinf(args.reconnect_for) else args.reconnect_for),
            output=OutputOptions(record=args.record, frames=args.frames, events=args.events, show=args.show,
                                 sinks=[serve] if serve is not None else ()),
            limits=Limits(max_fps=args.max_fps, max_frames=args.max_frames, duration=args.duration),
            control=ControlOptions(on_notice=status.notice, on_progress=status.progress),
        )
    except BaseException:
        if serve is not None:
            serve.close()  # a model or source refused: the port is given back before the error shows
        raise
    if note:  # after the stream opened: a usage error stays the only line
        print(note, file=sys.stderr, flush=True)
    if serve is not None:
        serve.attach(stream)
    for folder in (args.frames, args.events and Path(args.events).with_name(Path(args.events).stem + "_frames")):
        if folder is not None and Path(folder).is_dir():
            tidy(Path(folder))
    try:
        report = stream.run()
    finally:
        if serve is not None:
            serve.close()  # the stream closes its sinks only once its source opened: this covers the rest
    status.clear()
    print(report.summary())
    return 1 if report.failed or report.frames_skipped else 0


def _serve_options(args: argparse.Namespace) -> ServeOptions | None:
    """--serve / --serve-token checked before any work starts (usage errors exit 2)."""
    if args.serve is None:
        if args.serve_token is not None:
            raise argparse.ArgumentTypeError("--serve-token needs --serve [HOST:]PORT")
        return None
    from edge_ae.video.serve import ServeOptions

    token = args.serve_token if args.serve_token is not None else os.environ.get("EDGE_AE_SERVE_TOKEN") or None
    try:
        return ServeOptions.parse(args.serve, token=token)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--serve: {exc}") from None


def _start_serving(options: ServeOptions) -> ServeSink:
    from edge_ae.video.serve import ServeSink

    sink = ServeSink(options)  # listens now: a port in use fails before any model loads
    token = f"?token={options.token[:2]}..." if options.token else ""
    print(f"edge-ae: serving {sink.url}{token} (Ctrl-C stops)", file=sys.stderr, flush=True)
    if sink.warning:
        print(f"edge-ae: warning: {sink.warning}", file=sys.stderr, flush=True)
    return sink
