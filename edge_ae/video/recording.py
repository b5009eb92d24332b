"""A recording that survives being killed, and its conversion to the container asked for.

OpenCV's FFmpeg writer puts an MP4's index (``moov``) at the end, written on release: a
recording killed with ``kill -9`` or a power cut is unplayable (measured: 0 of 201 frames decode),
and the writer reports no write error at all on a full disk. So ``VideoSink`` records into
Matroska (``NAME.recording.mkv``), which FFmpeg writes as it goes and reads back without an index
(measured: 99 of 101 640x480 frames decode after kill -9, the rest were in FFmpeg's write buffer),
with the codec of the container asked for (MPEG-4 part 2 for .mp4, Motion JPEG for .avi). A clean
stop then copies the encoded packets, without decoding them, into the container asked for
(``remux``): no second encoding, and a count of the packets shows whether every frame reached the
disk. The numbers come from ``python -m tools.record_kill_check``.

FFmpeg's MP4 writer, fed packets rather than frames, leaves out the MPEG-4 decoder configuration
(the VOL header) that players need; ``add_mpeg4_config`` puts it back into the file's ``esds`` box.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from edge_ae.files.native_stderr import NativeStderr

RECORDING_SUFFIX = ".recording.mkv"


# FFmpeg's own complaints while a killed or cut recording is read ("File ended prematurely"):
# the count that follows says what matters, on one line of ours.
_FFMPEG_LINES = (b"[matroska", b"[mov,", b"[mjpeg", b"[mpeg4", b"[avi", b"[mp4")


class RemuxError(Exception):
    """The packets could not all be copied (a full disk, an unreadable recording)."""


def recording_path(target: Path) -> Path:
    """Where a recording to ``target`` is written while it runs: ``out.mp4`` -> ``out.recording.mkv``."""
    return target.with_name(target.stem + RECORDING_SUFFIX)


def count_packets(path: Path) -> int:
    """Encoded frames in a video file that FFmpeg can read back (no decoding)."""
    with NativeStderr() as caught:
        n = _count(path)
    caught.pass_on(drop=_FFMPEG_LINES)
    return n


def _count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    try:
        n = 0
        while cap.isOpened() and cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def remux(source: Path, target: Path, *, fourcc: str, fps: float, size: tuple[int, int]) -> int:
    """Copy every encoded frame of ``source`` into ``target`` (container from its suffix) and
    return how many; raise ``RemuxError`` if ``target`` does not hold them all afterwards."""
    cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    if not cap.isOpened():
        raise RemuxError(f"cannot read {source}")
    extradata = _extradata(cap)
    writer = cv2.VideoWriter(str(target), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*fourcc), fps, size,
                             [cv2.VIDEOWRITER_PROP_RAW_VIDEO, 1])
    if not writer.isOpened():
        cap.release()
        raise RemuxError(f"cannot write {target}")
    copied = 0
    try:
        while True:
            ok, packet = cap.read()
            if not ok:
                break
            writer.set(cv2.VIDEOWRITER_PROP_KEY_FLAG, 1 if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME) else 0)
            writer.write(packet)
            copied += 1
    finally:
        writer.release()
        cap.release()
    if fourcc == "mp4v" and target.suffix.lower() in (".mp4", ".m4v", ".mov") and extradata:
        try:
            add_mpeg4_config(target, extradata)
        except (ValueError, IndexError, struct.error):  # a layout not FFmpeg's: the frames are there anyway
            pass
    found = count_packets(target)
    if found != copied:  # the writer reports no error on a full disk: count what arrived
        raise RemuxError(f"{target} holds {found} of {copied} frames")
    return copied


def _extradata(cap: cv2.VideoCapture) -> bytes:
    index = int(cap.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX))
    ok, data = cap.retrieve(None, index)
    return np.asarray(data, np.uint8).tobytes() if ok and data is not None else b""


# -- MP4 boxes --------------------------------------------------------------------------------
# Boxes whose payload is only child boxes, and where the children start in the others.
_CONTAINERS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"stsd": 8, b"mp4v": 78}
_PATH = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"mp4v", b"esds")


def _boxes(data: bytes, start: int = 0) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the boxes in ``data[start:]`` (32-bit sizes: inside ``moov``)."""
    out, pos = [], start
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8 or pos + size > len(data):
            raise ValueError(f"bad box {kind!r} at {pos}")
        out.append((kind, pos, pos + size))
        pos += size
    return out


def _descriptor(tag: int, body: bytes) -> bytes:
    """An MPEG-4 descriptor, its length in the 4-byte form FFmpeg writes."""
    n = len(body)
    return bytes([tag, 0x80 | (n >> 21) & 0x7F, 0x80 | (n >> 14) & 0x7F, 0x80 | (n >> 7) & 0x7F, n & 0x7F]) + body


def _read_descriptor(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, body, end) of the descriptor at ``pos``."""
    tag, n, pos = data[pos], 0, pos + 1
    for _ in range(4):
        byte = data[pos]
        pos += 1
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, data[pos:pos + n], pos + n


def _with_config(esds: bytes, config: bytes) -> bytes:
    """An ``esds`` box whose DecoderConfigDescriptor carries ``config``; unchanged if it has one."""
    version_flags = esds[8:12]
    tag, es_body, _ = _read_descriptor(esds, 12)
    if tag != 0x03 or es_body[2] != 0:  # an ES_Descriptor with optional fields: not FFmpeg's, leave it
        return esds
    parts, pos = [], 3
    while pos < len(es_body):
        sub_tag, sub_body, pos = _read_descriptor(es_body, pos)
        if sub_tag == 0x04:
            if any(_read_descriptor(sub_body, p)[0] == 0x05 for p in _offsets(sub_body, 13)):
                return esds
            sub_body = sub_body[:13] + _descriptor(0x05, config) + sub_body[13:]
        parts.append(_descriptor(sub_tag, sub_body))
    body = version_flags + _descriptor(0x03, es_body[:3] + b"".join(parts))
    return struct.pack(">I4s", 8 + len(body), b"esds") + body


def _offsets(body: bytes, start: int) -> list[int]:
    out, pos = [], start
    while pos < len(body):
        out.append(pos)
        pos = _read_descriptor(body, pos)[2]
    return out


def _rewrite(box: bytes, path: tuple[bytes, ...], config: bytes) -> bytes:
    """``box`` with the ``esds`` at the end of ``path`` rewritten, every size on the way updated."""
    kind = box[4:8]
    if kind == b"esds":
        return _with_config(box, config)
    skip = 8 + _CONTAINERS[kind]
    children = []
    for child_kind, start, end in _boxes(box, skip):
        child = box[start:end]
        if path and child_kind == path[0]:
            child = _rewrite(child, path[1:], config)
        children.append(child)
    body = box[8:skip] + b"".join(children)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def add_mpeg4_config(path: Path, config: bytes) -> None:
    """Put the MPEG-4 decoder configuration into ``path``'s ``esds`` box. Only the ``moov`` box at
    the end of the file changes (after the frames, so no frame offset moves); a file laid out
    otherwise is left as it is."""
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        pos, moov = 0, None
        while pos + 8 <= size:
            f.seek(pos)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            if box_size == 1:
                box_size = struct.unpack(">Q", f.read(8))[0]
            elif box_size == 0:
                box_size = size - pos
            if kind == b"moov":
                moov = (pos, box_size)
            pos += max(box_size, 8)
        if moov is None or moov[0] + moov[1] != size:
            return
        f.seek(moov[0])
        old = f.read(moov[1])
        new = _rewrite(old, _PATH[1:], config)
        if new != old:
            f.seek(moov[0])
            f.write(new)
            f.truncate()
