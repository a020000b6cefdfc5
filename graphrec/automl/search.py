"""Architecture search: the staged (4-stage) search, plain DARTS and random search.

**Staged search** (:func:`staged_search`, after P-DARTS / DARTS+ / RobustDARTS):

* 4 stages grow the super-network's depth (2, 3, 4, 5 cells by default) while pruning
  each edge's candidate operations (6, 4, 3, 2 of :data:`~graphrec.automl.space.LIGHT_OPS`);
  the final genotype takes each edge's best operation.
* **Feedback between stages**: a stage starts from the previous stage's architecture
  logits (on the kept operations) rather than from zero, and the pruning ranks
  operations by the mean of this stage's softmax weights and the previous stage's
  ranking scores, so one short, noisy stage cannot decide alone.
* **Skip-connection limits**: operation-level dropout on ``skip_connect`` (decaying over
  the stages), and early stopping of a stage when the derived normal cell would hold
  more than ``max_skip`` skip connections or when the dominant eigenvalue of the
  validation loss's Hessian in the architecture logits rises above ``eig_ratio`` times
  its lowest value in the stage (RobustDARTS's sign of collapse). On stopping, the
  logits of the last epoch before the sign are restored.
* **Loss**: validation cross-entropy + ``entropy_weight`` x the mean normalised entropy
  of the edges' softmax (growing with the stage, it drives each edge towards one
  operation and so narrows the gap between the super-network and the discrete network)
  + optionally ``latency_weight`` x ``relu(E[latency] / target - 1)``, the expected
  latency of the final-depth network under the current softmax, from a per-operation
  table (:mod:`graphrec.automl.latency`).

**Plain DARTS** (:func:`darts_search`): one stage at the final depth with DARTS's eight
operations, first-order updates, no dropout, no early stopping, no extra loss terms.

**Random search** (:func:`random_search`): genotypes drawn uniformly from the light set,
each trained briefly at the final depth and scored on validation, until a CPU budget
(the staged search's) is spent.

All three use first-order alternating updates (an architecture step on a validation
batch, then a weight step on a training batch) with the same optimisers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrec.automl.data import AutoMLError, Task
from graphrec.automl.space import (
    DARTS_OPS,
    LIGHT_OPS,
    Genotype,
    SuperNet,
    build_network,
    build_supernet,
    random_genotype,
)
from graphrec.automl.train import batches, cpu_seconds, evaluate, train_model

__all__ = [
    "SearchResult",
    "StageConfig",
    "darts_search",
    "default_stages",
    "dominant_eigenvalue",
    "random_search",
    "staged_search",
]

#: A latency model: expected latency (ms) of the final network under ``net``'s softmax.
LatencyFn = Callable[[SuperNet], torch.Tensor]


@dataclass
class StageConfig:
    """One stage of the staged search.

    Attributes:
        depth: Cells of the stage's super-network.
        n_ops: Operations kept per edge during the stage.
        epochs: Most epochs of the stage.
        drop_skip: Dropout probability of ``skip_connect`` branches.
        entropy_weight: Weight of the entropy term of the loss.
    """

    depth: int
    n_ops: int
    epochs: int
    drop_skip: float
    entropy_weight: float


def default_stages(epochs: Sequence[int] = (3, 3, 3, 3)) -> list[StageConfig]:
    """The 4 stages of the staged search with the given epochs per stage."""
    if len(epochs) != 4:
        raise AutoMLError(f"the staged search has 4 stages; got {len(epochs)} epoch counts")
    return [
        StageConfig(2, 6, int(epochs[0]), 0.4, 0.0),
        StageConfig(3, 4, int(epochs[1]), 0.3, 0.02),
        StageConfig(4, 3, int(epochs[2]), 0.2, 0.05),
        StageConfig(5, 2, int(epochs[3]), 0.1, 0.1),
    ]


@dataclass
class SearchResult:
    """What a search found and what it cost.

    Attributes:
        method: ``staged``, ``darts`` or ``random``.
        genotype: The found cell pair.
        cpu_s: CPU seconds of the search (one torch thread).
        history: Per-epoch (or per-candidate) records.
    """

    method: str
    genotype: Genotype
    cpu_s: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "method": self.method,
            "genotype": self.genotype.to_dict(),
            "cpu_s": self.cpu_s,
            "skip_count": self.genotype.skip_count(),
            "parameter_free_count": self.genotype.parameter_free_count(),
            "history": self.history,
        }


def _entropy(net: SuperNet) -> torch.Tensor:
    terms = []
    for cell, keep in (("normal", net.keep_normal), ("reduce", net.keep_reduce)):
        p = net.probs(cell)
        n = torch.tensor([max(len(k), 2) for k in keep], dtype=p.dtype)
        h = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1) / torch.log(n)
        terms.append(h.mean())
    return torch.stack(terms).mean()


def dominant_eigenvalue(
    net: SuperNet, xb: torch.Tensor, yb: torch.Tensor, iters: int = 4, seed: int = 0
) -> float:
    """Largest eigenvalue of the validation loss's Hessian in the architecture logits
    (power iteration with Hessian-vector products on one batch)."""
    loss = nn.functional.cross_entropy(net(xb), yb)
    all_alphas = net.arch_parameters()
    found = torch.autograd.grad(loss, all_alphas, create_graph=True, allow_unused=True)
    # logits of a cell type the network lacks (no reduction cell at depth 1) are unused
    pairs = [(a, g) for a, g in zip(all_alphas, found, strict=True) if g is not None]
    alphas = [a for a, _ in pairs]
    grads = [g for _, g in pairs]
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(a.shape, generator=g) for a in alphas]
    lam = 0.0
    for _ in range(iters):
        norm = torch.sqrt(sum((t * t).sum() for t in v))  # type: ignore[arg-type]
        v = [t / norm for t in v]
        hv = torch.autograd.grad(grads, alphas, grad_outputs=v, retain_graph=True)
        lam = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True)))
        v = [t.detach() for t in hv]
    return lam


def _search_stage(
    net: SuperNet,
    task: Task,
    *,
    epochs: int,
    rng: np.random.Generator,
    w_lr: float,
    a_lr: float,
    batch_size: int,
    extra_loss: Callable[[SuperNet], torch.Tensor] | None,
    on_epoch: Callable[[SuperNet, int, float], bool] | None,
    warmup_epochs: int = 0,
) -> None:
    """Alternate architecture and weight steps for up to ``epochs`` epochs; stop when
    ``on_epoch(net, epoch, val_accuracy)`` says so."""
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=w_lr, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=a_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    steps = max(epochs * math.ceil(len(task.y_train) / batch_size), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        w_opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t / steps, 1.0))) + 1e-3
    )
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for ep in range(epochs):
        val_iter = batches(task.x_val, task.y_val, batch_size, rng)
        for xb, yb in batches(task.x_train, task.y_train, batch_size, rng):
            if ep >= warmup_epochs:
                try:
                    xv, yv = next(val_iter)
                except StopIteration:
                    val_iter = batches(task.x_val, task.y_val, batch_size, rng)
                    xv, yv = next(val_iter)
                a_opt.zero_grad(set_to_none=True)
                aloss = loss_fn(net(xv), yv)
                if extra_loss is not None:
                    aloss = aloss + extra_loss(net)
                aloss.backward()
                a_opt.step()
            w_opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
            w_opt.step()
            sched.step()
        if on_epoch is not None:
            val = evaluate(net, task.x_val, task.y_val)
            net.train()
            if on_epoch(net, ep, val):
                return


def _keep_lists(scores: np.ndarray, ops: Sequence[str], n: int) -> list[list[str]]:
    return [[ops[int(j)] for j in np.argsort(-row, kind="stable")[:n]] for row in scores]


def staged_search(
    task: Task,
    *,
    seed: int,
    stages: Sequence[StageConfig] | None = None,
    ops: Sequence[str] = LIGHT_OPS,
    c: int = 8,
    max_skip: int = 2,
    eig_ratio: float = 1.5,
    eig_every: int = 1,
    latency_fn: LatencyFn | None = None,
    latency_target_ms: float | None = None,
    latency_weight: float = 1.0,
    w_lr: float = 0.05,
    a_lr: float = 6e-3,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """The 4-stage search (see the module docstring).

    Args:
        task: The task (training split for weights, validation split for the logits).
        seed: Seed.
        stages: The stages (default :func:`default_stages`).
        ops: The candidate operations (default: the optimised light set).
        c: Channels of the first cells.
        max_skip: Most skip connections the derived normal cell may hold.
        eig_ratio: Stop a stage when the Hessian's dominant eigenvalue exceeds this
            times its lowest value in the stage (``0`` turns the check off).
        eig_every: Check the eigenvalue every this many epochs.
        latency_fn: Expected latency (ms) of the final network (enables the latency term).
        latency_target_ms: The latency target of that term.
        latency_weight: Its weight.
        w_lr: Weight learning rate.
        a_lr: Architecture learning rate.
        batch_size: Mini-batch size.
        progress: Called with a line after each epoch.
    """
    stages = list(stages or default_stages())
    if len(stages) < 1:
        raise AutoMLError("the staged search needs at least one stage")
    if stages[0].n_ops > len(ops):
        raise AutoMLError(f"stage 1 keeps {stages[0].n_ops} operations but only {len(ops)} given")
    if latency_fn is not None and (latency_target_ms is None or latency_target_ms <= 0):
        raise AutoMLError("a latency term needs a positive latency target (ms)")
    t0 = cpu_seconds()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    ops = list(ops)
    history: list[dict[str, Any]] = []
    from graphrec.automl.space import n_edges

    ne = n_edges()
    keep_n: list[list[str]] = [list(ops)] * ne
    keep_r: list[list[str]] = [list(ops)] * ne
    prev_alpha: tuple[torch.Tensor, torch.Tensor] | None = None
    prev_score: tuple[np.ndarray, np.ndarray] | None = None
    eig_batch = next(batches(task.x_val, task.y_val, min(batch_size, len(task.y_val)), rng))
    net: SuperNet | None = None
    for s, st in enumerate(stages):
        net = build_supernet(
            task.input_shape,
            task.n_classes,
            ops,
            keep_normal=keep_n,
            keep_reduce=keep_r,
            depth=st.depth,
            c=c,
            drop_skip=st.drop_skip,
        )
        if prev_alpha is not None:
            with torch.no_grad():
                net.alpha_normal.copy_(prev_alpha[0])
                net.alpha_reduce.copy_(prev_alpha[1])

        def extra(n: SuperNet, w: float = st.entropy_weight) -> torch.Tensor:
            out = w * _entropy(n) if w > 0 else torch.zeros(())
            if latency_fn is not None and latency_target_ms is not None:
                lat = latency_fn(n)
                out = out + latency_weight * torch.relu(lat / latency_target_ms - 1.0)
            return out

        state: dict[str, Any] = {"eigs": [], "snapshot": None, "stopped": None}

        def on_epoch(
            n: SuperNet,
            ep: int,
            val: float,
            s: int = s,
            state: dict[str, Any] = state,
            st_epochs: int = st.epochs,
        ) -> bool:
            g = n.genotype()
            rec: dict[str, Any] = {
                "stage": s + 1,
                "depth": n.cells.__len__(),
                "epoch": ep + 1,
                "val_accuracy": val,
                "skip_count": g.skip_count(),
                "cpu_s": cpu_seconds() - t0,
            }
            if latency_fn is not None:
                rec["expected_latency_ms"] = float(latency_fn(n).detach())
            stop = None
            if g.skip_count() > max_skip and ep > 0:
                stop = "skip_count"
            # the check compares with earlier epochs of the stage and can stop it only from
            # its third epoch on: in shorter stages it would cost a Hessian power iteration
            # per epoch (about a fifth of a 2-epoch stage on digits) for nothing
            if eig_ratio > 0 and ep % eig_every == 0 and st_epochs >= 3:
                lam = dominant_eigenvalue(n, *eig_batch, seed=seed)
                rec["eigenvalue"] = lam
                eigs = state["eigs"]
                if eigs and ep > 1 and lam > eig_ratio * max(min(eigs), 1e-6):
                    stop = stop or "eigenvalue"
                eigs.append(lam)
            history.append(rec)
            if progress is not None:
                progress(
                    f"stage {s + 1}/{len(stages)} epoch {ep + 1}: val {val:.3f}, "
                    f"skips {g.skip_count()}" + (f", stop ({stop})" if stop else "")
                )
            if stop is not None:
                state["stopped"] = stop
                rec["early_stop"] = stop
                return True
            state["snapshot"] = (n.alpha_normal.detach().clone(), n.alpha_reduce.detach().clone())
            return False

        _search_stage(
            net,
            task,
            epochs=st.epochs,
            rng=rng,
            w_lr=w_lr,
            a_lr=a_lr,
            batch_size=batch_size,
            extra_loss=extra,
            on_epoch=on_epoch,
            warmup_epochs=1 if s == 0 and st.epochs > 2 else 0,
        )
        if state["stopped"] is not None and state["snapshot"] is not None:
            with torch.no_grad():
                net.alpha_normal.copy_(state["snapshot"][0])
                net.alpha_reduce.copy_(state["snapshot"][1])
        prev_alpha = (net.alpha_normal.detach().clone(), net.alpha_reduce.detach().clone())
        score_n = net.probs("normal").detach().numpy()
        score_r = net.probs("reduce").detach().numpy()
        if prev_score is not None:  # feedback: rank by this stage and the previous ranking
            score_n = 0.5 * score_n + 0.5 * prev_score[0] * (score_n > 0)
            score_r = 0.5 * score_r + 0.5 * prev_score[1] * (score_r > 0)
        prev_score = (score_n, score_r)
        if s + 1 < len(stages):
            keep_n = _keep_lists(score_n, ops, stages[s + 1].n_ops)
            keep_r = _keep_lists(score_r, ops, stages[s + 1].n_ops)
    assert net is not None
    geno = _genotype_from_scores(prev_score, ops) if prev_score is not None else net.genotype()
    return SearchResult("staged", geno, cpu_seconds() - t0, history)


def _genotype_from_scores(scores: tuple[np.ndarray, np.ndarray], ops: Sequence[str]) -> Genotype:
    from graphrec.automl.space import N_NODES

    out: dict[str, list[tuple[str, int]]] = {}
    for cell, sc in zip(("normal", "reduce"), scores, strict=True):
        pairs: list[tuple[str, int]] = []
        e = 0
        for j in range(N_NODES):
            cands = []
            for i in range(2 + j):
                row = sc[e + i].copy()
                if "none" in ops:
                    row[list(ops).index("none")] = -1.0
                k = int(np.argmax(row))
                cands.append((float(row[k]), ops[k], i))
            cands.sort(key=lambda t: -t[0])
            pairs.extend((op, i) for _, op, i in cands[:2])
            e += 2 + j
        out[cell] = pairs
    return Genotype(normal=out["normal"], reduce=out["reduce"])


def darts_search(
    task: Task,
    *,
    seed: int,
    epochs: int = 12,
    depth: int = 5,
    ops: Sequence[str] = DARTS_OPS,
    c: int = 8,
    w_lr: float = 0.05,
    a_lr: float = 6e-3,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Plain first-order DARTS: one stage, all operations, no skip limits."""
    t0 = cpu_seconds()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = build_supernet(task.input_shape, task.n_classes, ops, depth=depth, c=c)
    history: list[dict[str, Any]] = []

    def on_epoch(n: SuperNet, ep: int, val: float) -> bool:
        g = n.genotype()
        history.append(
            {
                "epoch": ep + 1,
                "val_accuracy": val,
                "skip_count": g.skip_count(),
                "cpu_s": cpu_seconds() - t0,
            }
        )
        if progress is not None:
            progress(f"DARTS epoch {ep + 1}/{epochs}: val {val:.3f}, skips {g.skip_count()}")
        return False

    _search_stage(
        net,
        task,
        epochs=epochs,
        rng=rng,
        w_lr=w_lr,
        a_lr=a_lr,
        batch_size=batch_size,
        extra_loss=None,
        on_epoch=on_epoch,
    )
    return SearchResult("darts", net.genotype(), cpu_seconds() - t0, history)


def random_search(
    task: Task,
    *,
    seed: int,
    budget_cpu_s: float,
    ops: Sequence[str] = LIGHT_OPS,
    depth: int = 5,
    c: int = 8,
    proxy_epochs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Random search: draw genotypes, train each ``proxy_epochs`` epochs, keep the best
    on validation, until ``budget_cpu_s`` CPU seconds are spent (a candidate starts only
    while budget is left; at least one is trained)."""
    if budget_cpu_s <= 0:
        raise AutoMLError(f"random search needs a positive budget, got {budget_cpu_s}")
    t0 = cpu_seconds()
    rng = np.random.default_rng(seed)
    best: tuple[float, Genotype] | None = None
    history: list[dict[str, Any]] = []
    while best is None or cpu_seconds() - t0 < budget_cpu_s:
        g = random_genotype(ops, rng)
        torch.manual_seed(seed * 1000 + len(history))
        net = build_network(g, task.input_shape, task.n_classes, depth=depth, c=c)
        r = train_model(net, task, epochs=proxy_epochs, seed=seed + len(history))
        history.append({"val_accuracy": r["val_accuracy"], "cpu_s": cpu_seconds() - t0})
        if best is None or r["val_accuracy"] > best[0]:
            best = (r["val_accuracy"], g)
        if progress is not None:
            progress(f"random search: {len(history)} architectures, best val {best[0]:.3f}")
    return SearchResult("random", best[1], cpu_seconds() - t0, history)
