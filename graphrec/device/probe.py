"""Probing the machine this process runs on: CPU, ISA flags, caches, memory, GPUs.

Reads ``/proc/cpuinfo``, ``/sys/devices/system/cpu``, ``/proc/meminfo`` and cgroup
limits on Linux, falling back to :mod:`platform` / :mod:`os` elsewhere; GPUs come from
``nvidia-smi`` when it is on ``PATH``. Nothing here needs network access or imports a
deep-learning library.

Example:
    >>> from graphrec.device.probe import detect_profile
    >>> detect_profile(probe_gpus=False).source
    'detected'
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from graphrec.device.profile import DeviceProfile, GpuInfo

__all__ = ["detect_profile"]

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


def detect_profile(*, probe_gpus: bool = True) -> DeviceProfile:
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
    return DeviceProfile(
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
