"""TIFF tag directories (IFDs), as both TIFF files and EXIF blocks store them: read one with its
sub-directories (EXIF, GPS, interoperability), patch a value in place, and write a directory
anew at a given place of a file.

Only what ``metadata.py`` needs: an EXIF block is patched in place (its maker notes, which may
hold offsets of their own, stay valid); a TIFF written by OpenCV gets a new first directory with
the source's descriptive tags and EXIF/GPS directories appended (their maker notes are copied as
bytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Bytes per value of each TIFF type; the unit swapped when the byte order changes (a RATIONAL is
# two LONGs). Entries of other types are dropped.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
SWAP_UNITS = {3: 2, 4: 4, 5: 4, 8: 2, 9: 4, 10: 4, 11: 4, 12: 8, 13: 4}
EXIF_IFD, GPS_IFD, INTEROP_IFD = 34665, 34853, 40965
SUB_IFDS = (EXIF_IFD, GPS_IFD, INTEROP_IFD)
ORIENTATION = 274
PIXEL_X, PIXEL_Y = 40962, 40963  # in the EXIF directory
MAX_ENTRIES = 1000  # a loop guard for a corrupt directory
MAGIC = {"<": b"II*\x00", ">": b"MM\x00*"}


@dataclass
class Entry:
    tag: int
    kind: int
    count: int
    value: bytes  # count values of the type, in the directory's byte order
    sub: list[Entry] | None = field(default=None)  # the directory a pointer tag points to


def byte_order(data: bytes | bytearray | memoryview) -> str | None:
    head = bytes(data[:4])
    return "<" if head == MAGIC["<"] else ">" if head == MAGIC[">"] else None


def read_ifd(data: bytes | memoryview, offset: int, order: str, *, depth: int = 0) -> tuple[list[Entry], int]:
    """The directory at ``offset`` (sub-directories followed up to two levels) and the offset of
    the next one (0: none). Entries pointing outside ``data`` are dropped."""
    (count,) = struct.unpack_from(order + "H", data, offset)
    entries = []
    for i in range(min(count, MAX_ENTRIES)):
        at = offset + 2 + 12 * i
        tag, kind, n = struct.unpack_from(order + "HHI", data, at)
        size = TYPE_SIZES.get(kind, 0) * n
        if not size:
            continue
        where = at + 8 if size <= 4 else struct.unpack_from(order + "I", data, at + 8)[0]
        if where + size > len(data):
            continue
        entry = Entry(tag, kind, n, bytes(data[where : where + size]))
        if tag in SUB_IFDS and kind in (4, 13) and n == 1 and depth < 2:
            try:
                entry.sub = read_ifd(data, struct.unpack_from(order + "I", entry.value)[0], order, depth=depth + 1)[0]
            except struct.error:
                continue
        entries.append(entry)
    (following,) = struct.unpack_from(order + "I", data, offset + 2 + 12 * count)
    return entries, following


def swapped(entries: list[Entry], order: str, to: str) -> list[Entry]:
    """The entries with their values in byte order ``to``."""
    if order == to:
        return entries
    out = []
    for e in entries:
        unit = SWAP_UNITS.get(e.kind, 1)
        value = e.value if unit == 1 else b"".join(e.value[i : i + unit][::-1] for i in range(0, len(e.value), unit))
        out.append(Entry(e.tag, e.kind, e.count, value, None if e.sub is None else swapped(e.sub, order, to)))
    return out


def write_ifd(entries: list[Entry], order: str, start: int, *, following: int = 0) -> bytes:
    """The directory, its values and its sub-directories as bytes to be placed at offset
    ``start`` of a TIFF structure (``start`` even), pointing on to ``following``."""
    entries = sorted(entries, key=lambda e: e.tag)
    table = bytearray(struct.pack(order + "H", len(entries)))
    area = bytearray()
    data_at = start + 2 + 12 * len(entries) + 4
    for e in entries:
        if e.sub is not None:
            sub_at = data_at + len(area)
            area += write_ifd(e.sub, order, sub_at)
            table += struct.pack(order + "HHII", e.tag, 4, 1, sub_at)
        elif len(e.value) <= 4:
            table += struct.pack(order + "HHI", e.tag, e.kind, e.count) + e.value.ljust(4, b"\x00")
        else:
            table += struct.pack(order + "HHII", e.tag, e.kind, e.count, data_at + len(area))
            area += e.value
        if len(area) % 2:
            area += b"\x00"  # values start on a word boundary
    table += struct.pack(order + "I", following)
    return bytes(table + area)


def reset_orientation(block: bytearray, *, transposed: bool) -> None:
    """In an EXIF block (a TIFF structure): Orientation set to 1 (the pixels are already turned),
    the thumbnail's directory unlinked (it shows the unturned image), and with ``transposed`` the
    EXIF pixel dimensions swapped. Everything else stays byte for byte."""
    order = byte_order(block)
    if order is None:
        return
    (first,) = struct.unpack_from(order + "I", block, 4)
    (count,) = struct.unpack_from(order + "H", block, first)
    for i in range(min(count, MAX_ENTRIES)):
        at = first + 2 + 12 * i
        tag, kind, _ = struct.unpack_from(order + "HHI", block, at)
        if tag == ORIENTATION and kind == 3:
            struct.pack_into(order + "H", block, at + 8, 1)
        elif tag == EXIF_IFD and transposed:
            _swap_dimensions(block, struct.unpack_from(order + "I", block, at + 8)[0], order)
    struct.pack_into(order + "I", block, first + 2 + 12 * count, 0)  # no thumbnail directory


def _swap_dimensions(block: bytearray, offset: int, order: str) -> None:
    (count,) = struct.unpack_from(order + "H", block, offset)
    found = {}
    for i in range(min(count, MAX_ENTRIES)):
        at = offset + 2 + 12 * i
        tag = struct.unpack_from(order + "H", block, at)[0]
        if tag in (PIXEL_X, PIXEL_Y):
            found[tag] = at
    if len(found) == 2:  # type, count and (inline) value change places; the tags stay sorted
        x, y = found[PIXEL_X], found[PIXEL_Y]
        block[x + 2 : x + 12], block[y + 2 : y + 12] = bytes(block[y + 2 : y + 12]), bytes(block[x + 2 : x + 12])


def orientation_of(entries: list[Entry], order: str) -> int:
    for e in entries:
        if e.tag == ORIENTATION and e.kind == 3:
            value = struct.unpack_from(order + "H", e.value)[0]
            return value if 1 <= value <= 8 else 1
    return 1
