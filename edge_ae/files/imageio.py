"""Reading and writing image files safely.

* Read with OpenCV, unchanged (bit depth and alpha kept); anything unreadable becomes an
  ``ImageError`` with the reason, never a ``None`` that fails later.
* Write to a temporary file next to the target, then rename it into place: a killed run or a
  full disk never leaves a half-written image, and an existing file is replaced only whole.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_ae.errors import ImageError
from edge_ae.files.atomic import write_bytes_atomic

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".ppm", ".pnm")
EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".bmp", ".webp")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as HxW / HxWxC (BGR[A]) uint8, uint16 or float32."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError(f"{path}: not a readable image (corrupt or unsupported format)")
    if image.dtype == np.float64:
        image = image.astype(np.float32)
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(f"{path}: unsupported pixel type {image.dtype} (expected 8/16-bit or float32)")
    return image


def write_image(path: str | Path, image: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Write ``image`` to ``path`` atomically, in the format its suffix names."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in EIGHT_BIT_ONLY and image.dtype != np.uint8:
        raise ImageError(f"{path}: {suffix} holds 8-bit images only, got {image.dtype}")
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(jpeg_quality)]
    try:
        ok, buf = cv2.imencode(suffix, image, params)
    except cv2.error as exc:
        raise ImageError(f"{path}: cannot encode as {suffix} ({str(exc).strip().splitlines()[-1]})") from None
    if not ok:
        raise ImageError(f"{path}: cannot encode as {suffix}")
    write_bytes_atomic(path, buf.tobytes())
