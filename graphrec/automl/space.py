"""The cell search space: operations, mixed edges, cells, super-network and found network.

A DARTS-style cell takes the outputs of the two previous cells, has
:data:`N_NODES` intermediate nodes, each the sum of one operation on every earlier state,
and outputs the concatenation of its nodes. A network is a stem convolution, ``depth``
cells (reduction cells, stride 2 and twice the channels, at a third and two thirds of
the depth) and a classifier. One-dimensional tasks (``H == 1``) use ``1 x k`` kernels
and strides, so one code path (and ONNX ``Conv``/``MaxPool`` nodes) serves both.

Two operation sets:

* :data:`DARTS_OPS`: DARTS's eight (``none``, two poolings, ``skip_connect``, separable
  and dilated convolutions at 3 and 5).
* :data:`LIGHT_OPS`: the optimised set of the staged search: ``none`` is dropped (never
  kept by the discretisation, it only rescales the others' weights), ``avg_pool`` too
  (redundant with ``max_pool``), the 5 x 5 convolutions too (about twice the CPU cost of
  their 3 x 3 versions; a dilated 3 x 3 has the same receptive field), and two
  CPU-cheap operations are added: ``conv_1x1`` and a plain ``conv_3x3`` (one fused
  Conv node where a separable convolution has six).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "DARTS_OPS",
    "LIGHT_OPS",
    "N_NODES",
    "Genotype",
    "build_network",
    "build_supernet",
    "n_edges",
]

DARTS_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
LIGHT_OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "skip_connect",
    "conv_1x1",
    "sep_conv_3x3",
    "dil_conv_3x3",
    "conv_3x3",
)
#: Intermediate nodes per cell.
N_NODES = 3
#: Operations without parameters (the ones DARTS's collapse favours).
PARAMETER_FREE = frozenset({"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"})


def n_edges(n_nodes: int = N_NODES) -> int:
    """Edges of a cell: node ``j`` has ``2 + j`` inputs."""
    return sum(2 + j for j in range(n_nodes))


@dataclass
class Genotype:
    """A discrete cell pair: per node, two ``(operation, input)`` pairs.

    Inputs are numbered as in DARTS: 0 and 1 are the two previous cells, ``2 + j``
    is intermediate node ``j``.

    Attributes:
        normal: ``[(op, input), ...]`` of the normal cell, two per node.
        reduce: The same for the reduction cell.
    """

    normal: list[tuple[str, int]] = field(default_factory=list)
    reduce: list[tuple[str, int]] = field(default_factory=list)

    def skip_count(self, cell: str = "normal") -> int:
        """Number of ``skip_connect`` operations in one cell."""
        return sum(op == "skip_connect" for op, _ in getattr(self, cell))

    def parameter_free_count(self, cell: str = "normal") -> int:
        """Number of parameter-free operations (skip, pooling) in one cell."""
        return sum(op in PARAMETER_FREE for op, _ in getattr(self, cell))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {k: [list(p) for p in v] for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Genotype:
        """Inverse of :meth:`to_dict`."""
        return cls(
            normal=[(str(o), int(i)) for o, i in d["normal"]],
            reduce=[(str(o), int(i)) for o, i in d["reduce"]],
        )


def _geom(is_1d: bool, k: int, stride: int = 1, dilation: int = 1) -> dict[str, Any]:
    """Kernel / stride / padding / dilation keywords for a square or 1 x k operation."""
    pad = dilation * (k - 1) // 2
    if is_1d:
        return {
            "kernel_size": (1, k),
            "stride": (1, stride),
            "padding": (0, pad),
            "dilation": (1, dilation),
        }
    return {"kernel_size": k, "stride": stride, "padding": pad, "dilation": dilation}


def _stem_and_cells(
    in_channels: int, c: int, depth: int, is_1d: bool, make_cell: Any
) -> tuple[nn.Sequential, nn.ModuleList, int]:
    """The stem and the stack of cells shared by the search and the final network.

    ``make_cell(reduction, c_prev_prev, c_prev, c, reduction_prev)`` builds one cell; the
    channels double at each reduction cell. Returns the stem, the cells and the channel
    count of the last cell's output.
    """
    c_stem = 2 * c
    stem = nn.Sequential(
        nn.Conv2d(in_channels, c_stem, bias=False, **_geom(is_1d, 3)),
        nn.BatchNorm2d(c_stem),
    )
    c_pp, c_p, c_cur = c_stem, c_stem, c
    cells = nn.ModuleList()
    red_prev = False
    reductions = _reduction_cells(depth)
    for i in range(depth):
        red = i in reductions
        if red:
            c_cur *= 2
        cells.append(make_cell(red, c_pp, c_p, c_cur, red_prev))
        red_prev = red
        c_pp, c_p = c_p, N_NODES * c_cur
    return stem, cells, c_p


def make_op(name: str, c: int, stride: int, is_1d: bool, affine: bool) -> nn.Module:
    """One candidate operation with ``c`` input and output channels."""

    def relu_conv_bn(k: int, dil: int = 1, groups: int = 1, s: int = stride) -> list[Any]:
        return [
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, groups=groups, bias=False, **_geom(is_1d, k, s, dil)),
        ]

    if name == "none":
        return _Zero(stride, is_1d)
    if name == "skip_connect":
        if stride == 1:
            return nn.Identity()
        return nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, bias=False, **_geom(is_1d, 1, stride)),
            nn.BatchNorm2d(c, affine=affine),
        )
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        g = _geom(is_1d, 3, stride)
        g.pop("dilation")
        if name == "max_pool_3x3":
            return nn.MaxPool2d(**g)
        return nn.AvgPool2d(count_include_pad=False, **g)
    if name == "conv_1x1":
        return nn.Sequential(*relu_conv_bn(1), nn.BatchNorm2d(c, affine=affine))
    if name == "conv_3x3":
        return nn.Sequential(*relu_conv_bn(3), nn.BatchNorm2d(c, affine=affine))
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return nn.Sequential(
            *relu_conv_bn(k, groups=c),
            nn.Conv2d(c, c, kernel_size=1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
            *relu_conv_bn(k, groups=c, s=1),
            nn.Conv2d(c, c, kernel_size=1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )
    if name.startswith("dil_conv_"):
        k = int(name[-1])
        return nn.Sequential(
            *relu_conv_bn(k, dil=2, groups=c),
            nn.Conv2d(c, c, kernel_size=1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )
    from graphrec.automl.data import AutoMLError

    raise AutoMLError(
        f"unknown operation {name!r}; valid: {', '.join(sorted(set(DARTS_OPS + LIGHT_OPS)))}"
    )


class _Zero(nn.Module):
    def __init__(self, stride: int, is_1d: bool) -> None:
        super().__init__()
        self.stride = stride
        self.is_1d = is_1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x * 0.0
        if self.is_1d:
            return x[:, :, :, :: self.stride] * 0.0
        return x[:, :, :: self.stride, :: self.stride] * 0.0


class _ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, is_1d: bool, affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, bias=False, **_geom(is_1d, 1, stride)),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class MixedOp(nn.Module):
    """An edge of the super-network: the softmax-weighted sum of its kept operations.

    ``drop_skip`` is the operation-level dropout of the staged search: during training the
    ``skip_connect`` branch is zeroed with this probability (and rescaled), so that the
    parameter-free shortcut cannot win the edge merely by being the easiest to train.
    """

    def __init__(
        self, ops: Sequence[str], c: int, stride: int, is_1d: bool, drop_skip: float = 0.0
    ) -> None:
        super().__init__()
        self.names = list(ops)
        self.ops = nn.ModuleList(make_op(o, c, stride, is_1d, affine=False) for o in ops)
        self.drop_skip = drop_skip

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor | None = None
        for w, name, op in zip(weights, self.names, self.ops, strict=True):
            y = op(x)
            if name == "skip_connect" and self.training and self.drop_skip > 0:
                keep = (torch.rand(()) >= self.drop_skip).float()
                y = y * keep / (1.0 - self.drop_skip)
            out = w * y if out is None else out + w * y
        assert out is not None
        return out


class _SearchCell(nn.Module):
    def __init__(
        self,
        edge_ops: Sequence[Sequence[str]],
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        is_1d: bool,
        drop_skip: float,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = _ReLUConvBN(c_pp, c, 2 if reduction_prev else 1, is_1d, affine=False)
        self.pre1 = _ReLUConvBN(c_p, c, 1, is_1d, affine=False)
        self.edges = nn.ModuleList()
        e = 0
        for j in range(N_NODES):
            for i in range(2 + j):
                stride = 2 if reduction and i < 2 else 1
                self.edges.append(MixedOp(edge_ops[e], c, stride, is_1d, drop_skip))
                e += 1

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, weights: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for j in range(N_NODES):
            s = sum(self.edges[e + i](h, weights[e + i]) for i, h in enumerate(states))
            e += 2 + j
            states.append(s)
        return torch.cat(states[2:], dim=1)


def _reduction_cells(depth: int) -> set[int]:
    if depth >= 3:
        return {depth // 3, 2 * depth // 3}
    if depth == 2:
        return {1}
    return set()


class SuperNet(nn.Module):
    """The weight-sharing super-network of a search stage.

    Attributes:
        alpha_normal: Architecture logits of the normal cells, ``(edges, len(ops))``.
        alpha_reduce: The same for the reduction cells.
        mask_normal: 0 where an operation is kept on an edge, ``-inf`` where pruned.
        mask_reduce: The same for the reduction cells.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        ops: Sequence[str],
        keep_normal: Sequence[Sequence[str]] | None = None,
        keep_reduce: Sequence[Sequence[str]] | None = None,
        depth: int = 3,
        c: int = 8,
        drop_skip: float = 0.0,
    ) -> None:
        super().__init__()
        is_1d = in_shape[1] == 1
        self.ops = list(ops)
        ne = n_edges()
        keep_normal = [list(ops)] * ne if keep_normal is None else [list(k) for k in keep_normal]
        keep_reduce = [list(ops)] * ne if keep_reduce is None else [list(k) for k in keep_reduce]
        self.keep_normal, self.keep_reduce = keep_normal, keep_reduce
        self.stem, self.cells, c_p = _stem_and_cells(
            in_shape[0],
            c,
            depth,
            is_1d,
            lambda red, c_pp, c_p, c_cur, red_prev: _SearchCell(
                keep_reduce if red else keep_normal,
                c_pp,
                c_p,
                c_cur,
                red,
                red_prev,
                is_1d,
                drop_skip,
            ),
        )
        self.classifier = nn.Linear(c_p, n_classes)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(ne, len(ops)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(ne, len(ops)))

        def mask(keep: Sequence[Sequence[str]]) -> torch.Tensor:
            m = torch.full((ne, len(ops)), float("-inf"))
            for e, names in enumerate(keep):
                for n in names:
                    m[e, self.ops.index(n)] = 0.0
            return m

        self.register_buffer("mask_normal", mask(keep_normal))
        self.register_buffer("mask_reduce", mask(keep_reduce))

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture logits."""
        return [self.alpha_normal, self.alpha_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the architecture logits."""
        ids = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def probs(self, cell: str = "normal") -> torch.Tensor:
        """Softmax over each edge's kept operations, ``(edges, len(ops))``."""
        alpha = self.alpha_normal if cell == "normal" else self.alpha_reduce
        mask: Any = self.mask_normal if cell == "normal" else self.mask_reduce
        return (alpha + mask).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pn, pr = self.probs("normal"), self.probs("reduce")
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            p = pr if cell.reduction else pn
            edges: Any = cell.edges
            weights = [
                p[e, [self.ops.index(n) for n in edge.names]] for e, edge in enumerate(edges)
            ]
            s0, s1 = s1, cell(s0, s1, weights)
        return self.classifier(s1.mean(dim=(2, 3)))

    def genotype(self) -> Genotype:
        """DARTS's discretisation: per node the two strongest inputs (by their best
        non-``none`` operation) with that operation."""
        out: dict[str, list[tuple[str, int]]] = {}
        for cell in ("normal", "reduce"):
            p = self.probs(cell).detach()
            pairs: list[tuple[str, int]] = []
            e = 0
            for j in range(N_NODES):
                cands = []
                for i in range(2 + j):
                    row = p[e + i].clone()
                    if "none" in self.ops:
                        row[self.ops.index("none")] = -1.0
                    k = int(row.argmax())
                    cands.append((float(row[k]), self.ops[k], i))
                cands.sort(key=lambda t: -t[0])
                pairs.extend((op, i) for _, op, i in cands[:2])
                e += 2 + j
            out[cell] = pairs
        return Genotype(normal=out["normal"], reduce=out["reduce"])


def build_supernet(
    in_shape: tuple[int, int, int],
    n_classes: int,
    ops: Sequence[str],
    *,
    keep_normal: Sequence[Sequence[str]] | None = None,
    keep_reduce: Sequence[Sequence[str]] | None = None,
    depth: int = 3,
    c: int = 8,
    drop_skip: float = 0.0,
) -> SuperNet:
    """A :class:`SuperNet` (see its attributes); ``keep_*`` lists the operations kept
    on each edge (all of ``ops`` when ``None``)."""
    return SuperNet(in_shape, n_classes, ops, keep_normal, keep_reduce, depth, c, drop_skip)


class _Cell(nn.Module):
    def __init__(
        self,
        pairs: Sequence[tuple[str, int]],
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        is_1d: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = _ReLUConvBN(c_pp, c, 2 if reduction_prev else 1, is_1d, affine=True)
        self.pre1 = _ReLUConvBN(c_p, c, 1, is_1d, affine=True)
        self.inputs = [i for _, i in pairs]
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and i < 2 else 1, is_1d, affine=True) for op, i in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for j in range(N_NODES):
            a, b = 2 * j, 2 * j + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)


class Network(nn.Module):
    """The network a :class:`Genotype` describes (what is trained, exported, deployed)."""

    def __init__(
        self,
        genotype: Genotype,
        in_shape: tuple[int, int, int],
        n_classes: int,
        depth: int = 5,
        c: int = 8,
    ) -> None:
        super().__init__()
        is_1d = in_shape[1] == 1
        self.stem, self.cells, c_p = _stem_and_cells(
            in_shape[0],
            c,
            depth,
            is_1d,
            lambda red, c_pp, c_p, c_cur, red_prev: _Cell(
                genotype.reduce if red else genotype.normal, c_pp, c_p, c_cur, red, red_prev, is_1d
            ),
        )
        self.classifier = nn.Linear(c_p, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=(2, 3)))


def build_network(
    genotype: Genotype,
    in_shape: tuple[int, int, int],
    n_classes: int,
    *,
    depth: int = 5,
    c: int = 8,
) -> Network:
    """The discrete :class:`Network` of ``genotype``."""
    return Network(genotype, in_shape, n_classes, depth, c)


def cell_geometry(
    in_shape: tuple[int, int, int], depth: int, c: int
) -> list[tuple[bool, int, int, int]]:
    """Per cell ``(reduction, channels of its operations, H, W)`` of its *input* side
    (operations of a reduction cell's first two inputs see this size with stride 2)."""
    h, w = in_shape[1], in_shape[2]
    is_1d = h == 1
    out = []
    c_cur = c
    reductions = _reduction_cells(depth)
    for i in range(depth):
        red = i in reductions
        if red:
            c_cur *= 2
        out.append((red, c_cur, h, w))
        if red:
            w = (w + 1) // 2
            if not is_1d:
                h = (h + 1) // 2
    return out


def random_genotype(ops: Sequence[str], rng: Any) -> Genotype:
    """A genotype drawn uniformly: per node two distinct inputs and an operation each
    (``none`` excluded), ``rng`` a :class:`numpy.random.Generator`."""
    choices = [o for o in ops if o != "none"]
    out: dict[str, list[tuple[str, int]]] = {}
    for cell in ("normal", "reduce"):
        pairs: list[tuple[str, int]] = []
        for j in range(N_NODES):
            inputs = rng.choice(2 + j, size=2, replace=False)
            for i in sorted(int(v) for v in inputs):
                pairs.append((str(choices[int(rng.integers(len(choices)))]), i))
        out[cell] = pairs
    return Genotype(normal=out["normal"], reduce=out["reduce"])
