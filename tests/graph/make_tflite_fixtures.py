"""Regenerate tests/graph/tflite_models/*.tflite with litert-torch (takes ~10-30 s each).

.venv/bin/python tests/graph/make_tflite_fixtures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    import litert_torch
    import torch

    sys.path.insert(0, str(HERE))
    from tflite_torch_models import FIXTURES, build

    out = HERE / "tflite_models"
    out.mkdir(exist_ok=True)
    for name, shape in FIXTURES.items():
        torch.manual_seed(0)
        args = (torch.randn(*shape),)
        litert_torch.convert(build(name), args).export(str(out / f"{name}.tflite"))
        print("wrote", out / f"{name}.tflite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
