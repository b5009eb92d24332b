"""Picture of the synthetic camera noise used for training (training/denoise/camera_pipeline.py)
next to real noisy photos, to judge by eye whether the synthesis looks like a camera's.

    python -m tools.camera_noise_examples      # writes docs/img/camera_noise_examples.png

Rows: a clean crop (McMaster, from ../shared) and the same crop through the camera pipeline at
three noise levels (color, then the gray path); last row: crops of the real noisy RNI6 photos
bundled in samples/noisy/ (gray scans and photos; no clean version exists). All crops are
shown at 2x, nearest neighbour, so the grain is visible. The PolyU pairs are never shown: their
licence forbids copying them into the project, and a picture of them is a copy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edge_ae.files.imageio import write_image
from training.denoise.camera_pipeline import camera_batch

ROOT = Path(__file__).resolve().parent.parent

CROP = 96
ZOOM = 2
SHOTS = (3e-4, 2e-3, 1e-2)  # shot-noise variance per unit signal: bright light to low light
MCMASTER = ROOT.parent / "shared" / "data" / "denoise" / "val" / "McMaster" / "1.png"
REAL = [("Chupa_Chups", 150, 120), ("Marilyn", 260, 300), ("David_Hilbert", 90, 60), ("Building", 100, 140)]


def tile(image: np.ndarray, label: str) -> np.ndarray:
    big = cv2.resize(image, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
    big = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR) if big.ndim == 2 else big
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    cv2.rectangle(big, (0, 0), (tw + 8, th + 8), (0, 0, 0), -1)
    cv2.putText(big, label, (4, th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return big


def strip(tiles: list[np.ndarray]) -> np.ndarray:
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)


def to_u8(chw: np.ndarray) -> np.ndarray:
    return (np.clip(chw.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8).squeeze()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "camera_noise_examples.png")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not MCMASTER.is_file():
        raise SystemExit(f"camera_noise_examples: needs the clean image {MCMASTER} (../shared)")
    image = cv2.imread(str(MCMASTER), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"camera_noise_examples: cannot read {MCMASTER}")
    clean = image[200 : 200 + CROP, 150 : 150 + CROP]
    rows = []
    for grey in (False, True):
        image = cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY)[:, :, None] if grey else clean
        batch = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        tiles = [tile(image.squeeze(), "clean" + (" (gray)" if grey else ""))]
        for shot in SHOTS:
            noisy, _, level = camera_batch(batch, np.random.default_rng(args.seed), shot=shot, jpeg_quality=(90, 90),
                                           jpeg_probability=1.0)
            tiles.append(tile(to_u8(noisy[0]), f"synthetic, rms {level[0, 0] * 255:.1f}"))
        rows.append(strip(tiles))
    real = []
    for name, y, x in REAL:
        photo = cv2.imread(str(ROOT / "samples" / "noisy" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        if photo is None:
            raise SystemExit(f"camera_noise_examples: cannot read samples/noisy/{name}.png")
        real.append(tile(photo[y : y + CROP, x : x + CROP], f"real: {name}"))
    rows.append(strip(real))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_image(args.out, np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
