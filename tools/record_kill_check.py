"""What a `kill -9` leaves of a recording, per container OpenCV's FFmpeg writer can make here.

    python -m tools.record_kill_check                 # 640x480 noisy frames, killed after 100
    python -m tools.record_kill_check --size 320x240 --frames 200
    python -m tools.record_kill_check --cost 500      # also: what the segments cost, 500 frames

Each case writes frames with a plain cv2.VideoWriter in a child process (a frame every 40 ms,
as a 25 fps camera), which is killed with SIGKILL once it has written --frames frames; then the
file is read back with cv2.VideoCapture and the frames that decode are counted. Last, the same
through `edge-ae camera --record out.mp4` (a generated video as the source, --frames alongside
to count the frames processed): what its recording (the segments in out.mp4.recording/) keeps.
These figures are counts, the same on any host. `--cost N` also times, in this one process,
N frames through `VideoSink` (segments, counted and joined at the end) against a plain
`cv2.VideoWriter` into one .mp4, alternating the two three times, with the load average.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = [(".mp4", "mp4v"), (".avi", "MJPG"), (".mkv", "XVID"), (".mkv", "mp4v"), (".mkv", "MJPG")]
CHILD = r'''
import sys, time
import cv2, numpy as np
path, fourcc, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 25.0, (w, h))
assert writer.isOpened()
rng = np.random.default_rng(0)
for i in range(10**6):
    frame = (rng.random((h, w, 3)) * 60).astype(np.uint8) + np.uint8(i % 150)
    writer.write(frame)
    print(i + 1, flush=True)
    time.sleep(0.04)
'''


def decoded(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.isOpened() and cap.read()[0]:
        n += 1
    cap.release()
    return n


def killed_writer(folder: Path, suffix: str, fourcc: str, size: tuple[int, int], frames: int) -> tuple[int, int, int]:
    """(frames written, bytes on disk, frames that decode) after SIGKILL."""
    path = folder / f"kill-{fourcc}{suffix}"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), fourcc, str(size[0]), str(size[1])],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    written = 0
    assert proc.stdout is not None
    while written < frames:
        line = proc.stdout.readline()
        if not line:
            break
        written = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return written, path.stat().st_size if path.exists() else 0, decoded(path)


def killed_camera(folder: Path, size: tuple[int, int], frames: int) -> tuple[int, int, int]:
    """(frames processed, frames of its recording that decode, whether out.mp4 exists) for edge-ae camera."""
    source = folder / "source.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, size)
    rng = np.random.default_rng(1)
    for i in range(frames * 3):
        writer.write((rng.random((size[1], size[0], 3)) * 60).astype(np.uint8) + np.uint8(i % 150))
    writer.release()
    out, seen = folder / "out.mp4", folder / "seen"
    proc = subprocess.Popen([sys.executable, "-m", "edge_ae", "camera", "--source", str(source), "--record", str(out),
                             "--frames", str(seen), "--max-fps", "25"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not seen.is_dir() or len(os.listdir(seen)) < frames):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    processed = len(list(seen.glob("frame_*")))
    recording = folder / "out.mp4.recording"
    kept = sum(decoded(p) for p in sorted(recording.iterdir())) if recording.is_dir() else 0
    return processed, kept, int(out.exists())


def cost(folder: Path, size: tuple[int, int], frames: int) -> tuple[float, float]:
    """Median seconds for ``frames`` frames through a plain writer and through ``VideoSink``."""
    from edge_ae.video.sinks import Output, VideoSink

    rng = np.random.default_rng(2)
    base = (rng.random((size[1], size[0], 3)) * 200).astype(np.uint8)
    images = [np.roll(base, 3 * i, axis=1) for i in range(frames)]  # motion, as a camera sees it
    plain_s, sink_s = [], []
    for run in range(3):
        start = time.perf_counter()
        writer = cv2.VideoWriter(str(folder / f"plain{run}.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, size)
        for image in images:
            writer.write(image)
        writer.release()
        plain_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        sink = VideoSink(folder / f"sink{run}.mp4", fps=25.0)
        for i, image in enumerate(images):
            sink.write(Output(index=i, wall_time=i / 25, image=image, view=image))
        sink.close()
        sink_s.append(time.perf_counter() - start)
    return sorted(plain_s)[1], sorted(sink_s)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="640x480", help="frame size WxH (default 640x480)")
    parser.add_argument("--frames", type=int, default=100, help="frames written before the kill (default 100)")
    parser.add_argument("--cost", type=int, metavar="N", help="also time N frames through VideoSink and a plain writer")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    assert len(size) == 2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    print(f"OpenCV {cv2.__version__}; {size[0]}x{size[1]} noisy frames; SIGKILL after {args.frames} frames")
    print(f"{'container':<10} {'codec':<6} {'written':>8} {'bytes':>10} {'decoded':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, fourcc in CASES:
            written, size_bytes, ok = killed_writer(Path(tmp), suffix, fourcc, size, args.frames)
            print(f"{suffix:<10} {fourcc:<6} {written:>8} {size_bytes:>10} {ok:>8}")
        processed, kept, finished = killed_camera(Path(tmp), size, args.frames)
        print(f"\nedge-ae camera --record out.mp4, killed after {processed} frames processed: its segments "
              f"(out.mp4.recording/) decode {kept} frames; out.mp4 "
              f"{'exists' if finished else 'not written (the run never finished)'}")
        if args.cost:
            load = os.getloadavg()[0]
            plain, segmented = cost(Path(tmp), size, args.cost)
            print(f"\n{args.cost} frames: plain writer into .mp4 {plain:.2f} s, VideoSink (segments, counted, joined) "
                  f"{segmented:.2f} s: x{segmented / plain:.2f} (medians of 3; load {load:.1f} -> "
                  f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
