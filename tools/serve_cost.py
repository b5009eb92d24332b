"""What serving one browser costs the camera loop: frame rate with and without `--serve`, in one run.

    python -m tools.serve_cost                        # 640x480, denoise-color-fast, 1 thread, 3 pairs of 6 s
    python -m tools.serve_cost --size 320x240 --threads 4 --view after

A generated video (a photo of samples/noisy, cropped to --size, eight frames of fresh noise in
turn; not live, so every frame is processed and the frame rate is the loop's speed) runs through
the denoiser as `edge-ae camera` runs it, in phases of --seconds: without a server ("off") and
with a `ServeSink` watched by one client ("on"): another process reading the MJPEG stream of
--view and the figures once a second, as the page does. Phases alternate (off/on, on/off, ...)
so a change in the machine's load hits both alike; the model is loaded once. Reported: the
median frame rate of each, their ratio, the process CPU time per frame (the JPEG encoding shows
there even when a spare core hides it from the frame rate), the CPU time of the camera loop's thread
and of the encoder thread per frame (CPU time, so less disturbed by other people's jobs than the
frame rate), the frames the client got, the encoding timed alone, and the load average
(`os.getloadavg`) before and after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_ae.denoise.denoiser import Denoiser
from edge_ae.video.options import ControlOptions, Limits, OutputOptions
from edge_ae.video.serve import ServeOptions, ServeSink, compose
from edge_ae.video.sources import Source
from edge_ae.video.stream import Stream

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "noisy"


class NoisyPhoto(Source):
    """Not live: frames as fast as they are taken, for ever (eight noise draws in turn)."""

    description = "generated video"

    def __init__(self, size: tuple[int, int], noise: float = 15.0) -> None:
        files = sorted(p for p in PHOTO.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        image = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"serve_cost: cannot read {files[0]}")
        w, h = size
        scale = max(w / image.shape[1], h / image.shape[0])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        y0, x0 = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        clean = image[y0:y0 + h, x0:x0 + w].astype(np.float32)
        rng = np.random.default_rng(0)
        self.frames = [np.clip(clean + rng.normal(0, noise, clean.shape), 0, 255).astype(np.uint8) for _ in range(8)]
        self.count = 0

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        self.count += 1
        return self.frames[self.count % len(self.frames)]


def client(port: int, view: str, seconds: float) -> None:
    """The browser's part, in its own process: read the stream, poll the figures every second."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/stream.mjpg?view={view}")
    resp = conn.getresponse()
    frames, next_poll, end = 0, 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            line = resp.fp.readline()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                resp.fp.readline()
                size = int(line.split(b":")[1])
                if len(resp.fp.read(size)) < size:
                    break
                frames += 1
        except OSError:  # the server closed when the run ended, perhaps mid-frame
            break
        if time.monotonic() >= next_poll:
            next_poll = time.monotonic() + 1.0
            try:
                poll = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                poll.request("GET", "/stats")
                poll.getresponse().read()
                poll.close()
            except (OSError, http.client.HTTPException):
                break
    print(json.dumps({"frames": frames}))


def phase(denoiser: Denoiser, size: tuple[int, int], seconds: float, *, serve: bool, view: str) -> dict:
    sink = ServeSink(ServeOptions(port=0)) if serve else None
    stream = Stream(NoisyPhoto(size), denoise=denoiser, limits=Limits(duration=seconds),
                    output=OutputOptions(sinks=[sink] if sink else ()), control=ControlOptions(handle_signals=False))
    watcher = None
    if sink is not None:
        sink.attach(stream)
        watcher = subprocess.Popen([sys.executable, "-m", "tools.serve_cost", "--client", str(sink.server.server_port),
                                    "--view", view, "--seconds", str(seconds + 5)], cwd=ROOT, stdout=subprocess.PIPE,
                                   text=True)
        deadline = time.monotonic() + 10
        while sink.server.clients == 0 and time.monotonic() < deadline:  # the watcher is in before timing starts
            time.sleep(0.05)
    cpu, loop_cpu = time.process_time(), time.thread_time()
    report = stream.run()  # closing the stream closes the server: the watcher sees the end and reports
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    got = 0
    if watcher is not None:
        try:
            out, _ = watcher.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            watcher.kill()
            out, _ = watcher.communicate()
        got = json.loads(out.strip().splitlines()[-1])["frames"] if out.strip() else 0
    frames = max(report.frames_processed, 1)
    encode = 1000.0 * sink.hub.encode_cpu_s / max(sink.hub.encoded, 1) if sink is not None else 0.0
    return {"serve": serve, "fps": report.fps, "frames": report.frames_processed, "cpu_ms": 1000.0 * cpu / frames,
            "loop_ms": 1000.0 * loop_cpu / frames, "encode_ms": encode, "client_fps": got / report.elapsed_s}


def encode_ms(size: tuple[int, int], view: str, repeat: int = 20) -> float:
    """What the encoder thread does per frame watched (compose the view, JPEG at the default
    quality), timed alone: median CPU ms."""
    frame = NoisyPhoto(size).frames[0]
    processed = cv2.GaussianBlur(frame, (5, 5), 0)
    options = ServeOptions()
    times = []
    for _ in range(repeat):
        start = time.thread_time()  # CPU time: what it takes from a core, however busy the machine
        cv2.imencode(".jpg", compose(view, frame, processed, max_width=options.max_width),
                     [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
        times.append(time.thread_time() - start)
    return 1000.0 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the generated frames")
    parser.add_argument("--model", default="denoise-color-fast")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (1 on a shared host)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each phase")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--view", default="side", choices=("before", "after", "side"))
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client is not None:
        client(args.client, args.view, args.seconds)
        return 0
    size = tuple(int(v) for v in args.size.lower().split("x"))
    assert len(size) == 2
    denoiser = Denoiser(args.model, threads=args.threads)
    denoiser(NoisyPhoto(size).frames[0])  # warm-up: the session's first run is slow
    load_before = os.getloadavg()
    runs = []
    for pair in range(args.pairs):
        for serve in ((False, True) if pair % 2 == 0 else (True, False)):
            runs.append(phase(denoiser, size, args.seconds, serve=serve, view=args.view))
    load_after = os.getloadavg()
    encode = encode_ms(size, args.view)
    off = [r for r in runs if not r["serve"]]
    on = [r for r in runs if r["serve"]]
    fps_off, fps_on = statistics.median(r["fps"] for r in off), statistics.median(r["fps"] for r in on)
    cpu_off, cpu_on = statistics.median(r["cpu_ms"] for r in off), statistics.median(r["cpu_ms"] for r in on)
    print(f"command: python -m tools.serve_cost {shlex.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(f"{args.model}, {args.size}, {args.threads} thread(s), view {args.view}, {args.pairs} pairs of {args.seconds:g} s; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    for r in runs:
        print(f"  {'on ' if r['serve'] else 'off'}  {r['fps']:6.2f} fps  CPU/frame: {r['cpu_ms']:6.1f} ms process, "
              f"{r['loop_ms']:5.1f} ms loop thread"
              + (f", {r['encode_ms']:5.1f} ms encoder thread; client got {r['client_fps']:.2f} frames/s" if r["serve"] else ""))
    print(f"median: without --serve {fps_off:.2f} fps, with one client {fps_on:.2f} fps: ratio {fps_on / fps_off:.3f}; "
          f"CPU per frame {cpu_off:.1f} -> {cpu_on:.1f} ms (+{cpu_on - cpu_off:.1f} ms)")
    loop_off, loop_on = statistics.median(r["loop_ms"] for r in off), statistics.median(r["loop_ms"] for r in on)
    encoder = statistics.median(r["encode_ms"] for r in on)
    print(f"CPU time per frame of the camera loop's thread {loop_off:.1f} ms without, {loop_on:.1f} ms with; "
          f"the encoder thread {encoder:.1f} ms per frame sent: with no spare core the frame rate would drop to about "
          f"{loop_off / (loop_off + encoder):.2f} of its value, with one it stays")
    print(f"encoding the {args.view} view alone: {encode:.1f} ms CPU per frame (median of 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
