"""Device profiles: what a machine offers to an inference runtime.

A :class:`DeviceProfile` describes the CPU (model, architecture, cores, threads
available to this process, frequency, ISA extensions, caches), memory, the OS and
any GPUs. It is detected on the machine that runs the benchmark
(:meth:`DeviceProfile.detect`, :mod:`graphrec.device.probe`), saved beside
measurements, and turned into a fixed numeric vector (:meth:`DeviceProfile.to_features`,
:mod:`graphrec.device.features`) for the learned models.

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

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphrec.errors import DeviceProfileError

__all__ = ["ARCH_FEATURES", "KNOWN_ISA_FLAGS", "PROFILE_SCHEMA_VERSION", "DeviceProfile", "GpuInfo"]

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

#: Normalised architectures, in feature order.
ARCH_FEATURES: tuple[str, ...] = ("x86_64", "aarch64", "arm32", "riscv64")


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
        calibration: ``None``, or the record ``graphrec calibrate`` wrote: probe model ids,
            their measured latencies, the fitted adaptation parameters, K, the artefact it
            was fitted for and the date (JSON-serialisable; see
            :mod:`graphrec.device.calibrate`). A profile with a calibration is calibrated,
            not extrapolated. It does not enter :attr:`device_id`.
        isa_cap: ``None``, or the ISA cap this configuration runs under (``"avx2"``,
            ``"avx512_core"``; see :mod:`graphrec.device.isa_cap`): the same host with its
            oneDNN-based runtimes limited to that instruction set, not a different CPU.
            It enters :attr:`device_id` when set.
        microbench: ``None``, or measured micro-benchmarks of the device (GEMM GFLOP/s
            per precision and thread count, memory bandwidth, per-call dispatch overhead
            of each runtime; see :mod:`graphrec.device.microbench`). It does not enter
            :attr:`device_id`.
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
    calibration: dict[str, Any] | None = None
    isa_cap: str | None = None
    microbench: dict[str, Any] | None = None

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
        if self.isa_cap is not None:  # only when set: uncapped ids stay as they were
            payload["isa_cap"] = self.isa_cap
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
        if prof.calibration is not None and not isinstance(prof.calibration, dict):
            raise DeviceProfileError(
                where, f"field 'calibration' must be null or an object, got {prof.calibration!r}"
            )
        if prof.isa_cap is not None and not isinstance(prof.isa_cap, str):
            raise DeviceProfileError(
                where, f"field 'isa_cap' must be null or a string, got {prof.isa_cap!r}"
            )
        if prof.microbench is not None and not isinstance(prof.microbench, dict):
            raise DeviceProfileError(
                where, f"field 'microbench' must be null or an object, got {prof.microbench!r}"
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
        """Names of :meth:`to_features`, in order (see :mod:`graphrec.device.features`)."""
        from graphrec.device.features import feature_names

        return feature_names()

    def to_features(self) -> dict[str, float]:
        """Fixed-order numeric description for learned models
        (:func:`graphrec.device.features.profile_features`)."""
        from graphrec.device.features import profile_features

        return profile_features(self)

    # ------------------------------------------------------------------ detection
    @classmethod
    def detect(cls, *, probe_gpus: bool = True) -> DeviceProfile:
        """Describe the machine this process runs on (:func:`graphrec.device.probe.detect_profile`).

        Args:
            probe_gpus: Run ``nvidia-smi`` (bounded by a 10 s timeout) to list GPUs.
        """
        from graphrec.device.probe import detect_profile

        return detect_profile(probe_gpus=probe_gpus)
