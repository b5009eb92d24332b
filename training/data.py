"""Training patches from a folder of clean images, held in memory, cut at random with flips and
rotations. Any folder of PNG/JPEG/TIFF/BMP images works, so users can train on their own photos.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def load_image(path: Path, channels: int) -> np.ndarray:
    """Read as float32 in [0, 1], HxWxC with C == ``channels`` (BGR for color)."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    image = image.astype(np.float32) / 255.0
    return image[:, :, None] if image.ndim == 2 else image


def at_scales(images: list[np.ndarray], scales: list[float]) -> list[np.ndarray]:
    """Each image at each scale (1.0: as it is). Why smaller copies: shrinking a photo by area
    averaging shrinks its own sensor noise and JPEG blocks too, so the network also learns from
    cleaner targets than the training folder's photos are at full size."""
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {scales!r}")
    out = []
    for im in images:
        for s in scales:
            if s == 1.0:
                out.append(im)
                continue
            h, w = (max(1, round(n * s)) for n in im.shape[:2])
            resized = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            out.append(resized.reshape(h, w, im.shape[2]))
    return out


class PatchSampler:
    """Random square patches (N, C, P, P) float32 from in-memory images, with the 8 dihedral
    augmentations (flips and 90-degree rotations)."""

    def __init__(self, images: list[np.ndarray], patch: int, rng: np.random.Generator) -> None:
        self.images = [im for im in images if min(im.shape[:2]) >= patch]
        if not self.images:
            raise ValueError(f"no training image is at least {patch}x{patch}")
        self.patch = patch
        self.rng = rng

    def batch(self, size: int) -> np.ndarray:
        p = self.patch
        out = np.empty((size, self.images[0].shape[2], p, p), np.float32)
        for i in range(size):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - p + 1)
            x = self.rng.integers(im.shape[1] - p + 1)
            crop = im[y : y + p, x : x + p]
            crop = np.rot90(crop, int(self.rng.integers(4)))
            if self.rng.integers(2):
                crop = crop[:, ::-1]
            out[i] = crop.transpose(2, 0, 1)
        return out
