"""Write a folder of synthetic noisy photos for batch tests and benchmarks (no data set needed).

    python -m tools.make_noisy_folder OUT --count 200 --size 640x480 --sigma 25 --seed 0

Each image is a smooth color gradient with a few filled shapes and edges (something a denoiser
has to preserve), plus Gaussian noise of ``sigma`` on the 0-255 scale, saved as PNG. The same
seed gives the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def noisy_image(rng: np.random.Generator, *, width: int, height: int, sigma: float, gray: bool = False) -> np.ndarray:
    """One HxWx3 (or HxW when ``gray``) uint8 image: gradient + shapes + Gaussian noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    t = (x / max(width - 1, 1) + y / max(height - 1, 1)) / 2
    clean = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)
    for _ in range(int(rng.integers(3, 8))):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, max(11, min(width, height) // 4)))
        if rng.random() < 0.5:
            cv2.circle(clean, (cx, cy), r, colour, -1)
        else:
            cv2.rectangle(clean, (cx - r, cy - r // 2), (cx + r, cy + r // 2), colour, -1)
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    out = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY) if gray else out


def write_folder(out: Path, *, count: int, width: int, height: int, sigma: float, seed: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = out / f"noisy-{i:04d}.png"
        if not cv2.imwrite(str(path), noisy_image(rng, width=width, height=height, sigma=sigma)):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write into (created)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise level, 0-255 scale (default 25)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    paths = write_folder(args.out, count=args.count, width=width, height=height, sigma=args.sigma, seed=args.seed)
    print(f"{len(paths)} images {width}x{height}, sigma {args.sigma:g} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
