"""Fuzz graphrec's TFLite reader (graphrec.graph.tflite): any exception other than a
GraphRecError, or a hang, is a bug.

    .venv/bin/python tests/fuzz/fuzz_tflite.py [SECONDS=60] [CORPUS_DIR ...]

With ``atheris`` installed (``pip install atheris``) it runs coverage-guided under
libFuzzer (``--atheris``, the remaining arguments go to libFuzzer); without it, a seeded
mutation loop: byte flips, truncations, splices and 32-bit offset rewrites of seed models
(the tests' hand-built int8/fp16/fp32 models, tests/graph/tflite_models/, and any
``*.tflite`` under the folders given). A failing input is written to
``fuzz-artifacts/tflite-crash-<sha>.tflite`` and the run exits with status 1.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "graph"))


def one_input(data: bytes) -> None:
    """The fuzz target: read and analyse ``data``; typed errors are the expected outcome."""
    from graphrec.errors import GraphRecError
    from graphrec.graph.tflite import load_tflite_bytes

    with contextlib.suppress(GraphRecError):
        load_tflite_bytes(data, name="fuzz")


def _seeds(folders: list[str]) -> list[bytes]:
    from tflite_builder import conv_model

    seeds = [conv_model(k) for k in ("int8", "fp16", "fp32")]
    for p in sorted((ROOT / "tests" / "graph" / "tflite_models").glob("*.tflite")):
        seeds.append(p.read_bytes())
    for folder in folders:
        for p in sorted(Path(folder).rglob("*.tflite")):
            if p.stat().st_size <= 4 << 20:
                seeds.append(p.read_bytes())
    return seeds


def _mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        if not buf:
            break
        if kind < 0.45:  # flip bytes
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind < 0.65 and len(buf) > 12:  # rewrite a 32-bit word (offsets, lengths)
            pos = rng.randrange(0, len(buf) - 4) & ~3
            value = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(buf), rng.randrange(1 << 32)])
            buf[pos : pos + 4] = struct.pack("<I", value)
        elif kind < 0.8:  # truncate
            del buf[rng.randrange(len(buf)) :]
        elif kind < 0.9:  # splice another seed in
            other = rng.choice(seeds)
            a = rng.randrange(len(buf))
            b = rng.randrange(len(other))
            buf[a:] = other[b : b + rng.randrange(1, 256)]
        else:  # duplicate a block
            a = rng.randrange(len(buf))
            buf[a:a] = buf[a : a + rng.randrange(1, 64)]
    return bytes(buf)


def _save_crash(data: bytes) -> Path:
    out = ROOT / "fuzz-artifacts"
    out.mkdir(exist_ok=True)
    path = out / f"tflite-crash-{hashlib.sha256(data).hexdigest()[:16]}.tflite"
    path.write_bytes(data)
    return path


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--atheris":
        import atheris  # type: ignore[import-not-found,unused-ignore]

        with atheris.instrument_imports():
            import graphrec.graph.tflite  # noqa: F401
        atheris.Setup([sys.argv[0], *argv[1:]], one_input)
        atheris.Fuzz()
        return 0
    seconds = float(argv[0]) if argv else 60.0
    seeds = _seeds(argv[1:])
    rng = random.Random(0)
    deadline = time.monotonic() + seconds
    runs = slowest = 0.0
    while time.monotonic() < deadline:
        data = _mutate(rng, rng.choice(seeds), seeds)
        t0 = time.perf_counter()
        try:
            one_input(data)
        except Exception:
            traceback.print_exc()
            print(f"fuzz_tflite: crash after {int(runs)} inputs, saved to {_save_crash(data)}")
            return 1
        dt = time.perf_counter() - t0
        if dt > 10.0:
            print(f"fuzz_tflite: {dt:.1f} s on one input, saved to {_save_crash(data)}")
            return 1
        slowest = max(slowest, dt)
        runs += 1
    print(
        f"fuzz_tflite: {int(runs)} inputs from {len(seeds)} seeds in {seconds:.0f} s, "
        f"no crash (slowest {slowest * 1000:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
