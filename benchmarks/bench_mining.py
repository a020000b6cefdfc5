"""Scanning speed of ``graphrec mine`` (MB/s) over a generated folder of APK-like archives.

Each generated app is a zip with native libraries per ABI (random bytes behind
an ELF header, some carrying framework markers), ONNX models built with
``onnx.helper`` (real protobuf with a Conv initializer), high-entropy media and
opaque blobs, compressible resources and a dex file, plus one nested zip.

Three timings are taken in the same run, as medians of ``--repeats`` rounds in
interleaved order:

* ``inflate``: the baseline, reading every member of every archive once with
  :mod:`zipfile` (pure decompression, no analysis);
* ``scan``: :func:`graphrec.mining.scan` with defaults (ONNX through the C++ kernel);
* ``scan_no_onnx``: the same without the kernel analysis.

Speeds are given per MB on disk and per MB decompressed. Results are printed
and written to ``bench-results/bench_mining.json``.

Usage:
    python benchmarks/bench_mining.py [--apps 12] [--repeats 3] [--out bench-results]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphrec.mining import scan

_MARKERS = (b"_ZN6tflite11Interpreter", b"OrtGetApiBase", b"_ZN4ncnn3Net", b"_ZN3MNN11Interpreter")


def _onnx_model(rng: np.random.Generator, channels: int) -> bytes:
    w = rng.standard_normal((channels, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["y"], ["z"]),
            helper.make_node("Conv", ["z", "w2"], ["out"], pads=[1, 1, 1, 1]),
        ],
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, channels, 64, 64])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def _elf(rng: np.random.Generator, size: int, marker: bytes | None) -> bytes:
    head = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x03\x00\xb7\x00"
    blocks = rng.integers(0, 256, (size // 64, 64), dtype=np.uint8)
    blocks[::2] = 0  # native code compresses about 2x: zero every other 64-byte block
    body = bytearray(blocks.tobytes())
    if marker:
        pos = 64 * (len(blocks) // 2 | 1)  # an odd (random) block, kept intact
        body[pos : pos + len(marker)] = marker
    return head + bytes(body)


def make_apps(folder: Path, n_apps: int, seed: int = 0) -> int:
    """Write ``n_apps`` APK-like archives; returns the bytes on disk."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(n_apps):
        members: dict[str, bytes] = {
            "AndroidManifest.xml": b"\x03\x00\x08\x00" + bytes(4096),
            "classes.dex": b"dex\n035\0" + rng.integers(0, 64, 2_000_000, dtype=np.uint8).tobytes(),
        }
        for abi in ("arm64-v8a", "armeabi-v7a"):
            for j in range(3):
                marker = _MARKERS[(i + j) % len(_MARKERS)] if j == 0 else None
                members[f"lib/{abi}/libmod{j}.so"] = _elf(rng, 1_000_000 + 300_000 * j, marker)
        for j in range(2):
            members[f"assets/models/m{j}.onnx"] = _onnx_model(rng, 16 + 16 * j)
        members["assets/blob.dat"] = rng.integers(0, 256, 1_500_000, dtype=np.uint8).tobytes()
        for j in range(30):
            members[f"res/drawable/img{j}.png"] = (
                b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes()
            )
            members[f"res/layout/l{j}.xml"] = b"<LinearLayout android:id='x'/>\n" * 400
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("model.onnx", _onnx_model(rng, 8))
        members["assets/pack.zip"] = inner.getvalue()
        path = folder / f"app{i:03d}.apk"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        total += path.stat().st_size
    return total


def _inflate_all(folder: Path) -> int:
    n = 0
    for path in sorted(folder.glob("*.apk")):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    while chunk := f.read(1 << 20):
                        n += len(chunk)
    return n


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-mining-") as tmp:
        folder = Path(tmp)
        disk = make_apps(folder, args.apps)
        expanded = _inflate_all(folder)
        runs: dict[str, list[float]] = {"inflate": [], "scan": [], "scan_no_onnx": []}
        found: dict[str, Any] = {}
        for _ in range(args.repeats):
            for name in runs:  # interleaved rounds
                t = time.perf_counter()
                if name == "inflate":
                    _inflate_all(folder)
                else:
                    inv = scan([folder], analyze_onnx=name == "scan")
                    found = {
                        "models": len(inv.models),
                        "framework_libraries": len(inv.libraries),
                        "issues": len(inv.issues),
                        "bytes_read": inv.stats.bytes_read,
                    }
                runs[name].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "benchmark": "bench_mining",
        "apps": args.apps,
        "repeats": args.repeats,
        "mb_on_disk": round(disk / 1e6, 2),
        "mb_decompressed": round(expanded / 1e6, 2),
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "mb_per_s_on_disk": {k: round(disk / 1e6 / v, 1) for k, v in med.items()},
        "mb_per_s_decompressed": {k: round(expanded / 1e6 / v, 1) for k, v in med.items()},
        "ratio_vs_inflate": {k: round(v / med["inflate"], 2) for k, v in med.items()},
        "last_scan": found,
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or "?",
            "onnx": onnx.__version__,
        },
    }
    print(f"{args.apps} apps, {result['mb_on_disk']} MB on disk, "
          f"{result['mb_decompressed']} MB decompressed, median of {args.repeats}")  # fmt: skip
    print(f"{'variant':<14}{'seconds':>9}{'MB/s disk':>11}{'MB/s infl.':>12}{'x inflate':>11}")
    for k in runs:
        print(f"{k:<14}{med[k]:>9.3f}{result['mb_per_s_on_disk'][k]:>11}"
              f"{result['mb_per_s_decompressed'][k]:>12}{result['ratio_vs_inflate'][k]:>11}")  # fmt: skip
    print(f"last scan: {found}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bench_mining.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
