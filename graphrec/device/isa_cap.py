"""ISA-capped device configurations: this host with its oneDNN-based runtimes limited.

oneDNN (inside PyTorch and OpenVINO's CPU plugin) reads ``ONEDNN_MAX_CPU_ISA`` and
dispatches no instruction set above it; PyTorch's own ATen kernels read
``ATEN_CPU_CAPABILITY``. Setting both in the benchmark workers gives a configuration
that behaves, for those runtimes, like a CPU without AVX-512. It is **the same host,
ISA capped, not a different real CPU**: caches, cores, memory and frequency stay the
host's, and runtimes that do not use oneDNN (onnxruntime's MLAS, XNNPACK in LiteRT and
ExecuTorch, MNN, ncnn, tract) keep using every instruction set the CPU has.

What was verified on the AMD EPYC (Zen 4) host (``benchmarks/bench_devices.py --isa``,
report ``benchmarks/reports/bench_devices_isa.md``):

* PyTorch: honoured. ``ONEDNN_VERBOSE`` shows convolutions on ``jit:avx2`` instead of
  ``jit:avx512_core``; ``torch.backends.cpu.get_cpu_capability()`` reads ``AVX2``.
* OpenVINO: honoured by its oneDNN kernels (``brgconv_avx2_f32`` instead of
  ``brgconv_avx512_f32`` in the runtime model), but the plugin's own CPU check still
  sees AVX-512 BF16: with the default (bf16) inference precision, compiling fails under
  the cap. fp32 candidates (precision set explicitly, as graphrec does) work; the capped
  profile drops ``avx512_bf16`` so no bf16 candidate is planned.
* onnxruntime: not honoured (MLAS does its own CPU dispatch; latencies equal within
  noise), so it is not re-measured on a capped configuration.

Example:
    >>> from graphrec.device import DeviceProfile
    >>> from graphrec.device.isa_cap import capped_profile
    >>> host = DeviceProfile(name="x", isa_flags=["avx2", "avx512f", "fma"])
    >>> capped = capped_profile(host, "avx2")
    >>> capped.isa_flags, capped.isa_cap
    (['avx2', 'fma'], 'avx2')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from graphrec.device.profile import DeviceProfile
from graphrec.errors import DeviceProfileError

__all__ = ["CAPPED_RUNTIMES", "ISA_CAPS", "IsaCap", "cap_env", "capped_profile"]


@dataclass(frozen=True)
class IsaCap:
    """One ISA cap.

    Attributes:
        name: Cap name as used on the command line (``avx2``).
        env: Environment the benchmark workers get.
        keeps: Canonical ISA flags (:data:`~graphrec.device.profile.KNOWN_ISA_FLAGS`)
            that stay visible under the cap; the others are dropped from the profile.
        label: Plain description for tables.
    """

    name: str
    env: dict[str, str]
    keeps: frozenset[str]
    label: str


_AVX2_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})

#: Known caps. ``MKL_ENABLE_INSTRUCTIONS`` is set as well for PyTorch's MKL GEMMs (its
#: effect was not observable on the AMD host).
ISA_CAPS: dict[str, IsaCap] = {
    "avx2": IsaCap(
        name="avx2",
        env={
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "DNNL_MAX_CPU_ISA": "AVX2",
            "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        },
        keeps=_AVX2_FLAGS,
        label="same host, oneDNN/ATen capped at AVX2 (not a different CPU)",
    ),
    "avx512_core": IsaCap(
        name="avx512_core",
        env={
            "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
            "DNNL_MAX_CPU_ISA": "AVX512_CORE",
            "MKL_ENABLE_INSTRUCTIONS": "AVX512",
        },
        keeps=_AVX2_FLAGS | {"avx512f", "avx512bw", "avx512vl"},
        label="same host, oneDNN capped at AVX-512 without VNNI/BF16 (not a different CPU)",
    ),
}

#: Runtimes whose kernels the caps change (verified); only these are re-measured.
CAPPED_RUNTIMES: tuple[str, ...] = ("torch", "openvino")


def _cap(name: str) -> IsaCap:
    try:
        return ISA_CAPS[name.lower()]
    except KeyError:
        raise DeviceProfileError(
            "<isa cap>", f"unknown ISA cap {name!r}; known caps: {sorted(ISA_CAPS)}"
        ) from None


def cap_env(name: str) -> dict[str, str]:
    """Environment for benchmark workers under the cap ``name``.

    Raises:
        DeviceProfileError: Unknown cap.
    """
    return dict(_cap(name).env)


def capped_profile(profile: DeviceProfile, name: str) -> DeviceProfile:
    """The profile of ``profile``'s host under the ISA cap ``name``.

    ISA flags above the cap are dropped, ``isa_cap`` is set (so the ``device_id``
    differs from the host's) and the notes say it is the same host, capped.

    Raises:
        DeviceProfileError: Unknown cap, a non-x86 profile, a profile that is already
            capped, or a host without the cap's instruction sets.
    """
    cap = _cap(name)
    if profile.arch not in ("x86_64", ""):
        raise DeviceProfileError(
            profile.name, f"ISA caps apply to x86_64 hosts, this profile is {profile.arch}"
        )
    if profile.isa_cap is not None:
        raise DeviceProfileError(profile.name, f"already capped at {profile.isa_cap!r}")
    flags = [f for f in profile.isa_flags if f in cap.keeps]
    if len(flags) == len(profile.isa_flags):
        raise DeviceProfileError(
            profile.name, f"has no instruction set above {cap.name}, so the cap changes nothing"
        )
    note = f"{cap.label}; host {profile.device_id}"
    return dataclasses.replace(
        profile,
        name=f"{profile.name} [ISA cap {cap.name}]",
        isa_flags=flags,
        isa_cap=cap.name,
        notes=f"{profile.notes}; {note}" if profile.notes else note,
        calibration=None,
        microbench=None,
    )
