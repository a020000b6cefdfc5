"""Walk folders and (nested) archives and collect models, frameworks and packages.

The scanner streams: archive members are read in bounded chunks, only the
first :attr:`ScanLimits.head_bytes` of uninteresting files are decompressed,
nested archives and model blobs are held in memory below
:attr:`ScanLimits.in_memory_bytes` and otherwise spooled to numbered files in
a private temporary directory that is removed at the end. Nothing is ever
written under a name taken from an archive, so traversal names cannot escape.

Hostile or broken input (zip bombs, deep nesting, traversal names, symlinks,
corrupt or truncated archives, encrypted entries, huge files) becomes a
:class:`~graphrec.mining.inventory.ScanIssue`; the scan always goes on.
"""

from __future__ import annotations

import bz2
import email.parser
import gzip
import hashlib
import importlib
import io
import lzma
import mmap
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from graphrec.errors import MiningError, ScanPathError
from graphrec.mining import formats
from graphrec.mining.frameworks import (
    MarkerScanner,
    abi_from_header,
    abi_from_path,
    framework_for_library,
    framework_for_package,
    normalize_dist,
)
from graphrec.mining.inventory import (
    Inventory,
    LibraryFinding,
    ModelFinding,
    PackageFinding,
    ScanIssue,
)

__all__ = ["ScanLimits", "scan"]

_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    KeyError,
)


@dataclass(frozen=True)
class ScanLimits:
    """Safety limits of a scan; exceeding one records an issue, never raises.

    Attributes:
        max_total_bytes: Decompressed bytes read from one scanned app before
            the rest of it is skipped (``expanded-size-limit``).
        max_ratio: Largest accepted decompressed/compressed ratio of a member
            or stream (``compression-ratio``) ...
        ratio_min_bytes: ... for members at least this large.
        max_depth: Deepest accepted archive nesting (``nesting-depth``).
        max_members: Most members read from one archive (``member-count``).
        max_member_bytes: Largest member read whole (``huge-file``).
        in_memory_bytes: Blobs up to this size stay in memory; larger ones are
            spooled to a private temporary file.
        head_bytes: Bytes read from every file to sniff its kind.
        max_symbol_scan_bytes: Largest native library searched for framework markers.
        chunk_bytes: Read size when streaming.
    """

    max_total_bytes: int = 8 << 30
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1 << 20
    max_depth: int = 6
    max_members: int = 250_000
    max_member_bytes: int = 4 << 30
    in_memory_bytes: int = 64 << 20
    head_bytes: int = 64 << 10
    max_symbol_scan_bytes: int = 512 << 20
    chunk_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise MiningError(None, f"scan limit {name} must be positive")


class _BudgetExceeded(Exception):
    pass


class _RatioExceeded(Exception):
    pass


class _Budget:
    """Decompressed bytes read for one app."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.read = 0
        self.exhausted = False

    def add(self, n: int) -> None:
        self.read += n
        if self.read > self.limit:
            self.exhausted = True
            raise _BudgetExceeded


class _Counting(io.RawIOBase):
    """Counts the compressed bytes a decompressor pulls from ``raw``."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.count += n
        return n


class _RatioGuard(io.RawIOBase):
    """Decompressed view that stops a stream whose ratio or total size is hostile."""

    def __init__(self, dec: Any, raw: _Counting, limits: ScanLimits, budget: _Budget) -> None:
        self.dec = dec
        self.raw = raw
        self.limits = limits
        self.budget = budget
        self.out = 0
        self.truncated = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.truncated:
            return 0
        try:
            data = self.dec.read1(len(b))
        except EOFError:  # truncated stream: end it here, what came before stays usable
            self.truncated = True
            return 0
        n = len(data)
        b[:n] = data
        self.out += n
        self.budget.add(n)
        if self.out > self.limits.ratio_min_bytes and self.out > self.limits.max_ratio * max(
            self.raw.count, 1
        ):
            raise _RatioExceeded(
                f"{self.out} bytes from {self.raw.count} compressed "
                f"(ratio > {self.limits.max_ratio:g})"
            )
        return n


class _Blob:
    """A whole file: bytes in memory, or an mmap of a disk / spool file."""

    def __init__(
        self, buf: Any, size: int, sha256: str | None, path: Path | None, spool: bool = False
    ) -> None:
        self.buf = buf
        self.size = size
        self.sha256 = sha256
        self.path = path
        self._spool = spool
        self._file: IO[bytes] | None = None

    @classmethod
    def from_disk(cls, path: Path, size: int, chunk: int) -> _Blob:
        h = hashlib.sha256()
        if size == 0:
            return cls(b"", 0, h.hexdigest(), path)
        f = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            f.close()
            raise
        for off in range(0, len(mm), chunk):
            h.update(mm[off : off + chunk])
        blob = cls(mm, len(mm), h.hexdigest(), path)
        blob._file = f
        return blob

    def open(self) -> IO[bytes]:
        """A seekable reader over the content."""
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.buf)

    def close(self) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()
        if self._file is not None:
            self._file.close()
        if self._spool and self.path is not None:
            self.path.unlink(missing_ok=True)


def _traversal(name: str) -> bool:
    n = name.replace("\\", "/")
    return n.startswith("/") or bool(re.match(r"^[A-Za-z]:", n)) or ".." in n.split("/")


_METADATA_RE = re.compile(r"(?:^|/)([^/]+)\.dist-info/METADATA$")
_LAYOUT_SMALL = 1 << 20


class _Scanner:
    def __init__(self, limits: ScanLimits, analyze_onnx: bool) -> None:
        self.limits = limits
        self.inv = Inventory()
        self._tmp: Path | None = None
        self._spool_n = 0
        self._analyze_onnx = analyze_onnx
        self._onnx_loader: Callable[[Any, str], dict[str, Any]] | None = None
        self._onnx_checked = False
        self._seen_pkgs: set[tuple[str, tuple[str, ...], str]] = set()

    # -- bookkeeping ---------------------------------------------------------------------

    def issue(self, app: str, chain: Sequence[str], kind: str, detail: str) -> None:
        self.inv.issues.append(ScanIssue(app, tuple(chain), kind, detail))

    def _spool_path(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="graphrec-mine-"))
        self._spool_n += 1
        return self._tmp / f"blob{self._spool_n}"

    def cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- ONNX analysis through graphrec's own kernel ------------------------------------

    def _onnx_analyzer(self) -> Callable[[Any, str], dict[str, Any]] | None:
        if not self._analyze_onnx:
            return None
        if not self._onnx_checked:
            self._onnx_checked = True
            try:
                graph = importlib.import_module("graphrec.graph")
            except ImportError:  # the kernel is not built: the protobuf walk still works
                graph = None
            load_bytes = getattr(graph, "load_bytes", None)
            if load_bytes is not None:

                def analyze(buf: Any, name: str) -> dict[str, Any]:
                    view = buf if isinstance(buf, bytes) else memoryview(buf)
                    try:
                        g = load_bytes(view, name=name)
                    finally:
                        if isinstance(view, memoryview):
                            view.release()
                    hist = dict(g.op_type_histogram)
                    return {
                        "num_nodes": int(g.num_nodes),
                        "op_histogram": dict(sorted(hist.items(), key=lambda kv: -kv[1])),
                        "total_params": int(g.total_params),
                        "total_flops": int(g.total_flops),
                        "total_macs": int(g.total_macs),
                    }

                self._onnx_loader = analyze
        return self._onnx_loader

    # -- entry points --------------------------------------------------------------------

    def run(self, paths: Sequence[Path]) -> Inventory:
        start = time.perf_counter()
        try:
            for path in paths:
                self.inv.roots.append(str(path))
                if path.is_dir():
                    self._scan_dir(path)
                else:
                    self._scan_disk_file(path, str(path), is_root=True)
        finally:
            self.cleanup()
        self.inv.stats.elapsed_s = time.perf_counter() - start
        return self.inv

    def _scan_dir(self, root: Path) -> None:
        app_of_loose = str(root)
        loose_used = False
        names: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            here = Path(dirpath)
            for d in list(dirnames):
                p = here / d
                if p.is_symlink():
                    self.issue(
                        app_of_loose, (str(p),), "symlink", f"-> {os.readlink(p)} (not followed)"
                    )
                    dirnames.remove(d)
                elif d.lower().endswith((".mlmodelc", ".mlpackage")):
                    dirnames.remove(d)
                    self._disk_bundle(p, app_of_loose)
                    loose_used = True
            for fname in sorted(filenames):
                p = here / fname
                rel = p.relative_to(root).as_posix()
                names.append(rel)
                if p.is_symlink():
                    self.issue(
                        app_of_loose, (str(p),), "symlink", f"-> {os.readlink(p)} (not followed)"
                    )
                    continue
                try:
                    mode = p.stat().st_mode
                except OSError as exc:
                    self.issue(app_of_loose, (str(p),), "unreadable", str(exc))
                    continue
                if not stat.S_ISREG(mode):
                    self.issue(app_of_loose, (str(p),), "special-file", "not a regular file")
                    continue
                if self._scan_disk_file(p, app_of_loose, is_root=False):
                    loose_used = True

        def read_small(rel: str) -> bytes:
            p = root / rel
            return p.read_bytes() if p.stat().st_size <= _LAYOUT_SMALL else b""

        self._packages_from_names(names, (str(root),), app_of_loose, read_small)
        has_packages = any(p.app == app_of_loose for p in self.inv.packages)
        if (loose_used or has_packages) and app_of_loose not in self.inv.apps:
            self.inv.apps.append(app_of_loose)

    def _disk_bundle(self, path: Path, app: str) -> None:
        files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
        fmt = "coreml-compiled" if path.name.lower().endswith(".mlmodelc") else "coreml-package"
        size = sum(p.stat().st_size for p in files)
        self.inv.models.append(
            ModelFinding(
                app,
                (str(path),),
                fmt,
                size,
                None,
                False,
                "Core ML bundle folder",
                {"files": len(files)},
            )
        )

    def _scan_disk_file(self, path: Path, app_of_loose: str, *, is_root: bool) -> bool:
        """Scan one file on disk; returns True when it contributed to ``app_of_loose``."""
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(self.limits.head_bytes)
        except OSError as exc:
            self.issue(app_of_loose, (str(path),), "unreadable", str(exc))
            return False
        self.inv.stats.files += 1
        self.inv.stats.bytes_on_disk += size
        self.inv.stats.bytes_read += len(head)
        name = path.name
        kind = formats.quick_kind(name, head, size)
        chain = (str(path),)
        if kind == "archive":
            app = str(path)
            if app not in self.inv.apps:
                self.inv.apps.append(app)
            budget = _Budget(self.limits.max_total_bytes)
            n_models = len(self.inv.models)
            try:
                blob = _Blob(None, size, None, path)
                self._archive(blob, head, name, chain, 0, budget, app, disk=True)
            except _BudgetExceeded:
                self._budget_issue(app, chain, budget)
            new = self.inv.models[n_models:]
            if not is_root and len(new) == 1 and new[0].location == chain:
                # a zip-based model file (TorchScript, .keras ...) lying in a folder, not an app
                new[0].app = app_of_loose
                self.inv.apps.remove(app)
                return True
            return False
        if kind == "skip":
            return False
        app = str(path) if is_root else app_of_loose
        if is_root and app not in self.inv.apps:
            self.inv.apps.append(app)
        try:
            if kind == "library":
                with open(path, "rb") as f:
                    self._library(chain, name, f, size, None, app)
                return True
            if size > self.limits.max_member_bytes:
                self._huge(chain, name, head, size, app)
                return True
            blob = _Blob.from_disk(path, size, self.limits.chunk_bytes)
            self.inv.stats.bytes_read += size
            try:
                self._model(chain, name, blob, app, {})
            finally:
                blob.close()
        except OSError as exc:
            self.issue(app, chain, "unreadable", str(exc))
        return True

    def _budget_issue(self, app: str, chain: Sequence[str], budget: _Budget) -> None:
        self.issue(
            app,
            chain,
            "expanded-size-limit",
            f"stopped after {budget.read} decompressed bytes (limit {budget.limit}); rest skipped",
        )

    # -- reading -------------------------------------------------------------------------

    def _read(self, fp: IO[bytes], n: int, budget: _Budget | None) -> bytes:
        data = fp.read(n)
        self.inv.stats.bytes_read += len(data)
        if budget is not None:
            budget.add(len(data))
        return data

    def _materialize(
        self, fp: IO[bytes], head: bytes, budget: _Budget | None, chain: Sequence[str], app: str
    ) -> _Blob | None:
        """Read the rest of ``fp`` (after ``head``) into memory or a spool file, hashing it."""
        h = hashlib.sha256(head)
        parts = [head]
        total = len(head)
        spool: IO[bytes] | None = None
        spool_path: Path | None = None
        lim = self.limits
        try:
            while True:
                chunk = self._read(fp, lim.chunk_bytes, budget)
                if not chunk:
                    break
                total += len(chunk)
                if total > lim.max_member_bytes:
                    self.issue(
                        app,
                        chain,
                        "huge-file",
                        f"larger than {lim.max_member_bytes} bytes; not read whole",
                    )
                    if spool is not None:
                        spool.close()
                        spool_path.unlink(missing_ok=True)  # type: ignore[union-attr]
                        spool = None
                    return None
                h.update(chunk)
                if spool is None and total > lim.in_memory_bytes:
                    spool_path = self._spool_path()
                    spool = open(spool_path, "wb")  # noqa: SIM115 - closed below
                    for part in parts:
                        spool.write(part)
                    parts = []
                    spool.write(chunk)
                elif spool is not None:
                    spool.write(chunk)
                else:
                    parts.append(chunk)
        except BaseException:
            if spool is not None:
                spool.close()
                spool_path.unlink(missing_ok=True)  # type: ignore[union-attr]
            raise
        if spool is None:
            data = b"".join(parts)
            return _Blob(data, total, h.hexdigest(), None)
        spool.close()
        assert spool_path is not None
        f = open(spool_path, "rb")  # noqa: SIM115 - owned by the blob
        blob = _Blob(
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ),
            total,
            h.hexdigest(),
            spool_path,
            spool=True,
        )
        blob._file = f
        return blob

    # -- one member ----------------------------------------------------------------------

    def _member(
        self,
        fp: IO[bytes],
        name: str,
        size: int,
        chain: tuple[str, ...],
        depth: int,
        budget: _Budget,
        app: str,
        count: bool,
        siblings: dict[str, int],
    ) -> None:
        """Sniff and process one archive member given as a stream."""
        bud = budget if count else None
        head = self._read(fp, self.limits.head_bytes, bud)
        self.inv.stats.files += 1
        kind = formats.quick_kind(name, head, size if size >= 0 else len(head))
        if kind == "skip":
            return
        if kind == "library":
            self._library(chain, name, fp, size, bud, app, head=head)
            return
        if size > self.limits.max_member_bytes:
            self._huge(chain, name, head, size, app)
            return
        if kind == "archive" and depth + 1 > self.limits.max_depth:
            self.issue(
                app,
                chain,
                "nesting-depth",
                f"archive nested {depth + 1} deep (limit {self.limits.max_depth}); not opened",
            )
            return
        blob = self._materialize(fp, head, bud, chain, app)
        if blob is None:
            return
        try:
            if kind == "archive":
                self._archive(blob, head, name, chain, depth, budget, app, disk=False)
            else:
                self._model(chain, name, blob, app, siblings)
        finally:
            blob.close()

    def _huge(self, chain: Sequence[str], name: str, head: bytes, size: int, app: str) -> None:
        self.issue(
            app,
            chain,
            "huge-file",
            f"{size} bytes > limit {self.limits.max_member_bytes}; only the header was read",
        )
        try:
            found = formats.sniff(name, head)
        except Exception:  # a header-only sniff may fail on any parser error
            found = None
        if found is not None:
            details = dict(found.details)
            details["header_only"] = True
            self.inv.models.append(
                ModelFinding(
                    app,
                    tuple(chain),
                    found.format,
                    size,
                    None,
                    found.suspected,
                    found.reason,
                    details,
                )
            )

    def _model(
        self, chain: tuple[str, ...], name: str, blob: _Blob, app: str, siblings: dict[str, int]
    ) -> None:
        try:
            found = formats.sniff(name, blob.buf, onnx_analyzer=self._onnx_analyzer())
        except Exception as exc:  # a sniffer bug must not end the scan
            self.issue(app, chain, "analysis-error", f"{type(exc).__name__}: {exc}")
            return
        if found is None:
            return
        details = dict(found.details)
        if found.format == "ncnn":
            stem = re.sub(r"\.param(\.bin)?$", "", name)
            if stem + ".bin" in siblings:
                details["weights"] = {
                    "file": PurePosixPath(stem).name + ".bin",
                    "size_bytes": siblings[stem + ".bin"],
                }
        self.inv.models.append(
            ModelFinding(
                app,
                chain,
                found.format,
                blob.size,
                blob.sha256,
                found.suspected,
                found.reason,
                details,
            )
        )

    def _library(
        self,
        chain: tuple[str, ...],
        name: str,
        fp: IO[bytes],
        size: int,
        budget: _Budget | None,
        app: str,
        head: bytes | None = None,
    ) -> None:
        if head is None:
            head = self._read(fp, self.limits.head_bytes, budget)
        fw = framework_for_library(name)
        abi = abi_from_path(name) or abi_from_header(head)
        binary = abi_from_header(head) is not None
        scanner = MarkerScanner()
        scanner.feed(head)
        total = len(head)
        if binary and (size < 0 or size <= self.limits.max_symbol_scan_bytes):
            while total <= self.limits.max_symbol_scan_bytes:
                chunk = self._read(fp, self.limits.chunk_bytes, budget)
                if not chunk:
                    break
                total += len(chunk)
                scanner.feed(chunk)
        size = size if size >= 0 else total
        if fw is not None:
            evidence = "file name" if binary else "file name (not an ELF/Mach-O binary)"
            self.inv.libraries.append(LibraryFinding(app, chain, fw.id, abi, size, evidence))
        for fid, marker in scanner.found.items():
            if fw is not None and fid == fw.id:
                continue
            self.inv.libraries.append(
                LibraryFinding(app, chain, fid, abi, size, f"marker {marker}")
            )

    # -- archives ------------------------------------------------------------------------

    def _archive(
        self,
        blob: _Blob,
        head: bytes,
        name: str,
        chain: tuple[str, ...],
        depth: int,
        budget: _Budget,
        app: str,
        disk: bool,
    ) -> None:
        """Open ``blob`` (an archive whose members sit at ``depth + 1``) and walk it."""
        self.inv.stats.archives += 1
        kind = formats.is_archive_head(head)
        try:
            with blob.open() as f:
                if kind == "zip":
                    self._zip(f, blob, name, chain, depth + 1, budget, app, disk)
                elif kind == "tar":
                    with tarfile.open(fileobj=f, mode="r:") as tf:
                        self._tar(tf, chain, depth + 1, budget, app, count=True)
                else:
                    self._compressed(f, kind or "", name, chain, depth + 1, budget, app)
        except (_BudgetExceeded, _RatioExceeded):
            raise
        except _ARCHIVE_ERRORS as exc:
            self.issue(app, chain, "corrupt-archive", f"{type(exc).__name__}: {exc}")

    def _compressed(
        self,
        f: IO[bytes],
        kind: str,
        name: str,
        chain: tuple[str, ...],
        depth: int,
        budget: _Budget,
        app: str,
    ) -> None:
        openers: dict[str, Callable[[IO[bytes]], Any]] = {
            "gzip": lambda r: gzip.GzipFile(fileobj=r, mode="rb"),
            "bz2": lambda r: bz2.BZ2File(r, mode="rb"),
            "xz": lambda r: lzma.LZMAFile(r, mode="rb"),  # noqa: SIM115 - closed with the stream
        }
        if kind not in openers:
            return

        def guarded() -> _RatioGuard:
            f.seek(0)
            raw = _Counting(f)
            return _RatioGuard(openers[kind](io.BufferedReader(raw)), raw, self.limits, budget)

        try:
            g = guarded()
            start = g.read(512)
            is_tar = len(start) >= 262 and start[257:262] == b"ustar"
            g = guarded()
            n_issues = len(self.inv.issues)
            if is_tar:
                with tarfile.open(fileobj=io.BufferedReader(g), mode="r|") as tf:
                    self._tar(tf, chain, depth, budget, app, count=False)
            else:
                inner = re.sub(r"\.(gz|tgz|bz2|xz|txz)$", "", PurePosixPath(name).name) or "data"
                reader = io.BufferedReader(g)
                self._member(reader, inner, -1, (*chain, inner), depth, budget, app, False, {})
            if g.truncated and len(self.inv.issues) == n_issues:
                self.issue(app, chain, "corrupt-archive", f"{kind} stream ends early (truncated)")
        except _RatioExceeded as exc:
            self.issue(app, chain, "compression-ratio", f"compressed stream: {exc}; stopped")

    def _zip(
        self,
        f: IO[bytes],
        blob: _Blob,
        name: str,
        chain: tuple[str, ...],
        depth: int,
        budget: _Budget,
        app: str,
        disk: bool,
    ) -> None:
        zf = zipfile.ZipFile(f)
        lim = self.limits
        infos = zf.infolist()
        if len(infos) > lim.max_members:
            self.issue(
                app,
                chain,
                "member-count",
                f"{len(infos)} members (limit {lim.max_members}); only the first read",
            )
            infos = infos[: lim.max_members]
        names = [i.filename for i in infos]
        container = formats.container_model(names)
        if container is not None:
            fmt, reason, details = container
            details = {**details, **self._container_details(zf, fmt, details)}
            sha = blob.sha256
            if sha is None and disk and blob.path is not None:
                sha = _sha256_file(blob.path, lim.chunk_bytes)
            self.inv.models.append(
                ModelFinding(app, chain, fmt, blob.size, sha, False, reason, details)
            )
            return
        sizes = {i.filename: i.file_size for i in infos}
        bundles = formats.bundle_models(names)
        for prefix, fmt in bundles.items():
            members = [i for i in infos if i.filename.startswith(prefix) and not i.is_dir()]
            self.inv.models.append(
                ModelFinding(
                    app,
                    (*chain, prefix.rstrip("/")),
                    fmt,
                    sum(i.file_size for i in members),
                    None,
                    False,
                    "Core ML bundle folder",
                    {"files": len(members)},
                )
            )
        self._packages_from_names(
            names, chain, app, lambda n: zf.read(n) if sizes.get(n, 0) <= _LAYOUT_SMALL else b""
        )
        companions = _companions(names)
        for info in infos:
            if budget.exhausted:
                return
            mname = info.filename
            mchain = (*chain, mname)
            if _traversal(mname):
                self.issue(
                    app,
                    mchain,
                    "path-traversal",
                    "member name escapes the archive root (content scanned, never extracted)",
                )
            if info.is_dir():
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                target = b""
                if not info.flag_bits & 0x1 and info.file_size <= 4096:
                    try:
                        target = zf.read(info)
                    except _ARCHIVE_ERRORS:
                        target = b"?"
                self.issue(
                    app,
                    mchain,
                    "symlink",
                    f"-> {target.decode('utf-8', 'replace')!r} (not followed)",
                )
                continue
            if info.flag_bits & 0x1:
                self.issue(app, mchain, "encrypted-entry", "password-protected member")
                expected = formats.extension_format(mname)
                if expected is not None:
                    self.inv.models.append(
                        ModelFinding(
                            app,
                            mchain,
                            expected,
                            info.file_size,
                            None,
                            True,
                            "encrypted zip entry with a model extension",
                            {},
                        )
                    )
                continue
            if any(mname.startswith(p) for p in bundles) or mname in companions:
                continue
            if info.file_size > lim.ratio_min_bytes and (
                info.compress_size == 0 or info.file_size / info.compress_size > lim.max_ratio
            ):
                self.issue(
                    app,
                    mchain,
                    "compression-ratio",
                    f"{info.file_size} bytes from {info.compress_size} "
                    f"(ratio > {lim.max_ratio:g}); not decompressed",
                )
                continue
            try:
                with zf.open(info) as fp:
                    self._member(fp, mname, info.file_size, mchain, depth, budget, app, True, sizes)
            except (_BudgetExceeded, _RatioExceeded):
                raise
            except _ARCHIVE_ERRORS as exc:
                self.issue(app, mchain, "corrupt-member", f"{type(exc).__name__}: {exc}")

    def _container_details(
        self, zf: zipfile.ZipFile, fmt: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        root = details.get("root")

        def small(name: str) -> str | None:
            try:
                info = zf.getinfo(name)
            except KeyError:
                return None
            if info.file_size > 4096 or info.flag_bits & 0x1:
                return None
            try:
                return zf.read(info).decode("utf-8", "replace").strip()
            except _ARCHIVE_ERRORS:
                return None

        if root:
            version = small(f"{root}/version") or small(f"{root}/.data/version")
            if version:
                out["file_format_version"] = version
            sizes = [i.file_size for i in zf.infolist() if i.filename.startswith(f"{root}/data/")]
            out["tensor_bytes"] = sum(sizes)
        if fmt == "keras-v3":
            meta = small("metadata.json")
            if meta:
                out["metadata"] = meta[:300]
        if fmt == "snpe-dlc":
            meta = small("dlc.metadata")
            if meta:
                out["metadata"] = dict(
                    line.split("=", 1) for line in meta.splitlines()[:20] if "=" in line
                )
        return out

    def _tar(
        self,
        tf: tarfile.TarFile,
        chain: tuple[str, ...],
        depth: int,
        budget: _Budget,
        app: str,
        count: bool,
    ) -> None:
        n = 0
        try:
            for ti in tf:
                if budget.exhausted:
                    return
                n += 1
                if n > self.limits.max_members:
                    self.issue(
                        app,
                        chain,
                        "member-count",
                        f"more than {self.limits.max_members} members; rest skipped",
                    )
                    return
                mchain = (*chain, ti.name)
                if _traversal(ti.name):
                    self.issue(
                        app,
                        mchain,
                        "path-traversal",
                        "member name escapes the archive root (content scanned, never extracted)",
                    )
                if ti.issym() or ti.islnk():
                    kind = "symlink" if ti.issym() else "hardlink"
                    self.issue(app, mchain, kind, f"-> {ti.linkname!r} (not followed)")
                    continue
                if ti.isdir():
                    continue
                if not ti.isfile():
                    self.issue(
                        app, mchain, "special-file", "device, fifo or other non-regular member"
                    )
                    continue
                self._packages_from_names([ti.name], chain, app, None)
                if _METADATA_RE.search(ti.name) and ti.size <= _LAYOUT_SMALL:
                    fp = tf.extractfile(ti)
                    if fp is not None:
                        self._dist_info(ti.name, fp.read(), chain, app)
                    continue
                if ti.size > self.limits.max_member_bytes and not count:
                    self._huge(mchain, ti.name, b"", ti.size, app)
                    self.issue(
                        app,
                        chain,
                        "huge-file",
                        "compressed tar: cannot skip a huge member; stopped",
                    )
                    return
                fp = tf.extractfile(ti)
                if fp is None:
                    continue
                try:
                    self._member(fp, ti.name, ti.size, mchain, depth, budget, app, count, {})
                except (_BudgetExceeded, _RatioExceeded):
                    raise
                except _ARCHIVE_ERRORS as exc:
                    self.issue(app, mchain, "corrupt-member", f"{type(exc).__name__}: {exc}")
        except (_BudgetExceeded, _RatioExceeded):
            raise
        except _ARCHIVE_ERRORS as exc:
            self.issue(
                app,
                chain,
                "corrupt-archive",
                f"truncated or corrupt tar: {type(exc).__name__}: {exc}",
            )

    # -- python packages -----------------------------------------------------------------

    def _packages_from_names(
        self,
        names: Iterable[str],
        chain: tuple[str, ...],
        app: str,
        read: Callable[[str], bytes] | None,
    ) -> None:
        for n in names:
            parts = n.split("/")
            if parts[-1] == "__init__.py" and len(parts) >= 2:
                pkg = parts[-2]
                fw = framework_for_package(pkg)
                if fw is not None and (app, chain, pkg) not in self._seen_pkgs:
                    self._seen_pkgs.add((app, chain, pkg))
                    self.inv.packages.append(
                        PackageFinding(
                            app, (*chain, "/".join(parts[:-1])), pkg, fw.id, None, "package folder"
                        )
                    )
            elif read is not None and _METADATA_RE.search(n):
                try:
                    data = read(n)
                except (OSError, *_ARCHIVE_ERRORS):
                    continue
                self._dist_info(n, data, chain, app)

    def _dist_info(self, name: str, data: bytes, chain: tuple[str, ...], app: str) -> None:
        if not data:
            return
        msg = email.parser.BytesHeaderParser().parsebytes(data[:_LAYOUT_SMALL])
        dist = str(msg.get("Name", "") or "")
        version = msg.get("Version")
        where = (*chain, name)
        fw = framework_for_package(dist) if dist else None
        if fw is not None:
            self.inv.packages.append(
                PackageFinding(
                    app,
                    where,
                    normalize_dist(dist),
                    fw.id,
                    str(version) if version else None,
                    "dist-info",
                )
            )
        for req in msg.get_all("Requires-Dist") or []:
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*\(?([^;)]*)", str(req))
            if not m:
                continue
            dep = framework_for_package(m.group(1))
            if dep is not None:
                spec = m.group(3).strip() or None
                self.inv.packages.append(
                    PackageFinding(
                        app,
                        where,
                        normalize_dist(m.group(1)),
                        dep.id,
                        spec,
                        "Requires-Dist" + (" (extra)" if "extra ==" in str(req) else ""),
                    )
                )


def _sha256_file(path: Path, chunk: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(chunk):
            h.update(data)
    return h.hexdigest()


def _companions(names: Iterable[str]) -> set[str]:
    """Weight files whose graph sits next to them (``x.param`` + ``x.bin``, ``x.xml`` + ``x.bin``)."""
    nameset = set(names)
    out = set()
    for n in nameset:
        if n.endswith(".bin"):
            stem = n[: -len(".bin")]
            if {stem + ".param", stem + ".param.bin", stem + ".xml"} & nameset:
                out.add(n)
    return out


def scan(
    paths: Iterable[str | os.PathLike[str]],
    *,
    limits: ScanLimits | None = None,
    analyze_onnx: bool = True,
) -> Inventory:
    """Scan files, folders and archives for models, inference frameworks and packages.

    Args:
        paths: Files (APK, AAB, AAR, JAR, IPA, ZIP, wheel, tar, tar.gz, or a model
            file itself) and folders. Each archive on disk counts as one app; loose
            files under a folder count towards that folder.
        limits: Safety limits (defaults: :class:`ScanLimits`).
        analyze_onnx: Run ONNX models through graphrec's graph kernel for FLOPs
            when it is available (otherwise a cheap protobuf walk is used).

    Returns:
        The :class:`~graphrec.mining.inventory.Inventory`.

    Raises:
        ScanPathError: A given path does not exist (checked before scanning).

    Example:
        >>> from graphrec.mining import scan
        >>> inv = scan(["app.apk", "wheels/"])  # doctest: +SKIP
        >>> inv.aggregate().format_models  # doctest: +SKIP
        {'tflite': 3, 'onnx': 1}
    """
    resolved = [Path(p) for p in paths]
    if not resolved:
        raise ScanPathError(None, "no paths to scan")
    for p in resolved:
        if not p.exists():
            raise ScanPathError(p, "no such file or directory")
    return _Scanner(limits or ScanLimits(), analyze_onnx).run(resolved)
