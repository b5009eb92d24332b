"""What an image file's header says about it - width, height and number of frames - read from a
few bytes, before anything is decoded. A 200-byte PNG can claim 100000x100000 pixels: the
decoder would try to allocate 30 GB (or OpenCV aborts with an assertion), so the size is
checked here first.

Returns None for anything not recognised; the caller then relies on the decoder and checks
the decoded size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

# What a header needs of a file: a JPEG's metadata segments (up to 64 KiB each) come before its
# frame header; every other format's header is within the first 64 KiB.
HEAD_BYTES = 2**20
MAX_TIFF_PAGES = 100_000  # a loop guard for a corrupt IFD chain that points back on itself


@dataclass(frozen=True)
class Header:
    format: str
    width: int
    height: int
    frames: int = 1  # pages of a TIFF, frames of an animated PNG / WebP (GIF: not counted here)
    gray_alpha: bool = False  # a PNG of color type 4: OpenCV decodes it as BGRA
    largest: int = 0  # pixels of the largest page of a TIFF whose first page is smaller

    @property
    def pixels(self) -> int:
        return max(self.width * self.height, self.largest)


def read_header(file: bytes | np.ndarray) -> Header | None:
    """The header of a PNG, JPEG, TIFF, BMP, WebP, GIF or PNM file: ``file`` holds its bytes (the
    first ``HEAD_BYTES`` are enough, except for a TIFF, whose page directories can be anywhere:
    give a TIFF whole, e.g. as ``np.memmap``, which is read only where the directories are)."""
    data = bytes(file[:65536])
    try:
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            # A view, never a copy: for a TIFF the caller passes a memory map of the whole file.
            return _tiff(file.data if isinstance(file, np.ndarray) else memoryview(file), data[:2])
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(data)
        if data.startswith(b"\xff\xd8"):
            # A phone's EXIF, ICC profile and preview images can put the frame header past 64 KiB.
            return _jpeg(bytes(file[:HEAD_BYTES]))
        if data.startswith(b"BM"):
            return _bmp(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack_from("<HH", data, 6)
            return Header("GIF", w, h)
        if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"123456":
            return _pnm(data)
    except (struct.error, ValueError, IndexError):
        return None  # truncated or garbled: the decoder will say so
    return None


def _png(data: bytes) -> Header | None:
    if data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack_from(">II", data, 16)
    colour_type = data[25]
    frames = 1
    pos = 8
    while pos + 8 <= len(data):  # an animation control chunk (APNG) comes before the first IDAT
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"acTL":
            frames = struct.unpack_from(">I", data, pos + 8)[0]
            break
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return Header("PNG", w, h, frames=max(frames, 1), gray_alpha=colour_type == 4)


# Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> Header | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker in _SOF:
            h, w = struct.unpack_from(">HH", data, pos + 5)
            return Header("JPEG", w, h)
        pos += 2 + length
    return None


def _tiff(data: memoryview, magic: bytes) -> Header | None:
    order = "<" if magic == b"II" else ">"
    offset = struct.unpack_from(order + "I", data, 4)[0]
    first: tuple[int, int] | None = None
    largest = 0
    pages = 0
    seen: set[int] = set()
    while offset and offset not in seen and len(seen) < MAX_TIFF_PAGES and offset + 2 <= len(data):
        seen.add(offset)
        count = struct.unpack_from(order + "H", data, offset)[0]
        tags: dict[int, int] = {}
        for i in range(count):
            tag, kind, _n = struct.unpack_from(order + "HHI", data, offset + 2 + 12 * i)
            if kind == 3:  # SHORT
                tags[tag] = struct.unpack_from(order + "H", data, offset + 2 + 12 * i + 8)[0]
            elif kind == 4:  # LONG
                tags[tag] = struct.unpack_from(order + "I", data, offset + 2 + 12 * i + 8)[0]
        w, h = tags.get(256, 0), tags.get(257, 0)
        if not tags.get(254, 0) & 1:  # NewSubfileType bit 0: a reduced-size copy (thumbnail), not a page
            pages += 1
            first = first or (w, h)
            largest = max(largest, w * h)
        offset = struct.unpack_from(order + "I", data, offset + 2 + 12 * count)[0]
    if first is None:
        return None
    return Header("TIFF", first[0], first[1], frames=pages, largest=largest)


def _bmp(data: bytes) -> Header | None:
    dib = struct.unpack_from("<I", data, 14)[0]
    if dib == 12:
        w, h = struct.unpack_from("<HH", data, 18)
    else:
        w, h = struct.unpack_from("<ii", data, 18)
    return Header("BMP", abs(w), abs(h))


def _webp(data: bytes) -> Header | None:
    kind = data[12:16]
    if kind == b"VP8 ":
        w, h = struct.unpack_from("<HH", data, 26)
        return Header("WebP", w & 0x3FFF, h & 0x3FFF)
    if kind == b"VP8L":
        bits = struct.unpack_from("<I", data, 21)[0]
        return Header("WebP", 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
    if kind == b"VP8X":
        animated = bool(data[20] & 0x02)
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        # An animated WebP's frame count needs its ANMF chunks counted; 2 stands for "more than one".
        return Header("WebP", w, h, frames=2 if animated else 1)
    return None


def _pnm(data: bytes) -> Header | None:
    tokens: list[bytes] = []
    for line in data[2:512].splitlines():
        tokens += line.split(b"#")[0].split()
        if len(tokens) >= 2:
            return Header("PNM", int(tokens[0]), int(tokens[1]))
    return None
