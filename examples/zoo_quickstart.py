"""Sample zoo models, export them to ONNX and run one in onnxruntime and in torch.

Run: ``python examples/zoo_quickstart.py [OUT_DIR]`` (default ``runs/zoo-example``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from graphrec.zoo import FAMILIES, ZooEntry, generate, verify


def main(out: Path) -> None:
    # One model: the architecture and weights are fixed by (family, seed).
    entry = ZooEntry.sample("mobilenet_v3", seed=7)
    print(entry.model_id, entry.params)
    info = entry.export(out / f"{entry.model_id}.onnx")
    print(f"wrote {info.path} ({info.num_bytes / 1e6:.1f} MB, graph hash {info.graph_hash})")

    inputs = entry.example_inputs()
    session = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
    feeds = {s.name: t.numpy() for s, t in zip(entry.input_specs, inputs, strict=True)}
    onnx_out = session.run(None, feeds)[0]
    with torch.no_grad():
        torch_out = entry.build_module()(*inputs).numpy()
    print(f"onnxruntime vs torch: max abs diff {np.abs(onnx_out - torch_out).max():.2e}")

    # A folder: one model of every family, deduplicated, with a manifest; resumable.
    report = generate(out / "folder", families=list(FAMILIES), count=len(FAMILIES))
    print(f"{report.total} models in {report.out_dir} ({len(report.duplicates)} duplicates)")
    checks = verify(out / "folder", sample=3)
    print(f"{sum(r.ok for r in checks)}/{len(checks)} regenerated bit-identically")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/zoo-example"))
