"""Build and run generated code: gcc on the host, avr-gcc + simavr for the AVR targets."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.mcu.errors import ToolchainError
from graphrec.mcu.targets import Target

__all__ = ["AvrRun", "Firmware", "build_avr", "build_host", "harness_path", "run_avr", "run_host"]

_INSTALL_HINT = (
    "install the Debian packages gcc-avr, binutils-avr, avr-libc, simavr and libsimavr-dev "
    "(`make sysdeps` does it)"
)


def _runtime_file(name: str) -> Path:
    return Path(str(resources.files("graphrec.mcu") / "runtime" / name))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        hint = _INSTALL_HINT if name.startswith("avr") else "install gcc"
        raise ToolchainError(f"{name} not found on PATH; {hint}")
    return path


def _run(cmd: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    try:
        res = subprocess.run(cmd, capture_output=True, **kw)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what} timed out: {' '.join(cmd)}") from None
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace")[-3000:]
        raise ToolchainError(f"{what} failed ({res.returncode}): {' '.join(cmd)}\n{err}")
    return res


def _defines(name: str) -> list[str]:
    P = name.upper()
    return [
        f'-DMODEL_H="{name}.h"',
        f"-DMODEL_INPUT={name}_input",
        f"-DMODEL_OUTPUT={name}_output",
        f"-DMODEL_RUN={name}_run",
        f"-DMODEL_INPUT_BYTES={P}_INPUT_BYTES",
        f"-DMODEL_OUTPUT_BYTES={P}_OUTPUT_BYTES",
    ]


def build_host(
    src_dir: Path,
    name: str,
    *,
    opt: str = "-O2",
    include_dirs: tuple[Path, ...] = (),
    strict: bool = True,
) -> Path:
    """Compile ``<name>.c`` with the host gcc (C99, pedantic, warnings are errors).

    Args:
        src_dir: Folder of ``<name>.c`` and ``<name>.h``.
        name: The model's C prefix.
        opt: Optimization flag.
        include_dirs: More header folders (another library's, for comparisons).
        strict: ``-pedantic -Werror`` (off for third-party code).

    Returns:
        The executable (reads inputs on stdin, writes outputs on stdout).
    """
    gcc = _tool("gcc")
    exe = src_dir / f"{name}_host"
    cmd = [
        gcc,
        "-std=c99",
        *(["-pedantic", "-Werror"] if strict else []),
        "-Wall",
        "-Wextra",
        opt,
        f"-I{src_dir}",
        *[f"-I{d}" for d in include_dirs],
        *_defines(name),
        str(src_dir / f"{name}.c"),
        str(_runtime_file("main_host.c")),
        "-lm",
        "-o",
        str(exe),
    ]
    _run(cmd, "gcc", timeout=120)
    return exe


def run_host(exe: Path, inputs: np.ndarray, out_dtype: np.dtype[Any], out_size: int) -> np.ndarray:
    """Run the host executable on a batch; returns ``(N, out_size)`` outputs."""
    data = np.ascontiguousarray(inputs).tobytes()
    res = _run([str(exe)], "the host model", input=data, timeout=120)
    out = np.frombuffer(res.stdout, dtype=out_dtype)
    n = inputs.shape[0]
    if out.size != n * out_size:
        raise ToolchainError(f"{exe}: {out.size} output values for {n} inputs x {out_size}")
    return out.reshape(n, out_size)


@dataclass
class Firmware:
    """An AVR build: the ELF and its section sizes."""

    elf: Path
    text: int
    data: int
    bss: int
    eeprom: int
    symbols: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def flash_bytes(self) -> int:
        """Program memory used (code, constants, the initial image of ``.data``)."""
        return self.text + self.data

    @property
    def static_sram_bytes(self) -> int:
        """SRAM of ``.data`` and ``.bss`` (before the stack)."""
        return self.data + self.bss


def build_avr(
    src_dir: Path,
    name: str,
    target: Target,
    *,
    opt: str = "-O2",
    include_dirs: tuple[Path, ...] = (),
) -> Firmware:
    """Compile the model and the serial harness with avr-gcc for ``target``.

    ``include_dirs`` adds header folders (another library's, for comparisons).

    Raises:
        ToolchainError: avr-gcc missing or failing (a flash overflow is reported by the linker).
    """
    gcc = _tool("avr-gcc")
    elf = src_dir / f"{name}_{target.name}.elf"
    cmd = [
        gcc,
        f"-mmcu={target.mcu}",
        f"-DF_CPU={target.clock_hz}UL",
        "-std=c99",
        "-Wall",
        "-Wextra",
        opt,
        "-ffunction-sections",
        "-fdata-sections",
        "-Wl,--gc-sections",
        f"-I{src_dir}",
        *[f"-I{d}" for d in include_dirs],
        *_defines(name),
        str(src_dir / f"{name}.c"),
        str(_runtime_file("main_avr.c")),
        "-o",
        str(elf),
        "-lm",
    ]
    _run(cmd, "avr-gcc", timeout=300)
    sizes = _run([_tool("avr-size"), "-A", str(elf)], "avr-size").stdout.decode()
    sec: dict[str, int] = {}
    for line in sizes.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    nm = _run([_tool("avr-nm"), "-S", "--size-sort", str(elf)], "avr-nm").stdout.decode()
    symbols: dict[str, tuple[int, int]] = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("gr_c_"):
            symbols[parts[3][5:]] = (int(parts[0], 16), int(parts[1], 16))
    return Firmware(
        elf,
        sec.get(".text", 0),
        sec.get(".data", 0),
        sec.get(".bss", 0),
        sec.get(".eeprom", 0),
        symbols,
    )


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphrec" / "mcu"


def harness_path() -> Path:
    """The simavr harness executable, compiled on first use (cached by source hash)."""
    src = _runtime_file("avr_run.c")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    exe = _cache_dir() / f"avr_run-{digest}"
    if exe.exists():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    if not Path("/usr/include/simavr/sim_avr.h").exists() and shutil.which("simavr") is None:
        raise ToolchainError(f"simavr is not installed; {_INSTALL_HINT}")
    tmp = exe.with_suffix(f".tmp{os.getpid()}")
    cmd = [
        _tool("gcc"),
        "-O2",
        "-std=gnu99",
        "-I/usr/include/simavr",
        str(src),
        "-o",
        str(tmp),
        "-lsimavr",
        "-lelf",
    ]
    try:
        _run(cmd, "building the simavr harness (needs libsimavr-dev)", timeout=120)
    except ToolchainError:
        cmd.remove("-lelf")
        _run(cmd, f"building the simavr harness; {_INSTALL_HINT}", timeout=120)
    os.replace(tmp, exe)
    return exe


@dataclass
class AvrRun:
    """What one simavr run measured."""

    outputs: np.ndarray
    cycles: list[int]
    stack_bytes: int
    heap_start: int
    raw: dict[str, Any]


def run_avr(
    fw: Firmware,
    target: Target,
    inputs: np.ndarray,
    out_dtype: np.dtype[Any],
    out_size: int,
    *,
    max_cycles: int | None = None,
    ext_image: Path | None = None,
) -> AvrRun:
    """Run ``fw`` in simavr on a batch of inputs sent over the UART.

    Returns:
        The outputs ``(N, out_size)``, the cycles of each inference and the stack peak.

    Raises:
        ToolchainError: The harness cannot be built, or the run did not complete.
    """
    exe = harness_path()
    n = inputs.shape[0]
    in_bytes = int(np.ascontiguousarray(inputs[0]).nbytes)
    out_bytes = out_size * np.dtype(out_dtype).itemsize
    work = fw.elf.parent
    fin, fout = work / "uart_in.bin", work / "uart_out.bin"
    fin.write_bytes(np.ascontiguousarray(inputs).tobytes())
    limit = max_cycles or 2_000_000_000
    cmd = [
        str(exe),
        str(target.mcu),
        str(target.clock_hz),
        str(fw.elf),
        str(fin),
        str(fout),
        str(in_bytes),
        str(out_bytes),
        str(limit),
        *([str(ext_image)] if ext_image is not None else []),
    ]
    res = subprocess.run(cmd, capture_output=True, timeout=600)
    text = res.stdout.decode(errors="replace").strip()
    try:
        raw = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        raw = {}
    if res.returncode != 0 or not raw:
        raise ToolchainError(
            f"simavr run of {fw.elf.name} did not complete: {text[-500:]} "
            f"{res.stderr.decode(errors='replace')[-1000:]}"
        )
    out = np.frombuffer(fout.read_bytes(), dtype=out_dtype)
    if out.size != n * out_size:
        raise ToolchainError(f"simavr: {out.size} output values for {n} inputs x {out_size}")
    ram_end = target.ram_start + target.sram_bytes - 1
    free = ram_end - int(raw["heap_start"]) + 1
    stack = free - int(raw["stack_unused"])
    return AvrRun(
        out.reshape(n, out_size),
        [int(c) for c in raw["cycles"]],
        stack,
        int(raw["heap_start"]),
        raw,
    )
