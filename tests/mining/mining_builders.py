"""Archive and ELF-header builders for the mining tests.

No model format is written here: the model files come from the real converters and
runtimes (``conftest.py``), so a reader cannot pass by sharing a hand-writer's assumptions.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

# -- containers and library headers (model files are written by the real tools: conftest.py) --


def elf_header(machine: int, is64: bool = True, extra: bytes = b"") -> bytes:
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + b"\0" * 9
    return ident + struct.pack("<HH", 3, machine) + b"\0" * 200 + extra


def high_entropy(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def write_zip(
    path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def mark_encrypted(data: bytes, name: str) -> bytes:
    """Set the 'encrypted' general-purpose flag of ``name`` in both zip headers."""
    out = bytearray(data)
    raw = name.encode()
    for sig, flag_off, name_len_off, name_off in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        pos = out.find(sig)
        while pos != -1:
            (n,) = struct.unpack_from("<H", out, pos + name_len_off)
            if bytes(out[pos + name_off : pos + name_off + n]) == raw:
                (flags,) = struct.unpack_from("<H", out, pos + flag_off)
                struct.pack_into("<H", out, pos + flag_off, flags | 1)
            pos = out.find(sig, pos + 4)
    return bytes(out)


#: ``make_apk(path) -> path`` fixture type: writes the APK-like test archive.
MakeApk = Callable[[Path], Path]
