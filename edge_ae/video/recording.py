"""A recording that survives being killed, and its joining into the container asked for.

OpenCV's FFmpeg writer puts an MP4's index (``moov``) at the end, written on release: a
recording killed with ``kill -9`` or a power cut is unplayable (measured: 0 of 100 frames
decode), and the writer reports no write error at all on a full disk. Whatever the container,
it also holds 256 KiB in memory before writing: minutes of a still scene at a low bit rate. So
``Segments`` records in short files (``out.mp4.recording/000001.mkv``: Matroska, with the codec of
the container asked for), each closed (written out, playable) after ``seconds``: a kill loses
the segment in progress only. Each closed segment's frames are counted on disk, so a full disk
is found within a segment. A clean stop copies the encoded packets of every segment, without
decoding them, into the one file asked for (``join``). The numbers come from
``python -m tools.record_kill_check``.

FFmpeg's writers, fed packets rather than frames, leave out the MPEG-4 decoder configuration (the
VOL header) that decoders need: ``add_mpeg4_config`` puts it into an MP4's ``esds`` box, and a
Matroska or AVI file gets it in front of its first frame, where MPEG-4 decoders also read it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from edge_ae.files.native_stderr import NativeStderr

RECORDING_SUFFIX = ".recording"  # a folder of segments beside the video
SEGMENT_SUFFIX = ".mkv"


# FFmpeg's own complaints while a killed or cut recording is read ("File ended prematurely"):
# the count that follows says what matters, on one line of ours.
_FFMPEG_LINES = (b"[matroska", b"[mov,", b"[mjpeg", b"[mpeg4", b"[avi", b"[mp4")


class RemuxError(Exception):
    """The packets could not all be copied (a full disk, an unreadable recording)."""


def recording_path(target: Path) -> Path:
    """Where a recording to ``target`` is kept while it runs: ``out.mp4`` -> ``out.mp4.recording/``."""
    return target.with_name(target.name + RECORDING_SUFFIX)


def segments_of(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"[0-9]*{SEGMENT_SUFFIX}"))


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


class Segments:
    """Frames written to ``folder`` in segments of ``frames_per_segment``; ``put`` raises
    ``RemuxError`` when a closed segment holds fewer frames than were written to it (a full disk)."""

    def __init__(self, folder: Path, *, fourcc: str, fps: float, size: tuple[int, int], frames_per_segment: int) -> None:
        self.folder, self.fourcc, self.fps, self.size = folder, fourcc, fps, size
        self.frames_per_segment = max(1, frames_per_segment)
        self.folder.mkdir(exist_ok=True)
        self.written = 0  # frames in closed segments, counted on disk
        self._writer: cv2.VideoWriter | None = None
        self._path: Path | None = None
        self._in_segment = 0
        self._index = 0

    def start(self) -> None:
        """Open the first segment now (``put`` would on the first frame)."""
        if self._writer is None:
            self._open()

    def put(self, frame: np.ndarray) -> None:
        self.start()
        assert self._writer is not None
        self._writer.write(frame)
        self._in_segment += 1
        if self._in_segment >= self.frames_per_segment:
            self.close_segment()

    def _open(self) -> None:
        self._index += 1
        self._path = self.folder / f"{self._index:06d}{SEGMENT_SUFFIX}"
        writer = cv2.VideoWriter(str(self._path), cv2.VideoWriter.fourcc(*self.fourcc), self.fps, self.size)
        if not writer.isOpened():
            writer.release()
            raise RemuxError(f"this OpenCV build cannot write {self.fourcc} video")
        self._writer, self._in_segment = writer, 0

    def close_segment(self) -> None:
        """Write out the segment in progress and check that every frame of it is on disk."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.release()
        assert self._path is not None
        found = count_packets(self._path)
        self.written += min(found, self._in_segment)
        if found < self._in_segment:
            raise RemuxError(f"{self._path.name} holds {found} of its {self._in_segment} frames")


def join(sources: list[Path], target: Path, *, fourcc: str, fps: float, size: tuple[int, int]) -> int:
    """Copy every encoded frame of ``sources``, in order, into ``target`` (container from its
    suffix) and return how many; raise ``RemuxError`` if ``target`` does not hold them all."""
    writer = cv2.VideoWriter(str(target), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*fourcc), fps, size,
                             [cv2.VIDEOWRITER_PROP_RAW_VIDEO, 1])
    if not writer.isOpened():
        raise RemuxError(f"cannot write {target}")
    mp4 = target.suffix.lower() in (".mp4", ".m4v", ".mov")
    config = b""
    copied = 0
    try:
        with NativeStderr() as caught:
            for source in sources:
                cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
                try:
                    extradata = _extradata(cap) if cap.isOpened() else b""
                    while cap.isOpened():
                        ok, packet = cap.read()
                        if not ok:
                            break
                        if copied == 0 and extradata and fourcc != "MJPG":
                            config = extradata
                            if not mp4:  # in-band, before the first frame; an MP4 gets it in its header
                                packet = np.frombuffer(extradata + packet.tobytes(), np.uint8)[None]
                        writer.set(cv2.VIDEOWRITER_PROP_KEY_FLAG, 1 if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME) else 0)
                        writer.write(packet)
                        copied += 1
                finally:
                    cap.release()
        caught.pass_on(drop=_FFMPEG_LINES)
    finally:
        writer.release()
    if mp4 and config:
        try:
            add_mpeg4_config(target, config)
        except (ValueError, IndexError, struct.error):  # a layout not FFmpeg's: the frames are there anyway
            pass
    found = count_packets(target)
    if found != copied:  # the writer reports no error on a full disk: count what arrived
        raise RemuxError(f"{target} holds {found} of {copied} frames")
    return copied


def probe(path: Path) -> tuple[str, float, tuple[int, int]] | None:
    """(fourcc, fps, (width, height)) of a video file, None if it cannot be opened."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        return fourcc, float(cap.get(cv2.CAP_PROP_FPS) or 25.0), size
    finally:
        cap.release()


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
