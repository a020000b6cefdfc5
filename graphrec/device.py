"""Device profiles: what a machine offers to an inference runtime.

A :class:`DeviceProfile` describes the CPU (model, architecture, cores, threads
available to this process, frequency, ISA extensions, caches), memory, the OS and
any GPUs. It is detected on the machine that runs the benchmark
(:meth:`DeviceProfile.detect`), saved beside measurements, and turned into a fixed
numeric vector (:meth:`DeviceProfile.to_features`) for the learned models.

Profiles of devices that cannot be measured right now (a phone, a Raspberry Pi)
can be written by hand from spec sheets; ``examples/devices/`` ships a few, each
marked ``"source": "spec-sheet"``.

Example:
    >>> from graphrec.device import DeviceProfile
    >>> dev = DeviceProfile.detect()
    >>> feats = dev.to_features()
    >>> list(feats) == list(DeviceProfile.feature_names())
    True
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphrec.errors import DeviceProfileError

__all__ = ["KNOWN_ISA_FLAGS", "DeviceProfile", "GpuInfo", "register"]

#: Version of the JSON layout written by :meth:`DeviceProfile.save`.
PROFILE_SCHEMA_VERSION = 1

#: Canonical ISA extension names, in feature order. Raw ``/proc/cpuinfo`` flags are
#: mapped onto these (see ``_RAW_ISA``).
KNOWN_ISA_FLAGS: tuple[str, ...] = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "neon",
    "fp16_arith",
    "dotprod",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
    "sme",
)

# raw flag (x86 "flags" or ARM "Features") -> canonical name
_RAW_ISA: dict[str, str] = {
    "sse4_2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512_vnni": "avx512_vnni",
    "avx512vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx512_fp16": "avx512_fp16",
    "amx_tile": "amx_tile",
    "amx_bf16": "amx_bf16",
    "amx_int8": "amx_int8",
    "neon": "neon",
    "asimd": "neon",
    "asimdhp": "fp16_arith",
    "fphp": "fp16_arith",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "bf16": "bf16",
    "sve": "sve",
    "sve2": "sve2",
    "sme": "sme",
}

_ARCH_ALIASES: dict[str, str] = {
    "amd64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "armv7l": "arm32",
    "armv8l": "arm32",
    "armv6l": "arm32",
    "riscv64": "riscv64",
}
_ARCH_FEATURES: tuple[str, ...] = ("x86_64", "aarch64", "arm32", "riscv64")


@dataclass
class GpuInfo:
    """One GPU (or other accelerator) visible on the device.

    Attributes:
        name: Marketing name, e.g. ``"NVIDIA H100 80GB HBM3"``.
        vendor: ``"nvidia"``, ``"amd"``, ``"intel"``, ``"arm"``, ``"qualcomm"``, ...
        memory_mb: Dedicated memory in MiB (0 when shared with the CPU and unknown).
        compute_capability: CUDA compute capability such as ``"9.0"`` (NVIDIA only).
        driver: Driver version string when known.
    """

    name: str
    vendor: str = "unknown"
    memory_mb: int = 0
    compute_capability: str | None = None
    driver: str | None = None


@dataclass
class DeviceProfile:
    """Hardware and OS description of a device that runs (or will run) inference.

    Attributes:
        name: Human-readable label (defaults to the CPU model).
        source: ``"detected"`` (measured on the machine) or ``"spec-sheet"`` (written by
            hand from vendor documentation, not measured).
        os: OS name (``"Linux"``, ``"Android"``, ``"Darwin"``, ``"Windows"``).
        os_release: Kernel / OS release string.
        arch: Normalised architecture: ``x86_64``, ``aarch64``, ``arm32``, ``riscv64``.
        cpu_model: CPU model name.
        cpu_vendor: CPU vendor id (``GenuineIntel``, ``AuthenticAMD``, ``ARM``, ...).
        physical_cores: Physical cores.
        logical_cores: Hardware threads.
        threads_available: Threads this process may run on (CPU affinity / quota).
        freq_max_mhz: Maximum core frequency in MHz, when known.
        freq_min_mhz: Minimum core frequency in MHz, when known.
        isa_flags: Canonical ISA extension names (subset of :data:`KNOWN_ISA_FLAGS`).
        l1d_cache_kb: L1 data cache per core, KiB.
        l2_cache_kb: L2 cache as seen by one core, KiB.
        l3_cache_kb: L3 / last-level cache as seen by one core, KiB.
        memory_total_mb: Memory usable by this process in MiB (cgroup limit if lower).
        gpus: Visible GPUs.
        notes: Free text (where a spec-sheet profile came from, ...).
        schema_version: Layout version of the saved JSON.
    """

    name: str
    source: str = "detected"
    os: str = ""
    os_release: str = ""
    arch: str = ""
    cpu_model: str = ""
    cpu_vendor: str = ""
    physical_cores: int = 1
    logical_cores: int = 1
    threads_available: int = 1
    freq_max_mhz: float | None = None
    freq_min_mhz: float | None = None
    isa_flags: list[str] = field(default_factory=list)
    l1d_cache_kb: int | None = None
    l2_cache_kb: int | None = None
    l3_cache_kb: int | None = None
    memory_total_mb: int = 0
    gpus: list[GpuInfo] = field(default_factory=list)
    notes: str = ""
    schema_version: int = PROFILE_SCHEMA_VERSION

    # ------------------------------------------------------------------ identity
    @property
    def device_id(self) -> str:
        """A short stable id of the hardware description (name, notes and source excluded).

        Two profiles of the same hardware and thread budget share the id, so store rows
        from different runs on one machine join.
        """
        keys = (
            "os",
            "arch",
            "cpu_model",
            "physical_cores",
            "logical_cores",
            "threads_available",
            "isa_flags",
            "memory_total_mb",
        )
        d = self.to_dict()
        payload = {k: d[k] for k in keys}
        payload["gpus"] = [(g["name"], g["memory_mb"]) for g in d["gpus"]]
        blob = json.dumps(payload, sort_keys=True).encode()
        slug = re.sub(r"[^a-z0-9]+", "-", self.cpu_model.lower()).strip("-")[:24] or "device"
        return f"{slug}-{hashlib.sha256(blob).hexdigest()[:10]}"

    # ------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | Path | None = None) -> DeviceProfile:
        """Build a profile from :meth:`to_dict` output, validating field names and types.

        Args:
            data: The mapping to read.
            path: File it came from, used in error messages.

        Raises:
            DeviceProfileError: Unknown or missing fields, wrong types or values.
        """
        where = path if path is not None else "<dict>"
        if not isinstance(data, dict):
            raise DeviceProfileError(where, "a device profile must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise DeviceProfileError(
                where, f"unknown field(s) {unknown}; valid fields: {sorted(known)}"
            )
        if "name" not in data:
            raise DeviceProfileError(where, "missing required field 'name'")
        version = data.get("schema_version", PROFILE_SCHEMA_VERSION)
        if version != PROFILE_SCHEMA_VERSION:
            raise DeviceProfileError(
                where, f"schema_version {version!r} is not supported (expected 1)"
            )
        kw = dict(data)
        try:
            kw["gpus"] = [GpuInfo(**g) for g in data.get("gpus", [])]
        except TypeError as exc:
            raise DeviceProfileError(where, f"bad 'gpus' entry: {exc}") from None
        prof = cls(**kw)
        int_fields = ("physical_cores", "logical_cores", "threads_available", "memory_total_mb")
        for name in int_fields:
            value = getattr(prof, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DeviceProfileError(
                    where, f"field {name!r} must be a non-negative integer, got {value!r}"
                )
        if not isinstance(prof.isa_flags, list):
            raise DeviceProfileError(where, "field 'isa_flags' must be a list of strings")
        bad = sorted(f for f in prof.isa_flags if f not in KNOWN_ISA_FLAGS)
        if bad:
            raise DeviceProfileError(
                where, f"unknown ISA flag(s) {bad}; known flags: {list(KNOWN_ISA_FLAGS)}"
            )
        if prof.source not in ("detected", "spec-sheet"):
            raise DeviceProfileError(
                where, f"field 'source' must be 'detected' or 'spec-sheet', got {prof.source!r}"
            )
        return prof

    def save(self, path: str | Path) -> Path:
        """Write the profile as indented JSON and return the path."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return p

    @classmethod
    def load(cls, path: str | Path) -> DeviceProfile:
        """Read a profile written by :meth:`save` (or by hand).

        Raises:
            DeviceProfileError: The file is missing, not JSON, or not a valid profile.
        """
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise DeviceProfileError(p, f"cannot read: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeviceProfileError(
                p, f"not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from None
        return cls.from_dict(data, path=p)

    # ------------------------------------------------------------------ features
    @staticmethod
    def feature_names() -> tuple[str, ...]:
        """Names of :meth:`to_features`, in order (stable across releases of one schema)."""
        names = [f"arch_{a}" for a in _ARCH_FEATURES]
        names += [
            "physical_cores",
            "logical_cores",
            "threads_available",
            "freq_max_ghz",
            "log2_l1d_kb",
            "log2_l2_kb",
            "log2_l3_kb",
            "memory_gb",
        ]
        names += [f"isa_{f}" for f in KNOWN_ISA_FLAGS]
        names += ["gpu_count", "gpu_memory_gb", "gpu_compute_capability"]
        return tuple(names)

    def to_features(self) -> dict[str, float]:
        """Return a fixed-order numeric description for learned models.

        Unknown values are 0. Cache sizes are ``log2(1 + KiB)``; ISA flags are 0/1;
        GPU figures describe the largest GPU.
        """
        feats: dict[str, float] = {f"arch_{a}": float(self.arch == a) for a in _ARCH_FEATURES}
        feats["physical_cores"] = float(self.physical_cores)
        feats["logical_cores"] = float(self.logical_cores)
        feats["threads_available"] = float(self.threads_available)
        feats["freq_max_ghz"] = (self.freq_max_mhz or 0.0) / 1000.0
        feats["log2_l1d_kb"] = math.log2(1 + (self.l1d_cache_kb or 0))
        feats["log2_l2_kb"] = math.log2(1 + (self.l2_cache_kb or 0))
        feats["log2_l3_kb"] = math.log2(1 + (self.l3_cache_kb or 0))
        feats["memory_gb"] = self.memory_total_mb / 1024.0
        flags = set(self.isa_flags)
        for f in KNOWN_ISA_FLAGS:
            feats[f"isa_{f}"] = float(f in flags)
        best = max(self.gpus, key=lambda g: g.memory_mb, default=None)
        feats["gpu_count"] = float(len(self.gpus))
        feats["gpu_memory_gb"] = (best.memory_mb / 1024.0) if best else 0.0
        cc = 0.0
        if best is not None and best.compute_capability:
            with contextlib.suppress(ValueError):
                cc = float(best.compute_capability)
        feats["gpu_compute_capability"] = cc
        return feats

    # ------------------------------------------------------------------ detection
    @classmethod
    def detect(cls, *, probe_gpus: bool = True) -> DeviceProfile:
        """Describe the machine this process runs on.

        Reads ``/proc/cpuinfo``, ``/sys/devices/system/cpu`` and ``/proc/meminfo`` on
        Linux, falling back to :mod:`platform` / :mod:`os` elsewhere; GPUs come from
        ``nvidia-smi`` when it is on ``PATH``. Nothing here needs network access or
        imports a deep-learning library.

        Args:
            probe_gpus: Run ``nvidia-smi`` (bounded by a 10 s timeout) to list GPUs.
        """
        cpuinfo = _read_cpuinfo()
        arch = _ARCH_ALIASES.get(platform.machine().lower(), platform.machine().lower())
        model = cpuinfo.get("model name") or cpuinfo.get("Hardware") or platform.processor()
        vendor = cpuinfo.get("vendor_id", "")
        if not vendor and "CPU implementer" in cpuinfo:
            vendor = _ARM_IMPLEMENTERS.get(cpuinfo["CPU implementer"].lower(), "ARM")
        if not model and arch in ("aarch64", "arm32"):
            model = _arm_model_name(cpuinfo)
        raw_flags = set((cpuinfo.get("flags") or cpuinfo.get("Features") or "").split())
        flags = sorted({_RAW_ISA[f] for f in raw_flags if f in _RAW_ISA})
        if arch == "aarch64" and "neon" not in flags:
            flags = sorted({*flags, "neon"})  # Advanced SIMD is mandatory on AArch64
        logical = os.cpu_count() or 1
        physical = _physical_cores() or logical
        try:
            threads = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            threads = logical
        quota = _cgroup_cpu_quota()
        if quota is not None:
            threads = max(1, min(threads, math.ceil(quota)))
        fmax, fmin = _cpu_freqs_mhz(cpuinfo)
        l1, l2, l3 = _cache_sizes_kb()
        mem = _memory_mb()
        return cls(
            name=(model or arch or "unknown").strip(),
            source="detected",
            os=platform.system(),
            os_release=platform.release(),
            arch=arch,
            cpu_model=(model or "").strip(),
            cpu_vendor=vendor,
            physical_cores=physical,
            logical_cores=logical,
            threads_available=threads,
            freq_max_mhz=fmax,
            freq_min_mhz=fmin,
            isa_flags=flags,
            l1d_cache_kb=l1,
            l2_cache_kb=l2,
            l3_cache_kb=l3,
            memory_total_mb=mem,
            gpus=_nvidia_gpus() if probe_gpus else [],
        )


# ---------------------------------------------------------------------- helpers
_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x51": "Qualcomm", "0x61": "Apple", "0x48": "HiSilicon"}
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}


def _read_text(path: str | Path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _read_cpuinfo() -> dict[str, str]:
    """First occurrence of each key in /proc/cpuinfo (empty dict elsewhere)."""
    text = _read_text("/proc/cpuinfo") or ""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key and key not in out:
            out[key] = value.strip()
    return out


def _arm_model_name(cpuinfo: dict[str, str]) -> str:
    part = cpuinfo.get("CPU part", "").lower()
    return _ARM_PARTS.get(part, f"ARM part {part}" if part else "ARM")


def _physical_cores() -> int | None:
    base = Path("/sys/devices/system/cpu")
    cores: set[tuple[str, str]] = set()
    for topo in base.glob("cpu[0-9]*/topology"):
        pkg = _read_text(topo / "physical_package_id")
        core = _read_text(topo / "core_id")
        if pkg is None or core is None:
            return None
        cores.add((pkg.strip(), core.strip()))
    if cores:
        return len(cores)
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
        return int(n) if n else None
    except ImportError:
        return None


def _cgroup_cpu_quota() -> float | None:
    text = _read_text("/sys/fs/cgroup/cpu.max")
    if not text:
        return None
    parts = text.split()
    if len(parts) == 2 and parts[0] != "max":
        try:
            return int(parts[0]) / int(parts[1])
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _cpu_freqs_mhz(cpuinfo: dict[str, str]) -> tuple[float | None, float | None]:
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    fmax = _read_text(base / "cpuinfo_max_freq")
    fmin = _read_text(base / "cpuinfo_min_freq")
    if fmax:
        try:
            return int(fmax) / 1000.0, (int(fmin) / 1000.0 if fmin else None)
        except ValueError:
            pass
    mhz = cpuinfo.get("cpu MHz")
    if mhz:
        try:
            return float(mhz), None
        except ValueError:
            pass
    return None, None


def _parse_size_kb(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    mult = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024 * 1024}[m.group(2).upper()]
    return int(int(m.group(1)) * mult)


def _cache_sizes_kb() -> tuple[int | None, int | None, int | None]:
    sizes: dict[int, int] = {}
    for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index[0-9]*")):
        level = _read_text(idx / "level")
        ctype = _read_text(idx / "type")
        size = _read_text(idx / "size")
        if not level or not size or not ctype or ctype.strip() == "Instruction":
            continue
        kb = _parse_size_kb(size)
        if kb is not None:
            sizes[int(level)] = kb
    return sizes.get(1), sizes.get(2), sizes.get(3)


def _memory_mb() -> int:
    total: int | None = None
    text = _read_text("/proc/meminfo")
    if text:
        m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
        if m:
            total = int(m.group(1)) // 1024
    if total is None:
        try:
            import psutil

            total = int(psutil.virtual_memory().total) // (1024 * 1024)
        except ImportError:
            total = 0
    limit = _read_text("/sys/fs/cgroup/memory.max")
    if limit and limit.strip().isdigit():
        total = min(total, int(limit) // (1024 * 1024)) if total else int(limit) // (1024 * 1024)
    return total


def _nvidia_gpus() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = "--query-gpu=name,memory.total,compute_cap,driver_version"
    try:
        proc = subprocess.run(
            [exe, query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []
    gpus = []
    for line in proc.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            mem = int(float(parts[1]))
        except ValueError:
            mem = 0
        cc = parts[2] if re.fullmatch(r"\d+\.\d+", parts[2]) else None
        gpus.append(
            GpuInfo(
                name=parts[0],
                vendor="nvidia",
                memory_mb=mem,
                compute_capability=cc,
                driver=parts[3],
            )
        )
    return gpus


# ---------------------------------------------------------------------- CLI
def _cmd_device(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    prof = DeviceProfile.load(args.profile) if args.profile else DeviceProfile.detect()
    if args.save:
        prof.save(args.save)
    if args.json:
        print(json.dumps({**prof.to_dict(), "device_id": prof.device_id}, indent=2))
        return 0
    table = Table(title=f"Device profile ({prof.source})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("device_id", prof.device_id)
    for key, value in prof.to_dict().items():
        if key == "gpus":
            value = (
                ", ".join(
                    f"{g['name']} ({g['memory_mb']} MiB, cc {g['compute_capability'] or '-'})"
                    for g in value
                )
                or "none"
            )
        elif key == "isa_flags":
            value = " ".join(value) or "-"
        table.add_row(key, "-" if value is None else str(value))
    Console().print(table)
    if args.save:
        Console().print(f"saved to {args.save}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``graphrec device`` to the CLI."""
    p = subparsers.add_parser(
        "device",
        help="detect and print this machine's device profile",
        description="Detect this machine's device profile (CPU, ISA flags, caches, "
        "memory, GPUs) or show a saved one.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--save", metavar="PATH", help="also write the profile to PATH")
    p.add_argument("--profile", metavar="PATH", help="show a saved profile instead of detecting")
    p.set_defaults(func=_cmd_device)
