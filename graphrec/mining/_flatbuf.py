"""A minimal, bounds-checked FlatBuffers reader.

Only what the model sniffers need: the root table, the 4-byte file identifier,
scalar / string / sub-table fields and vectors of tables or scalars. Every
offset is checked against the buffer, so a corrupt or hostile file raises
:class:`FlatBufferError` instead of reading out of bounds or looping.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence
from typing import TypeAlias

__all__ = ["Buffer", "FlatBufferError", "Table", "file_identifier", "root_table"]

#: Anything random-access and sliceable: ``bytes``, ``bytearray``, ``memoryview`` or ``mmap``.
Buffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap

_MAX_VECTOR = 10_000_000


class FlatBufferError(ValueError):
    """The bytes are not a well-formed FlatBuffer (bad offset, truncated, ...)."""


def _u32(buf: Buffer, pos: int) -> int:
    if pos < 0 or pos + 4 > len(buf):
        raise FlatBufferError(f"offset {pos} out of bounds (size {len(buf)})")
    return int(struct.unpack_from("<I", buf, pos)[0])


def file_identifier(buf: Buffer) -> bytes:
    """Return the 4-byte file identifier (bytes 4..8), or ``b""`` if too short."""
    if len(buf) < 8:
        return b""
    return bytes(buf[4:8])


def root_table(buf: Buffer, base: int = 0) -> Table:
    """Return the root table of the FlatBuffer starting at ``base``."""
    return Table(buf, base + _u32(buf, base), base)


class Table:
    """One FlatBuffers table, addressed by field slot (0 = first field)."""

    __slots__ = ("_base", "_buf", "_pos", "_vtable", "_vtable_len")

    def __init__(self, buf: Buffer, pos: int, base: int = 0) -> None:
        self._buf = buf
        self._pos = pos
        self._base = base
        if pos < base or pos + 4 > len(buf):
            raise FlatBufferError(f"table offset {pos} out of bounds")
        soffset = int(struct.unpack_from("<i", buf, pos)[0])
        vtable = pos - soffset
        if vtable < base or vtable + 4 > len(buf):
            raise FlatBufferError(f"vtable offset {vtable} out of bounds")
        vt_len = int(struct.unpack_from("<H", buf, vtable)[0])
        if vt_len < 4 or vt_len % 2 or vtable + vt_len > len(buf):
            raise FlatBufferError(f"bad vtable length {vt_len}")
        self._vtable = vtable
        self._vtable_len = vt_len

    def _offset(self, slot: int) -> int:
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_len:
            return 0
        return int(struct.unpack_from("<H", self._buf, self._vtable + entry)[0])

    def has(self, slot: int) -> bool:
        """Whether the field in ``slot`` is present."""
        return self._offset(slot) != 0

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        """Read a scalar field (``fmt`` is a :mod:`struct` code such as ``"<I"``)."""
        off = self._offset(slot)
        if not off:
            return default
        pos = self._pos + off
        if pos + struct.calcsize(fmt) > len(self._buf):
            raise FlatBufferError("scalar field out of bounds")
        value: int | float = struct.unpack_from(fmt, self._buf, pos)[0]
        return value

    def _indirect(self, slot: int) -> int | None:
        off = self._offset(slot)
        if not off:
            return None
        pos = self._pos + off
        return pos + _u32(self._buf, pos)

    def table(self, slot: int) -> Table | None:
        """Read a sub-table field."""
        target = self._indirect(slot)
        return None if target is None else Table(self._buf, target, self._base)

    def string(self, slot: int, max_len: int = 1 << 20) -> str | None:
        """Read a string field (decoded as UTF-8 with replacement)."""
        target = self._indirect(slot)
        if target is None:
            return None
        return _read_string(self._buf, target, max_len)

    def _vector(self, slot: int) -> tuple[int, int] | None:
        target = self._indirect(slot)
        if target is None:
            return None
        length = _u32(self._buf, target)
        if length > _MAX_VECTOR:
            raise FlatBufferError(f"vector length {length} beyond limit")
        return target + 4, length

    def vector_len(self, slot: int) -> int:
        """Number of elements of a vector field (0 when absent)."""
        vec = self._vector(slot)
        return 0 if vec is None else vec[1]

    def tables(self, slot: int, limit: int = 100_000) -> list[Table]:
        """Read a vector of tables (at most ``limit`` elements)."""
        vec = self._vector(slot)
        if vec is None:
            return []
        start, length = vec
        out = []
        for i in range(min(length, limit)):
            pos = start + 4 * i
            out.append(Table(self._buf, pos + _u32(self._buf, pos), self._base))
        return out

    def strings(self, slot: int, limit: int = 100_000) -> list[str]:
        """Read a vector of strings (at most ``limit`` elements)."""
        vec = self._vector(slot)
        if vec is None:
            return []
        start, length = vec
        out = []
        for i in range(min(length, limit)):
            pos = start + 4 * i
            out.append(_read_string(self._buf, pos + _u32(self._buf, pos), 1 << 16))
        return out

    def scalars(self, slot: int, fmt: str, limit: int = 1_000_000) -> Sequence[int | float]:
        """Read a vector of scalars of struct code ``fmt`` (e.g. ``"<i"``)."""
        vec = self._vector(slot)
        if vec is None:
            return []
        start, length = vec
        length = min(length, limit)
        size = struct.calcsize(fmt)
        if start + size * length > len(self._buf):
            raise FlatBufferError("vector out of bounds")
        return list(struct.unpack_from(f"<{length}{fmt.lstrip('<')}", self._buf, start))


def _read_string(buf: Buffer, pos: int, max_len: int) -> str:
    length = _u32(buf, pos)
    if length > max_len or pos + 4 + length > len(buf):
        raise FlatBufferError(f"string of length {length} out of bounds")
    return bytes(buf[pos + 4 : pos + 4 + length]).decode("utf-8", "replace")
