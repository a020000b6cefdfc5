"""A minimal protobuf wire-format walker for cheap format checks.

It decodes field numbers, wire types and varints, and returns the byte range
of length-delimited fields without copying them, so a multi-gigabyte weight
blob is skipped in O(1). Malformed input raises :class:`ProtobufError`.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphrec.mining._flatbuf import Buffer

__all__ = ["ProtobufError", "decode_varint", "iter_fields", "read_packed_varints", "text"]

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5


class ProtobufError(ValueError):
    """The bytes are not well-formed protobuf wire data."""


def decode_varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Decode one varint at ``pos``; returns ``(value, next_pos)``."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")


def iter_fields(
    buf: Buffer, start: int = 0, end: int | None = None, max_fields: int = 1_000_000
) -> Iterator[tuple[int, int, int | tuple[int, int]]]:
    """Yield ``(field_number, wire_type, value)`` for each field in ``buf[start:end]``.

    ``value`` is the integer for varint / fixed fields and ``(begin, stop)`` byte
    offsets for length-delimited fields. Groups are rejected (no model format
    graphrec sniffs uses them).
    """
    end = len(buf) if end is None else end
    pos = start
    count = 0
    while pos < end:
        count += 1
        if count > max_fields:
            raise ProtobufError(f"more than {max_fields} fields")
        key, pos = decode_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtobufError("field number 0")
        if wire == VARINT:
            value, pos = decode_varint(buf, pos, end)
            yield field, wire, value
        elif wire == LEN:
            length, pos = decode_varint(buf, pos, end)
            if pos + length > end:
                raise ProtobufError(f"field {field} of length {length} runs past the end")
            yield field, wire, (pos, pos + length)
            pos += length
        elif wire == I64:
            if pos + 8 > end:
                raise ProtobufError("truncated fixed64")
            yield field, wire, int.from_bytes(bytes(buf[pos : pos + 8]), "little")
            pos += 8
        elif wire == I32:
            if pos + 4 > end:
                raise ProtobufError("truncated fixed32")
            yield field, wire, int.from_bytes(bytes(buf[pos : pos + 4]), "little")
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def read_packed_varints(buf: Buffer, begin: int, stop: int, limit: int = 64) -> list[int]:
    """Decode a packed repeated varint field (at most ``limit`` values)."""
    out: list[int] = []
    pos = begin
    while pos < stop and len(out) < limit:
        value, pos = decode_varint(buf, pos, stop)
        out.append(value)
    return out


def text(buf: Buffer, span: tuple[int, int], max_len: int = 4096) -> str:
    """Decode a length-delimited field as UTF-8 text (truncated to ``max_len`` bytes)."""
    begin, stop = span
    return bytes(buf[begin : min(stop, begin + max_len)]).decode("utf-8", "replace")
