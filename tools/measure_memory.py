"""Peak memory of ``edge-ae denoise`` per megapixel: one fresh process per image size, as a user
runs it, its peak resident set size read from the kernel when it exits.

    nice -n 10 python -m tools.measure_memory                       # 0.3, 12, 30 and 60 MP, the default model
    nice -n 10 python -m tools.measure_memory --sizes 0.3 12 -m denoise-color-fast --format png

Each size is a synthetic noisy colour photo (4:3, 8-bit, smooth gradients plus Gaussian noise of
sigma 15, fixed seed) written to a temporary folder, then ``python -m edge_ae denoise IMAGE -o OUT
--threads 1`` runs in a child process; ``os.wait4`` gives its ``ru_maxrss``, the most memory it
ever held (Python, onnxruntime and the models included). The decoded image is H x W x 3 bytes.
The table's last column is the slope from the size before, which takes the fixed cost
(interpreter, libraries, models, one tile's working memory) out; a line fits peak = fixed +
slope x megapixels over every size but the smallest and divides the slope by the decoded image's
3 bytes a pixel. Prints Markdown; nothing is written to the repository.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def synthetic_photo(megapixels: float, *, seed: int = 0) -> np.ndarray:
    """A 4:3 uint8 BGR image of about ``megapixels`` with a smooth scene and sigma-15 noise, made a
    band at a time so that this process stays small next to the one measured."""
    w = max(8, int(round((megapixels * 1e6 * 4 / 3) ** 0.5)))
    h = max(6, int(round(w * 3 / 4)))
    rng = np.random.default_rng(seed)
    out = np.empty((h, w, 3), np.uint8)
    x = np.arange(w, dtype=np.float32)[None, :]
    for y0 in range(0, h, 256):
        y = np.arange(y0, min(h, y0 + 256), dtype=np.float32)[:, None]
        scene = np.stack([128 + 90 * np.sin(x / 97 + y / 53), 128 + 80 * np.cos(x / 61 - y / 89),
                          128 + 70 * np.sin((x + y) / 131)], axis=2)
        scene += rng.normal(0, 15, scene.shape).astype(np.float32)
        out[y0 : y0 + len(y)] = np.clip(scene, 0, 255).astype(np.uint8)
    return out


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    """(peak resident MB, wall seconds, exit status) of ``cmd`` run to its end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        err = child.stderr.read().decode(errors="replace") if child.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed ({child.returncode}):\n{err[-2000:]}")
    if child.stderr:
        child.stderr.close()
    return usage.ru_maxrss / 1024, seconds, child.returncode  # ru_maxrss is in KiB on Linux


def measure(sizes: list[float], *, model: str | None, fmt: str, threads: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-ae-memory-") as tmp:
        for mp in sizes:
            image = synthetic_photo(mp)
            src = Path(tmp) / f"photo-{mp:g}mp.{fmt}"
            cv2.imwrite(str(src), image)
            h, w = image.shape[:2]
            del image
            cmd = [sys.executable, "-m", "edge_ae", "denoise", str(src), "-o", str(Path(tmp) / f"out-{mp:g}"),
                   "--threads", str(threads), "--max-pixels", str(max(100_000_000, h * w))]
            if model:
                cmd += ["-m", model]
            peak, seconds, _ = peak_rss_mb(cmd)
            rows.append({"mp": h * w / 1e6, "size": f"{w}x{h}", "decoded_mb": h * w * 3 / 2**20, "peak_mb": peak,
                         "seconds": seconds})
            src.unlink()
            print(f"{w}x{h}: peak {peak:.0f} MiB in {seconds:.1f} s", file=sys.stderr, flush=True)
    return rows


DECODED_MIB_PER_MP = 3e6 / 2**20  # 8-bit color: 3 bytes a pixel


def table(rows: list[dict]) -> str:
    """The Markdown table, and a line fitting peak = fixed + slope x megapixels over every size
    but the smallest (there an image is one tile, and the models' working memory has not yet
    grown to the tile size larger images use)."""
    lines = ["| image | megapixels | decoded (MiB) | peak RSS (MiB) | MiB per MP from the size before |",
             "|---|---|---|---|---|"]
    for before, row in zip([None, *rows], rows, strict=False):
        step = "-" if before is None else f"{(row['peak_mb'] - before['peak_mb']) / (row['mp'] - before['mp']):.1f}"
        lines.append(f"| {row['size']} | {row['mp']:.1f} | {row['decoded_mb']:.0f} | {row['peak_mb']:.0f} | {step} |")
    fitted = rows[1:] if len(rows) > 2 else rows
    if len(fitted) >= 2:
        slope, fixed = np.polyfit([r["mp"] for r in fitted], [r["peak_mb"] for r in fitted], 1)
        sizes = ", ".join(f"{r['mp']:.0f}" for r in fitted)
        lines.append(f"\nFit over {sizes} MP: peak = {fixed:.0f} MiB + "
                     f"{slope:.1f} MiB per megapixel ({slope / DECODED_MIB_PER_MP:.2f} x the decoded 8-bit color image).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[0.3, 12, 30, 60], help="megapixels, smallest first")
    p.add_argument("-m", "--model", help="denoiser (default: edge-ae's default for colour photos)")
    p.add_argument("--format", default="jpg", choices=["jpg", "png", "tif"], help="file format of the photos")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    rows = measure(sorted(args.sizes), model=args.model, fmt=args.format, threads=args.threads)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
