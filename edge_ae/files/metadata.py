"""What a photo carries besides its pixels - EXIF (camera, date, exposure, GPS, orientation) and
its ICC color profile - read from the input file and written into the output in the formats that
carry them (JPEG, PNG, TIFF, WebP). OpenCV reads and writes pixels only.

Orientation: a phone stores a portrait photo as landscape pixels plus EXIF orientation 6. The
pixels are turned on read (OpenCV's unchanged read ignores the tag) and the output's tag is set
to 1, so the output shows upright in every viewer, including the many that ignore the tag in a
PNG, TIFF or WebP. The EXIF thumbnail is dropped then (it shows the unturned image).

The pixels are written by OpenCV as before (16-bit PNG and TIFF stay exact); the metadata is then
added to the encoded bytes: JPEG APP1/APP2 segments, PNG eXIf/iCCP chunks, WebP's extended
format (VP8X with ICCP/EXIF chunks), a new first directory for a TIFF. EXIF blocks are copied
byte for byte (only the orientation, the thumbnail link and, for a quarter turn, the EXIF pixel
dimensions change), so maker notes stay valid; into a TIFF they are copied as tags. XMP is not
carried over.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from edge_ae.files import tiff_tags as tt

ICC_TAG = 34675
# First-directory tags of a TIFF that describe the photo rather than lay out its pixels.
DESCRIPTIVE = {270, 271, 272, 274, 305, 306, 315, 33432, tt.EXIF_IFD, tt.GPS_IFD}
JPEG_SEGMENT = 65533  # the most payload bytes of a JPEG marker segment
ICC_CHUNK = JPEG_SEGMENT - 14  # less "ICC_PROFILE\0", sequence number and count
MAX_ICC = 16 * 2**20  # a compressed profile that inflates beyond this is not kept


@dataclass(frozen=True)
class Metadata:
    exif: bytes | None = None  # an EXIF block: a TIFF structure, without JPEG's "Exif\0\0" prefix
    icc: bytes | None = None  # the ICC profile
    orientation: int = 1  # what the file's EXIF said (1-8)

    def upright(self) -> Metadata:
        """The metadata of the pixels once ``orient`` has turned them."""
        if self.exif is None or self.orientation == 1:
            return Metadata(self.exif, self.icc)
        block = bytearray(self.exif)
        tt.reset_orientation(block, transposed=self.orientation >= 5)
        return Metadata(bytes(block), self.icc)


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF ``orientation`` (1-8) upright."""
    flips = {1: image, 2: image[:, ::-1], 3: image[::-1, ::-1], 4: image[::-1],
             5: image.swapaxes(0, 1), 6: image[::-1].swapaxes(0, 1), 7: image[::-1, ::-1].swapaxes(0, 1),
             8: image[:, ::-1].swapaxes(0, 1)}
    turned = flips.get(orientation, image)
    return turned if turned is image else np.ascontiguousarray(turned)


def read_metadata(data: bytes | memoryview | np.ndarray, fmt: str | None) -> Metadata:
    """EXIF, ICC profile and orientation of a file of format ``fmt`` (a ``Header.format``) whose
    bytes are ``data``; empty for anything unreadable (the pixels matter more)."""
    view = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else data.data.cast("B")
    try:
        exif, icc = {"JPEG": _jpeg, "PNG": _png, "WebP": _webp, "TIFF": _tiff}.get(fmt or "", _none)(view)
    except (struct.error, ValueError, IndexError, zlib.error):
        return Metadata()
    orientation = 1
    if exif is not None:
        order = tt.byte_order(exif)
        try:
            orientation = tt.orientation_of(tt.read_ifd(exif, struct.unpack_from(order + "I", exif, 4)[0], order)[0],
                                            order) if order else 1
        except (struct.error, IndexError):
            exif = None
    return Metadata(exif, icc, orientation)


def _none(_: memoryview) -> tuple[None, None]:
    return None, None


def _jpeg(data: memoryview) -> tuple[bytes | None, bytes | None]:
    exif, icc, pos = None, {}, 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # the image data starts: no more metadata segments
            break
        if marker == 0xFF or marker in (0x01, *range(0xD0, 0xD8)):
            pos += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        payload = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and exif is None and bytes(payload[:6]) == b"Exif\x00\x00":
            exif = bytes(payload[6:])
        elif marker == 0xE2 and bytes(payload[:12]) == b"ICC_PROFILE\x00" and len(payload) > 14:
            icc[payload[12]] = bytes(payload[14:])
        pos += 2 + length
    return exif, b"".join(icc[k] for k in sorted(icc)) or None


def _png(data: memoryview) -> tuple[bytes | None, bytes | None]:
    exif = icc = None
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"eXIf":
            exif = bytes(body)
        elif kind == b"iCCP":
            name_end = bytes(body[:80]).index(b"\x00")
            inflate = zlib.decompressobj()
            icc = inflate.decompress(bytes(body[name_end + 2 :]), MAX_ICC)
        elif kind == b"IEND":
            break
        pos += 12 + length
    return exif, icc


def _webp(data: memoryview) -> tuple[bytes | None, bytes | None]:
    exif = icc = None
    for kind, body in _riff_chunks(data):
        if kind == b"ICCP":
            icc = bytes(body)
        elif kind == b"EXIF":
            exif = bytes(body[6:]) if bytes(body[:6]) == b"Exif\x00\x00" else bytes(body)
    return exif, icc


def _riff_chunks(data: memoryview) -> list[tuple[bytes, memoryview]]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, size = bytes(data[pos : pos + 4]), struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _tiff(data: memoryview) -> tuple[bytes | None, bytes | None]:
    order = tt.byte_order(data)
    if order is None:
        return None, None
    entries, _ = tt.read_ifd(data, struct.unpack_from(order + "I", data, 4)[0], order)
    icc = next((e.value for e in entries if e.tag == ICC_TAG), None)
    described = [e for e in entries if e.tag in DESCRIPTIVE]
    if not described:
        return None, icc
    return tt.MAGIC[order] + struct.pack(order + "I", 8) + tt.write_ifd(described, order, 8), icc


def embed(encoded: memoryview, suffix: str, metadata: Metadata, shape: tuple[int, ...]) -> list[bytes | memoryview]:
    """The parts of the file: OpenCV's ``encoded`` bytes (format ``suffix``, image ``shape``) with
    ``metadata`` added, never copied whole. Formats without a place for it come back unchanged."""
    if metadata.exif is None and metadata.icc is None:
        return [encoded]
    if suffix in (".jpg", ".jpeg"):
        return _into_jpeg(encoded, metadata)
    if suffix == ".png":
        return _into_png(encoded, metadata)
    if suffix == ".webp":
        return _into_webp(encoded, metadata, shape)
    if suffix in (".tif", ".tiff"):
        return _into_tiff(encoded, metadata)
    return [encoded]


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _into_jpeg(encoded: memoryview, metadata: Metadata) -> list[bytes | memoryview]:
    pos = 2
    if encoded[2:4] == b"\xff\xe0":  # JFIF's APP0 stays first
        pos = 4 + struct.unpack_from(">H", encoded, 4)[0]
    added = b""
    if metadata.exif is not None and len(metadata.exif) + 6 <= JPEG_SEGMENT:
        added += _segment(0xE1, b"Exif\x00\x00" + metadata.exif)
    if metadata.icc is not None:
        chunks = [metadata.icc[i : i + ICC_CHUNK] for i in range(0, len(metadata.icc), ICC_CHUNK)]
        if len(chunks) <= 255:
            added += b"".join(_segment(0xE2, b"ICC_PROFILE\x00" + bytes([i + 1, len(chunks)]) + chunk)
                              for i, chunk in enumerate(chunks))
    return [encoded[:pos], added, encoded[pos:]]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _into_png(encoded: memoryview, metadata: Metadata) -> list[bytes | memoryview]:
    after_ihdr = 8 + 12 + struct.unpack_from(">I", encoded, 8)[0]
    added = b""
    if metadata.icc is not None:  # iCCP before any PLTE or IDAT
        added += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(metadata.icc, 9))
    if metadata.exif is not None:
        added += _png_chunk(b"eXIf", metadata.exif)
    return [encoded[:after_ihdr], added, encoded[after_ihdr:]]


def _riff_chunk(kind: bytes, body: bytes | memoryview) -> bytes:
    return kind + struct.pack("<I", len(body)) + bytes(body) + (b"\x00" if len(body) & 1 else b"")


def _into_webp(encoded: memoryview, metadata: Metadata, shape: tuple[int, ...]) -> list[bytes | memoryview]:
    chunks = _riff_chunks(encoded)
    if not chunks or any(kind in (b"ANIM", b"ICCP", b"EXIF") for kind, _ in chunks):
        return [encoded]
    flags = (0x20 if metadata.icc is not None else 0) | (0x08 if metadata.exif is not None else 0)
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= flags
        chunks = chunks[1:]
    else:
        kind, body = chunks[0]
        alpha = kind == b"VP8L" and len(body) >= 5 and bool(body[4] & 0x10)  # alpha_is_used, bit 28 of the header
        h, w = shape[:2]
        header = bytearray(struct.pack("<B3x", flags | (0x10 if alpha else 0)) + (w - 1).to_bytes(3, "little")
                           + (h - 1).to_bytes(3, "little"))
    parts: list[bytes | memoryview] = [_riff_chunk(b"VP8X", bytes(header))]
    if metadata.icc is not None:
        parts.append(_riff_chunk(b"ICCP", metadata.icc))
    for kind, body in chunks:  # the image chunks as they are (a lossless one is most of the file)
        parts += [kind + struct.pack("<I", len(body)), body]
        if len(body) & 1:
            parts.append(b"\x00")
    if metadata.exif is not None:
        parts.append(_riff_chunk(b"EXIF", metadata.exif))
    size = 4 + sum(len(p) for p in parts)
    return [b"RIFF" + struct.pack("<I", size) + b"WEBP", *parts]


def _into_tiff(encoded: memoryview, metadata: Metadata) -> list[bytes | memoryview]:
    order = tt.byte_order(encoded)
    if order is None:  # BigTIFF: left as OpenCV wrote it
        return [encoded]
    entries, following = tt.read_ifd(encoded, struct.unpack_from(order + "I", encoded, 4)[0], order)
    present = {e.tag for e in entries}
    if metadata.icc is not None and ICC_TAG not in present:
        entries.append(tt.Entry(ICC_TAG, 7, len(metadata.icc), metadata.icc))
    exif_order = tt.byte_order(metadata.exif) if metadata.exif is not None else None
    if metadata.exif is not None and exif_order is not None:
        described, _ = tt.read_ifd(metadata.exif, struct.unpack_from(exif_order + "I", metadata.exif, 4)[0], exif_order)
        entries += [e for e in tt.swapped(described, exif_order, order)
                    if e.tag in DESCRIPTIVE and e.tag not in present and e.tag != tt.ORIENTATION]
    start = len(encoded) + (len(encoded) & 1)
    directory = tt.write_ifd(entries, order, start, following=following)
    header = tt.MAGIC[order] + struct.pack(order + "I", start)
    return [header, encoded[8:], b"\x00" * (start - len(encoded)), directory]
