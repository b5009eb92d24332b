"""Reading and writing image files safely.

* Read with OpenCV, unchanged (bit depth and alpha kept); anything unreadable becomes an
  ``ImageError`` with the reason, never a ``None`` that fails later.
* The header is read before decoding: an image over the pixel limit (``DEFAULT_MAX_PIXELS``,
  100 megapixels unless raised) and a file of several frames (animated GIF / PNG / WebP,
  multi-page TIFF) are refused with one line, never decoded; so are float pixels that are NaN
  or infinite.
* Write to a temporary file next to the target, then rename it into place: a killed run or a
  full disk never leaves a half-written image, and an existing file is replaced only whole.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from edge_ae.errors import ImageError
from edge_ae.files.atomic import write_bytes_atomic
from edge_ae.files.headers import HEAD_BYTES, Header, read_header
from edge_ae.files.metadata import Metadata, embed, orient, read_metadata
from edge_ae.files.native_stderr import NativeStderr

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".ppm", ".pnm")
EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".bmp", ".webp")
# 100 megapixels: a 12000x8000 photo passes; decoding it takes ~300 MB (8-bit BGR), denoising
# in tiles about 1 GB more. Raise with ``max_pixels`` (``--max-pixels`` on the command line).
DEFAULT_MAX_PIXELS = 100_000_000
# The first bytes of a file, where every header but a TIFF's is.
HEADER_BYTES = HEAD_BYTES
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
# The most bytes a pixel takes in each format: 16-bit RGBA is 8 uncompressed, and a poor encoder
# can make that a little more (deflate's fixed codes: 9 bits a byte; a filter byte per PNG row);
# TIFF and PNM can hold 32-bit float or 64-bit samples, or ASCII text. The bound of
# ``_check_size``; METADATA_BYTES is room for EXIF, ICC profiles, text chunks, thumbnails.
MAX_BYTES_PER_PIXEL = {"PNG": 10, "JPEG": 10, "BMP": 10, "WebP": 10, "GIF": 10}
ANY_BYTES_PER_PIXEL = 32
METADATA_BYTES = 64 * 2**20
# What decoders print themselves about a file the caller reports anyway.
_LIBRARY_LINES = (b"libpng ", b"Corrupt JPEG data", b"Premature end of JPEG", b"TIFFRead", b"TIFFFetch")


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f} megapixels" if mp >= 10 else f"{mp:.2g} megapixels"


def _check_header(path: Path, header: Header | None, max_pixels: int | None) -> None:
    if header is None:
        return
    if max_pixels is not None and header.pixels > max_pixels:
        raise ImageError(f"{path}: {header.format} header says {header.width}x{header.height} "
                         f"({_megapixels(header.pixels)}), over the limit of {_megapixels(max_pixels)} "
                         "(--max-pixels raises it)")
    if header.frames > 1:
        raise ImageError(f"{path}: {header.frames if header.format != 'WebP' else 'several'} frames "
                         f"({'multi-page TIFF' if header.format == 'TIFF' else 'animation'}); edge-ae reads single "
                         "images only and would write the first frame alone: split it into one file per frame")


def _whole_tiff(path: Path) -> np.ndarray | bytes:
    """A TIFF's bytes for its header, mapped rather than read (its page directories can be anywhere)."""
    try:
        return np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError):
        return b""  # unreadable now: the read below reports it


def _check_size(path: Path, size: int, header: Header | None, max_pixels: int | None) -> None:
    """Refuse a file larger than any image within the limit can be: what its header's size (or,
    with no header read, the pixel limit) takes at the format's most bytes per pixel, plus room for
    metadata."""
    if max_pixels is None:
        return
    per_pixel = MAX_BYTES_PER_PIXEL.get(header.format, ANY_BYTES_PER_PIXEL) if header is not None else ANY_BYTES_PER_PIXEL
    pixels = header.pixels if header is not None else max_pixels
    most = pixels * per_pixel + METADATA_BYTES
    if size > most:
        what = f"a {header.width}x{header.height} {header.format}" if header is not None else "an image within the limit"
        raise ImageError(f"{path}: file of {size / 2**20:.0f} MB, more than {what} can take ({most / 2**20:.0f} MB at "
                         f"most): not read (corrupt or not an image; --max-pixels raises the limit)")


def _frames_of_gif(path: Path) -> int:
    try:
        return int(cv2.imcount(str(path)))
    except cv2.error:
        return 1  # the decoder will report what is wrong


def _decode(path: Path, buf: np.ndarray) -> np.ndarray | None:
    """``cv2.imdecode`` with OpenCV's own log and the C libraries' stderr lines held back: the
    caller reports a file that fails in one line of its own."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    image = None
    try:
        with NativeStderr() as caught:
            try:
                image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            except cv2.error as exc:
                raise ImageError(f"{path}: cannot decode ({str(exc).strip().splitlines()[-1]})") from None
    finally:
        cv2.utils.logging.setLogLevel(level)
        failed = image is None or image.size == 0
        caught.pass_on(drop=_LIBRARY_LINES if failed else ())
    return image


def read_image_and_header(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
                          ) -> tuple[np.ndarray, Header | None]:
    """``read_image``, and what the file's header said (None if not recognised)."""
    image, header, _ = _read(Path(path), max_pixels, metadata=False)
    return image, header


def read_photo(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> tuple[np.ndarray, Header | None, Metadata]:
    """``read_image_and_header`` for a photo to be written back: the pixels turned upright as its
    EXIF orientation says, and its metadata (EXIF, ICC profile) for ``write_image``."""
    image, header, metadata = _read(Path(path), max_pixels, metadata=True)
    if header is not None and header.format == "TIFF":  # OpenCV's TIFF decoder turns the pixels itself
        return image, header, metadata.upright()
    return orient(image, metadata.orientation), header, metadata.upright()


def _read(path: Path, max_pixels: int | None, *, metadata: bool) -> tuple[np.ndarray, Header | None, Metadata]:
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1 (or None for no limit), got {max_pixels}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageError(f"{path}: empty file")
    # The header and the file's size are checked before the file is read: a 3 GB PNG is refused
    # from its first bytes, never read whole into memory first.
    header = read_header(_whole_tiff(path) if head[:4] in TIFF_MAGIC else head)
    _check_header(path, header, max_pixels)
    _check_size(path, size, header, max_pixels)
    if header is not None and header.format == "GIF" and (frames := _frames_of_gif(path)) > 1:
        _check_header(path, Header("GIF", header.width, header.height, frames=frames), max_pixels)
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    image = _decode(path, buf)
    found = read_metadata(buf, header.format if header is not None else None) if metadata else Metadata()
    del buf  # the file's bytes, as large as the image for a PNG of a noisy photo
    if image is None or image.size == 0:
        raise ImageError(f"{path}: not a readable image (corrupt or unsupported format)")
    pixels = image.shape[0] * image.shape[1]
    if max_pixels is not None and pixels > max_pixels:  # a format whose header was not read above
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} ({_megapixels(pixels)}) is over the limit of "
                         f"{_megapixels(max_pixels)} (--max-pixels raises it)")
    if image.dtype == np.float64:
        image = image.astype(np.float32)
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(f"{path}: unsupported pixel type {image.dtype} (expected 8/16-bit or float32)")
    if image.dtype == np.float32:
        bad = image.size - int(np.count_nonzero(np.isfinite(image)))
        if bad:
            raise ImageError(f"{path}: {bad} pixel value(s) are NaN or infinite: expected finite numbers "
                             "(0.0-1.0 for float images)")
    return image, header, found


def read_image(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as HxW / HxWxC (BGR[A]) uint8, uint16 or float32.

    ``max_pixels`` (None: OpenCV's own limit only) is checked against the header before decoding.
    A gray+alpha PNG comes back as BGRA (the runtime's image contract has no two-plane images);
    ``write_image(..., gray_alpha=True)`` writes it back as gray+alpha."""
    return read_image_and_header(path, max_pixels=max_pixels)[0]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_gray_alpha_png(image: np.ndarray) -> bytes:
    """A PNG of color type 4 (gray + alpha) from HxWx2 uint8/uint16 (OpenCV writes 1, 3 or 4
    channels only)."""
    if image.ndim != 3 or image.shape[2] != 2 or image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"gray+alpha PNG needs HxWx2 uint8 or uint16, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    depth = 16 if image.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(image.astype(">u2") if depth == 16 else image).view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 4, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def write_image(path: str | Path, image: np.ndarray, *, jpeg_quality: int = 95, gray_alpha: bool = False,
                metadata: Metadata | None = None) -> None:
    """Write ``image`` to ``path`` atomically, in the format its suffix names.

    ``metadata`` (from ``read_photo``): EXIF and ICC profile, kept in a JPEG, PNG, TIFF or WebP.

    ``gray_alpha``: a BGRA image is written as gray+alpha (PNG color type 4), as it was read;
    HxWx2 (gray, alpha) is accepted too."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in EIGHT_BIT_ONLY and image.dtype != np.uint8:
        raise ImageError(f"{path}: {suffix} holds 8-bit images only, got {image.dtype}")
    if gray_alpha and suffix == ".png" and image.ndim == 3 and image.shape[2] in (2, 4):
        if image.shape[2] == 4:
            gray = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_BGR2GRAY)
            image = np.dstack([gray, image[:, :, 3]])
        write_bytes_atomic(path, embed(memoryview(encode_gray_alpha_png(image)), suffix, metadata or Metadata(),
                                       image.shape))
        return
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
    # The encoder's buffer itself, with the metadata around it: no copy of a large file.
    write_bytes_atomic(path, embed(buf.data.cast("B"), suffix, metadata or Metadata(), image.shape))
