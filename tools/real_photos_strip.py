"""Before | after strip of the real noisy photos (RNI6, bundled in samples/noisy/) through the
default denoiser with the noise level estimated per image, as a user would run it.

    python -m tools.real_photos_strip      # writes docs/img/rni6_before_after.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edge_ae import Denoiser
from edge_ae.files.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parent.parent


def row(before: np.ndarray, after: np.ndarray, height: int, label: str) -> np.ndarray:
    scale = height / before.shape[0]
    size = (round(before.shape[1] * scale), height)
    a = cv2.resize(before, size, interpolation=cv2.INTER_AREA)
    b = cv2.resize(after, size, interpolation=cv2.INTER_AREA)
    pair = np.concatenate([a, np.full((height, 6), 255, np.uint8), b], axis=1)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    cv2.rectangle(pair, (0, 0), (tw + 10, th + 10), 0, -1)
    cv2.putText(pair, label, (5, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1, cv2.LINE_AA)
    return pair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model name or path (default: the runtime's default)")
    ap.add_argument("--height", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "rni6_before_after.png")
    args = ap.parse_args()
    denoise = Denoiser(args.model)
    rows = []
    for path in sorted((ROOT / "samples" / "noisy").glob("*.png")):
        image = read_image(path)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        clean = denoise(image)  # the default call: the level is estimated (learned model, else wavelet)
        rows.append(row(image, clean, args.height, f"{path.stem}  est. sigma {denoise.last_sigma:.1f}"))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1])), constant_values=255) for r in rows]
    write_image(args.out, np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
