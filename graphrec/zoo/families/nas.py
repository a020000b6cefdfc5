"""NAS-Bench-201 networks built from their architecture strings.

The cell search space of NAS-Bench-201 (Dong & Yang, ICLR 2020) has six edges, each one
of five operations, so 5**6 = 15,625 cells. ``data/nb201_arch_codes.u16.gz`` maps the
official architecture index (the ``arch_index`` of the NAS-Bench-201 latency table in
``/work/shared/data/nasbench201``, from the HELP / HW-NAS-Bench releases) to the cell,
encoded as six base-5 digits in ``arch_str`` edge order. Sampling draws an official index,
so every generated network can be joined with the latencies measured on 13 devices.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrec.errors import ZooArchStringError as ArchStringError
from graphrec.zoo._spec import Family, ParamSampler, image_input, sample_batch

#: The five NAS-Bench-201 operations, in the order of their base-5 digit.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Number of architectures in the space.
NB201_SIZE = 5**6


@functools.lru_cache(maxsize=1)
def _codes() -> np.ndarray:
    data = resources.files("graphrec.zoo").joinpath("data/nb201_arch_codes.u16.gz").read_bytes()
    return np.frombuffer(gzip.decompress(data), dtype="<u2")


def arch_str_from_index(index: int) -> str:
    """The official NAS-Bench-201 architecture string of ``arch_index``.

    Example:
        >>> arch_str_from_index(0)
        '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
    """
    if not 0 <= index < NB201_SIZE:
        raise ArchStringError(f"arch_index {index} is outside [0, {NB201_SIZE})")
    code = int(_codes()[index])
    digits = [(code // 5**k) % 5 for k in range(5, -1, -1)]
    ops = [NB201_OPS[d] for d in digits]
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def parse_arch_str(arch: str) -> list[list[tuple[str, int]]]:
    """Parse ``|op~0|+|op~0|op~1|+|...|`` into, per node 1..3, its ``(op, source)`` edges."""
    nodes: list[list[tuple[str, int]]] = []
    for n, part in enumerate(arch.strip().strip("|").split("|+|"), start=1):
        edges = []
        for item in part.split("|"):
            op, sep, src = item.partition("~")
            if not sep or op not in NB201_OPS or not src.isdigit() or int(src) >= n:
                raise ArchStringError(f"bad edge {item!r} in architecture string {arch!r}")
            edges.append((op, int(src)))
        nodes.append(edges)
    if len(nodes) != 3 or [len(e) for e in nodes] != [1, 2, 3]:
        raise ArchStringError(f"architecture string {arch!r} does not have the 1+2+3 edge layout")
    return nodes


class _ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        )


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(channels, channels, 3, 1)
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class _Cell(nn.Module):
    def __init__(self, arch: list[list[tuple[str, int]]], channels: int) -> None:
        super().__init__()
        self.arch = arch
        self.edges = nn.ModuleList(_op(op, channels) for node in arch for op, _ in node)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        k = 0
        for node in self.arch:
            total: torch.Tensor | None = None
            for _, src in node:
                y = self.edges[k](states[src])
                k += 1
                total = y if total is None else total + y
            assert total is not None
            states.append(total)
        return states[-1]


class _Reduction(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = _ReLUConvBN(cout, cout, 3, 1)
        self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x) + self.conv_b(self.conv_a(x))


def _nb201_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [16, 32, 64], p=[0.2, 0.6, 0.2])
    index = s.integer("arch_index", 0, NB201_SIZE - 1)
    s.set("arch_str", arch_str_from_index(index))
    s.choice("channels", [8, 16, 24, 32], p=[0.15, 0.55, 0.15, 0.15])
    s.choice("cells_per_stage", [1, 2, 3, 5], p=[0.15, 0.15, 0.15, 0.55])
    s.choice("classes", [10, 100, 120])


def _nb201_build(p: Mapping[str, Any]) -> nn.Module:
    arch = parse_arch_str(str(p["arch_str"]))
    c = int(p["channels"])
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
    cin = c
    for stage in range(3):
        cout = c * 2**stage
        if stage > 0:
            layers.append(_Reduction(cin, cout))
        layers += [_Cell(arch, cout) for _ in range(int(p["cells_per_stage"]))]
        cin = cout
    layers += [
        nn.BatchNorm2d(cin),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(cin, int(p["classes"])),
    ]
    return nn.Sequential(*layers)


NB201 = Family(
    "nb201",
    "NAS-Bench-201 cell networks built from official architecture strings (arch_index)",
    "nas",
    _nb201_sample,
    _nb201_build,
    image_input,
)
