"""The picture of the `edge-ae camera --serve` page in the docs, taken by a real browser.

    python -m tools.serve_screenshot                  # writes docs/img/camera_serve.png
    python -m tools.serve_screenshot --out shot.png --seconds 20

A generated live video (the magnetic-tile images of samples/anomaly, normal and defective, passing
one after the other with camera noise added, seeded) runs through `denoise-color-fast` and
`anomaly-magnetic-tile` with a `ServeSink`, as `edge-ae camera --serve` runs it; once a few frames
have been flagged, headless Chromium (Debian's `chromium`) loads the page in side-by-side view
and takes a screenshot, which is cropped to the page's content and shrunk to stay small.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edge_ae.video.options import ControlOptions, OutputOptions
from edge_ae.video.serve import ServeOptions, ServeSink
from edge_ae.video.sources import Source
from edge_ae.video.stream import Stream

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Normal and defective tiles alternate, so the page shows both verdicts and a few flagged thumbnails.
ORDER = ["good-exp0_num_743", "blowhole-exp1_num_108719", "good-exp1_num_11276", "fray-exp0_num_797",
         "good-exp0_num_743", "crack-exp1_num_249594", "good-exp1_num_11276", "uneven-exp0_num_461"]


class TileConveyor(Source):
    """Live frames of ``size`` (width, height): each tile of ``ORDER`` for ``hold`` frames, drifting
    sideways, with Gaussian noise of ``noise`` grey levels; ``fps`` frames a second, for ever."""

    live = True
    description = "generated video (samples/anomaly tiles + noise)"

    def __init__(self, *, size: tuple[int, int] = (320, 240), hold: int = 64, fps: float = 8.0, noise: float = 8.0,
                 seed: int = 0) -> None:
        self.size, self.hold, self.period, self.noise, self.seed = size, hold, 1.0 / fps, noise, seed
        self.tiles = [self._tile(ROOT / "samples" / "anomaly" / f"{name}.jpg") for name in ORDER]
        self.count = 0

    def _tile(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{path}: cannot read (is this a checkout with samples/?)")
        w, h = self.size
        # Crop the middle to the frame's shape (wider than needed, for the drift), then scale.
        scale = max((w + 2 * self.hold) / image.shape[1], h / image.shape[0])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y0 = (image.shape[0] - h) // 2
        return image[y0:y0 + h]

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        time.sleep(self.period)
        i, self.count = self.count, self.count + 1
        tile = self.tiles[(i // self.hold) % len(self.tiles)]
        x = i % self.hold
        frame = tile[:, x:x + self.size[0]].astype(np.float32)
        frame += np.random.default_rng(self.seed + i).normal(0.0, self.noise, frame.shape).astype(np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)


def stats(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/stats")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def screenshot(url: str, out: Path, *, window: tuple[int, int], budget_ms: int) -> None:
    profile = tempfile.mkdtemp(prefix="edge-ae-chromium-")
    try:
        result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                                 f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={budget_ms}", url],
                                capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if result.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium failed ({result.returncode}): {result.stderr[-1000:]}")


def crop_and_shrink(shot: np.ndarray, width: int) -> np.ndarray:
    """Cut the empty page background below the content, then scale to ``width`` pixels."""
    background = shot[-1, -1].astype(int)
    rows = np.flatnonzero(np.any(np.abs(shot.astype(int) - background).sum(axis=2) > 24, axis=1))
    if rows.size:
        shot = shot[:min(rows[-1] + 16, shot.shape[0])]
    if shot.shape[1] > width:
        shot = cv2.resize(shot, (width, round(shot.shape[0] * width / shot.shape[1])), interpolation=cv2.INTER_AREA)
    return shot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "camera_serve.png")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest wait for flagged frames before the shot")
    parser.add_argument("--flagged", type=int, default=2, help="flagged thumbnails to wait for")
    parser.add_argument("--width", type=int, default=800, help="width of the saved picture")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"serve_screenshot: {CHROMIUM} not found (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2

    sink = ServeSink(ServeOptions(port=0))
    stream = Stream(TileConveyor(), denoise="denoise-color-fast", anomaly="anomaly-magnetic-tile", threads=args.threads,
                    output=OutputOptions(sinks=[sink]), control=ControlOptions(handle_signals=False))
    sink.attach(stream)
    runner = threading.Thread(target=stream.run, daemon=True)
    runner.start()
    port = sink.server.server_port
    try:
        deadline = time.monotonic() + args.seconds
        # The shot is taken while a defective tile is in view and flagged on three polls running (the
        # page's figures and its picture then agree), once a few are among the thumbnails.
        running = 0
        while time.monotonic() < deadline and running < 3:
            now = stats(port)
            flagged = (now["anomaly"] or {}).get("flagged")
            running = running + 1 if flagged and len(now["thumbnails"]) >= args.flagged else 0
            time.sleep(0.2)
        figures = stats(port)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "shot.png"
            screenshot(f"http://127.0.0.1:{port}/?view=side", raw, window=(1280, 900), budget_ms=2500)
            shot = cv2.imread(str(raw))
            if shot is None:
                raise SystemExit(f"serve_screenshot: the browser wrote no readable {raw}")
            picture = crop_and_shrink(shot, args.width)
    finally:
        stream.stop()
        runner.join(10)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{args.out}: {picture.shape[1]}x{picture.shape[0]}, {args.out.stat().st_size / 1024:.0f} KiB; "
          f"{figures['frames']} frames, {figures['flagged']} flagged, {len(figures['thumbnails'])} thumbnails at the shot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
