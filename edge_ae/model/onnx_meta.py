"""Read and rewrite an ONNX file's ``metadata_props`` without the ``onnx`` package.

The runtime ships without ``onnx`` (and protobuf), yet a device must be able to re-calibrate a
model. An ONNX file is a protobuf ``ModelProto``; ``metadata_props`` is its field 14, a repeated
``StringStringEntryProto`` (``key`` = field 1, ``value`` = field 2). Every other top-level field
is copied byte for byte, so the graph and weights cannot change; only the entries for the
rewritten key are dropped and one new entry is appended (protobuf allows fields in any order).
"""

from __future__ import annotations

from pathlib import Path

from edge_ae.errors import ModelError
from edge_ae.files.atomic import write_bytes_atomic

METADATA_FIELD = 14
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, int, int, int]]:
    """Top-level fields as (number, wire type, start of field, start of payload, end)."""
    out = []
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == _VARINT:
            _, end = _varint(buf, pos)
            payload = pos
        elif wire == _FIXED64:
            payload, end = pos, pos + 8
        elif wire == _FIXED32:
            payload, end = pos, pos + 4
        elif wire == _BYTES:
            length, payload = _varint(buf, pos)
            end = payload + length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if end > len(buf):
            raise ValueError("field runs past the end of the file")
        out.append((number, wire, start, payload, end))
        pos = end
    return out


def _entry(payload: bytes) -> tuple[str, str]:
    key = value = b""
    for number, wire, _, start, end in _fields(payload):
        if wire == _BYTES and number == 1:
            key = payload[start:end]
        elif wire == _BYTES and number == 2:
            value = payload[start:end]
    return key.decode("utf-8"), value.decode("utf-8")


def _string_field(number: int, text: str) -> bytes:
    data = text.encode("utf-8")
    return _encode_varint(number << 3 | _BYTES) + _encode_varint(len(data)) + data


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialised ONNX model, as a dict (last entry wins)."""
    meta: dict[str, str] = {}
    for number, wire, _, start, end in _fields(data):
        if number == METADATA_FIELD and wire == _BYTES:
            key, value = _entry(data[start:end])
            meta[key] = value
    return meta


def replace_metadata(data: bytes, key: str, value: str) -> bytes:
    """A copy of a serialised ONNX model whose ``metadata_props[key]`` is ``value``."""
    parts = []
    for number, wire, field_start, start, end in _fields(data):
        if number == METADATA_FIELD and wire == _BYTES and _entry(data[start:end])[0] == key:
            continue
        parts.append(data[field_start:end])
    entry = _string_field(1, key) + _string_field(2, value)
    parts.append(_encode_varint(METADATA_FIELD << 3 | _BYTES) + _encode_varint(len(entry)) + entry)
    return b"".join(parts)


def rewrite_metadata_file(source: str | Path, target: str | Path, key: str, value: str) -> Path:
    """Write a copy of ``source`` with ``metadata_props[key] = value`` to ``target``, atomically
    (a temporary file renamed into place), so a crash never leaves a broken model behind."""
    source, target = Path(source), Path(target)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelError(f"{source}: cannot read ({exc.strerror or exc})") from None
    try:
        new = replace_metadata(data, key, value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: not an ONNX protobuf this tool can edit ({exc})") from None
    write_bytes_atomic(target, new)
    return target
