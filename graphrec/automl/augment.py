"""Augmentation search: the differentiable, sigmoid-gated method and its baselines.

**Search space.** A policy gives every operation ``k`` (:func:`op_names`) an application
probability ``p_k`` and a magnitude ``m_k`` (a fraction of the operation's maximum, see
:data:`MAX_MAGNITUDE`). A batch is augmented by applying the operations in a fixed order,
each to every example independently with probability ``p_k``, with a per-example random
strength ``u * m_k``, ``u ~ U(-1, 1)`` (``U(0, 1)`` for noise and cutout). Every operation
is differentiable in its magnitude (affine warps through ``grid_sample``, a soft cutout
mask), so magnitudes get exact gradients.

**Sigmoid gates.** ``p_k = sigmoid(theta_k)``, one independent gate per operation, not a
softmax over operations: raising one operation's probability does not lower another's,
which is the mutual inhibition a softmax relaxation has (only one operation can win).

**Estimator.** The Bernoulli gate ``b_k`` is sampled hard in the forward pass and its
gradient is the straight-through estimate ``d out / d p_k = op_k(x) - x`` (the exact
gradient of the expectation over this gate with the others fixed). A REINFORCE
estimator would be unbiased but its variance, with one lookahead step per mini-batch as
the reward, needs many more batches than a light budget has; straight-through is biased
only through the interaction of gates, is exact for the magnitudes, and costs one
backward pass.

**Objective.** Policy parameters minimise the validation loss after one lookahead SGD
step of the child network on the augmented training batch (DARTS's one-step
approximation, computed exactly with a second-order backward through the step); the
child network is trained on the same batches meanwhile. Both use mini-batch gradient
descent.

**Minimum-augmentation constraint.** The one-step lookahead alone drives every gate and
magnitude down (measured: probabilities 0.3 -> ~0.1-0.2 and magnitudes 0.3 -> ~0.1 in three
epochs on digits, a policy close to no augmentation, below the discrete search and even
below no augmentation on mnist1d). The cause is the short horizon of the objective (Wu et
al. 2018, short-horizon bias of one-step meta-objectives): one SGD step on an augmented
batch always fits the clean validation batch a little worse than a step on the clean
batch, while the benefit of augmentation (invariance, less overfitting) only shows over
many steps, which the lookahead cannot see. The gradient is therefore informative about
*which* operations cost least per unit of augmentation, but biased on the total *amount*.
As in Faster AutoAugment and DADA, which also keep their relaxed policies from
collapsing to the identity, the search keeps the amount and learns the allocation: the
expected strength ``S = sum_k p_k m_k`` (operations applied per example, weighted by their
magnitude) must stay at least its value at initialisation (``K p0 m0``). After each
policy step that leaves ``S`` below the floor, the same constant is added to every
probability and magnitude logit so that ``S`` is back on the floor (a projection along
the uniform direction, found by bisection): the differences between the logits, i.e. the
allocation the gradient learned, are kept, gates move freely above the floor (no
coupling between them there), and operations compete for strength only at the floor.
(A penalty term instead was tried: at a weight that held the floor its gradient swamped
the lookahead's, and the policy stayed at its uniform initialisation.)

**Baselines.** No augmentation; a RandAugment-style policy (``N`` operations drawn
uniformly per example at one magnitude ``M``); and a discrete AutoAugment-style search
(:func:`discrete_search`): policies on a grid, first drawn at random and then evolved by
mutation from the best, each scored by training the child network briefly and taking
its validation accuracy, given 10x the differentiable search's CPU time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.automl.data import AutoMLError, Task
from graphrec.automl.train import batches, cpu_seconds, small_cnn, train_model

__all__ = [
    "MAX_MAGNITUDE",
    "DifferentiablePolicy",
    "Policy",
    "apply_ops",
    "differentiable_search",
    "discrete_search",
    "op_names",
    "randaugment_policy",
]

#: Largest strength of each operation (normalised coordinates span 2, inputs have std 1).
MAX_MAGNITUDE: dict[str, float] = {
    "translate_x": 0.5,
    "translate_y": 0.5,
    "rotate": math.radians(30.0),
    "scale": 0.3,
    "shear": 0.4,
    "brightness": 0.6,
    "contrast": 0.6,
    "noise": 0.6,
    "cutout": 0.6,
}
_ONE_SIDED = frozenset({"noise", "cutout"})


def op_names(is_1d: bool) -> list[str]:
    """The augmentation operations for a 2-D or a 1-D task."""
    if is_1d:
        return ["translate_x", "scale", "brightness", "contrast", "noise", "cutout"]
    return list(MAX_MAGNITUDE)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def _one_op(name: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply operation ``name`` at per-example signed strength ``s`` (shape ``(B,)``)."""
    b = x.shape[0]
    one = torch.ones_like(s)
    zero = torch.zeros_like(s)
    if name in ("translate_x", "translate_y", "rotate", "scale", "shear"):
        if name == "translate_x":
            rows = [one, zero, s, zero, one, zero]
        elif name == "translate_y":
            rows = [one, zero, zero, zero, one, s]
        elif name == "rotate":
            c, si = torch.cos(s), torch.sin(s)
            rows = [c, -si, zero, si, c, zero]
        elif name == "scale":
            f = 1.0 + s
            rows = [f, zero, zero, zero, f if x.shape[2] > 1 else one, zero]
        else:
            rows = [one, s, zero, zero, one, zero]
        theta = torch.stack(rows, dim=1).view(b, 2, 3)
        return _warp(x, theta)
    if name == "brightness":
        return x + s.view(b, 1, 1, 1)
    if name == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return mean + (x - mean) * (1.0 + s.view(b, 1, 1, 1))
    if name == "noise":
        eps = torch.randn(x.shape, generator=gen)
        return x + s.view(b, 1, 1, 1) * eps
    if name == "cutout":
        h, w = x.shape[2], x.shape[3]
        cy = torch.rand(b, generator=gen) * 2 - 1
        cx = torch.rand(b, generator=gen) * 2 - 1
        ys = torch.linspace(-1, 1, h).view(1, h, 1)
        xs = torch.linspace(-1, 1, w).view(1, 1, w)
        half = (s * 0.5 + 1e-3).view(b, 1, 1)
        tau = 0.05
        in_x = torch.sigmoid((half - (xs - cx.view(b, 1, 1)).abs()) / tau)
        if h > 1:
            in_y = torch.sigmoid((half - (ys - cy.view(b, 1, 1)).abs()) / tau)
        else:
            in_y = torch.ones_like(in_x)
        return x * (1.0 - in_x * in_y).unsqueeze(1)
    raise AutoMLError(f"unknown augmentation {name!r}; valid: {', '.join(MAX_MAGNITUDE)}")


def apply_ops(
    x: torch.Tensor,
    names: Sequence[str],
    gates: torch.Tensor,
    magnitudes: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """Apply the operations in order, each where its gate is on.

    Args:
        x: Batch ``(B, C, H, W)``.
        names: Operation names.
        gates: ``(B, K)`` gates in [0, 1] (hard, or straight-through).
        magnitudes: ``(K,)`` strengths as fractions of :data:`MAX_MAGNITUDE`.
        gen: Generator of the per-example strengths, noise and cutout positions.
    """
    unknown = [n for n in names if n not in MAX_MAGNITUDE]
    if unknown:
        raise AutoMLError(f"unknown augmentation {unknown[0]!r}; valid: {', '.join(MAX_MAGNITUDE)}")
    b = x.shape[0]
    for k, name in enumerate(names):
        u = torch.rand(b, generator=gen)
        if name not in _ONE_SIDED:
            u = 2 * u - 1
        s = u * magnitudes[k] * MAX_MAGNITUDE[name]
        g = gates[:, k].view(b, 1, 1, 1)
        x = x + g * (_one_op(name, x, s, gen) - x)
    return x


@dataclass
class Policy:
    """A fixed augmentation policy, applied in the final training.

    Attributes:
        names: Operation names.
        probs: Per-operation probability (independent gates), or ``None`` for a
            RandAugment-style policy.
        magnitudes: Per-operation magnitude (fraction of the maximum).
        n_per_example: RandAugment's ``N``: this many operations drawn uniformly per
            example (used when ``probs`` is ``None``).
        kind: How the policy was found (``none``, ``randaugment``, ``differentiable``,
            ``discrete``).
    """

    names: list[str]
    probs: list[float] | None
    magnitudes: list[float]
    n_per_example: int = 0
    kind: str = "none"
    meta: dict[str, Any] = field(default_factory=dict)

    def gates(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """Hard gates ``(batch, K)`` for one batch."""
        k = len(self.names)
        if self.probs is not None:
            p = torch.tensor(self.probs, dtype=torch.float32).expand(batch, k)
            return (torch.rand((batch, k), generator=gen) < p).float()
        scores = torch.rand((batch, k), generator=gen)
        top = scores.topk(min(self.n_per_example, k), dim=1).indices
        return torch.zeros(batch, k).scatter_(1, top, 1.0)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if not self.names or (self.probs is not None and max(self.probs, default=0.0) <= 0):
            return x
        return apply_ops(
            x,
            self.names,
            self.gates(x.shape[0], gen),
            torch.tensor(self.magnitudes, dtype=torch.float32),
            gen,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "names": self.names,
            "probs": self.probs,
            "magnitudes": self.magnitudes,
            "n_per_example": self.n_per_example,
            "kind": self.kind,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        """Inverse of :meth:`to_dict`."""
        return cls(
            names=list(d["names"]),
            probs=None if d["probs"] is None else [float(v) for v in d["probs"]],
            magnitudes=[float(v) for v in d["magnitudes"]],
            n_per_example=int(d.get("n_per_example", 0)),
            kind=str(d.get("kind", "none")),
            meta=dict(d.get("meta", {})),
        )


def no_policy() -> Policy:
    """The no-augmentation baseline."""
    return Policy(names=[], probs=[], magnitudes=[], kind="none")


def randaugment_policy(is_1d: bool, n: int = 2, magnitude: float = 0.5) -> Policy:
    """The RandAugment-style baseline: ``n`` operations per example at ``magnitude``."""
    names = op_names(is_1d)
    return Policy(names, None, [magnitude] * len(names), n_per_example=n, kind="randaugment")


class DifferentiablePolicy(nn.Module):
    """Relaxed policy: ``p = sigmoid(theta)``, ``m = sigmoid(mu)`` per operation."""

    def __init__(self, names: Sequence[str], p0: float = 0.3, m0: float = 0.3) -> None:
        super().__init__()
        self.names = list(names)
        k = len(self.names)
        self.theta = nn.Parameter(torch.full((k,), math.log(p0 / (1 - p0))))
        self.mu = nn.Parameter(torch.full((k,), math.log(m0 / (1 - m0))))

    def forward(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        p = torch.sigmoid(self.theta)
        hard = (torch.rand((x.shape[0], len(self.names)), generator=gen) < p).float()
        gates = hard + p - p.detach()  # straight-through
        return apply_ops(x, self.names, gates, torch.sigmoid(self.mu), gen)

    def strength(self) -> torch.Tensor:
        """Expected strength ``sum_k p_k m_k`` (magnitude-weighted operations per example)."""
        return (torch.sigmoid(self.theta) * torch.sigmoid(self.mu)).sum()

    @torch.no_grad()
    def project_strength(self, floor: float, iters: int = 30) -> None:
        """If :meth:`strength` is below ``floor``, shift every logit by one constant so
        that it is on the floor (bisection; the logits' differences are kept)."""
        if float(self.strength()) >= floor or floor >= len(self.names):
            return
        theta, mu = self.theta.clone(), self.mu.clone()

        def s_at(c: float) -> float:
            return float((torch.sigmoid(theta + c) * torch.sigmoid(mu + c)).sum())

        lo, hi = 0.0, 1.0
        while s_at(hi) < floor:
            hi *= 2.0
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if s_at(mid) < floor else (lo, mid)
        self.theta.copy_(theta + hi)
        self.mu.copy_(mu + hi)

    def policy(self) -> Policy:
        """The learned fixed policy."""
        with torch.no_grad():
            return Policy(
                self.names,
                [round(float(v), 4) for v in torch.sigmoid(self.theta)],
                [round(float(v), 4) for v in torch.sigmoid(self.mu)],
                kind="differentiable",
            )


def differentiable_search(
    task: Task,
    *,
    epochs: int,
    seed: int,
    lr: float = 0.05,
    policy_lr: float = 0.05,
    batch_size: int = 64,
    width: int = 16,
    min_strength: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Policy:
    """Learn a policy by gradient descent on the one-step lookahead validation loss,
    under the minimum-augmentation constraint (module docstring).

    Args:
        task: The task (training split for the child, validation split for the policy).
        epochs: Epochs of the child network over the training split.
        seed: Seed.
        lr: Child learning rate (also the lookahead step).
        policy_lr: Adam learning rate of the policy logits.
        batch_size: Mini-batch size of both splits.
        width: Child network width.
        min_strength: Floor of the expected strength ``sum_k p_k m_k`` (default: its
            value at initialisation; ``0`` turns the constraint off).
        progress: Called with a line after each epoch.

    Returns:
        The learned :class:`Policy` (``meta`` holds ``cpu_s`` and the trajectory).
    """
    from torch.func import functional_call

    t0 = cpu_seconds()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model = small_cnn(task.input_shape, task.n_classes, width)
    pol = DifferentiablePolicy(op_names(task.is_1d))
    floor = float(pol.strength().detach()) if min_strength is None else float(min_strength)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    popt = torch.optim.Adam(pol.parameters(), lr=policy_lr, betas=(0.5, 0.999))
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    buffers = dict(model.named_buffers())
    loss_fn = nn.CrossEntropyLoss()
    trajectory = []
    for ep in range(epochs):
        val_iter = batches(task.x_val, task.y_val, batch_size, rng)
        for xb, yb in batches(task.x_train, task.y_train, batch_size, rng):
            try:
                xv, yv = next(val_iter)
            except StopIteration:
                val_iter = batches(task.x_val, task.y_val, batch_size, rng)
                xv, yv = next(val_iter)
            xa = pol(xb, gen)
            loss = loss_fn(
                functional_call(model, (dict(zip(names, params, strict=True)), buffers), (xa,)), yb
            )
            grads = torch.autograd.grad(loss, params, create_graph=True)
            fast = {n: p - lr * g for n, p, g in zip(names, params, grads, strict=True)}
            vloss = loss_fn(functional_call(model, (fast, buffers), (xv,)), yv)
            popt.zero_grad(set_to_none=True)
            pg = torch.autograd.grad(vloss, list(pol.parameters()))
            for p, g in zip(pol.parameters(), pg, strict=True):
                p.grad = g
            popt.step()
            if floor > 0:
                pol.project_strength(floor)
            opt.zero_grad(set_to_none=True)
            for p, g in zip(params, grads, strict=True):
                p.grad = g.detach()
            nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
        snap = pol.policy()
        trajectory.append(
            {
                "probs": snap.probs,
                "magnitudes": snap.magnitudes,
                "strength": float(pol.strength().detach()),
            }
        )
        if progress is not None:
            progress(f"augmentation search epoch {ep + 1}/{epochs}")
    out = pol.policy()
    out.meta = {
        "cpu_s": cpu_seconds() - t0,
        "epochs": epochs,
        "min_strength": floor,
        "trajectory": trajectory,
    }
    return out


_P_GRID = (0.0, 0.2, 0.4, 0.6, 0.8)
_M_GRID = (0.2, 0.4, 0.6, 0.8, 1.0)


def discrete_search(
    task: Task,
    *,
    budget_cpu_s: float,
    seed: int,
    child_epochs: int = 3,
    width: int = 16,
    progress: Callable[[str], None] | None = None,
) -> Policy:
    """AutoAugment-style discrete search: random, then evolutionary, within a CPU budget.

    Each candidate policy (per operation a probability from ``{0, .2, .4, .6, .8}`` and a
    magnitude from ``{.2, .4, .6, .8, 1}``) is scored by training the child network for
    ``child_epochs`` epochs with it and taking the validation accuracy. The first half of
    the budget draws candidates uniformly; the second half mutates one or two operations
    of the best so far. A candidate starts only while budget is left.

    Args:
        task: The task.
        budget_cpu_s: CPU seconds the search may use.
        seed: Seed.
        child_epochs: Epochs of each candidate's proxy training.
        width: Child network width.
        progress: Called with a line after each candidate.

    Returns:
        The best :class:`Policy` (``meta``: ``cpu_s``, ``evaluated``, ``best_val``).
    """
    if budget_cpu_s <= 0:
        raise AutoMLError(f"the discrete search needs a positive budget, got {budget_cpu_s}")
    t0 = cpu_seconds()
    rng = np.random.default_rng(seed)
    names = op_names(task.is_1d)
    k = len(names)

    def draw() -> tuple[list[float], list[float]]:
        return (
            [float(rng.choice(_P_GRID)) for _ in range(k)],
            [float(rng.choice(_M_GRID)) for _ in range(k)],
        )

    best: tuple[float, list[float], list[float]] | None = None
    evaluated = 0
    while cpu_seconds() - t0 < budget_cpu_s or best is None:
        if best is None or cpu_seconds() - t0 < budget_cpu_s / 2:
            probs, mags = draw()
        else:
            probs, mags = list(best[1]), list(best[2])
            for j in rng.choice(k, size=int(rng.integers(1, 3)), replace=False):
                probs[int(j)] = float(rng.choice(_P_GRID))
                mags[int(j)] = float(rng.choice(_M_GRID))
        cand = Policy(names, probs, mags, kind="discrete")
        torch.manual_seed(seed * 1000 + evaluated)
        model = small_cnn(task.input_shape, task.n_classes, width)
        r = train_model(model, task, epochs=child_epochs, seed=seed + evaluated, augment=cand)
        evaluated += 1
        if best is None or r["val_accuracy"] > best[0]:
            best = (r["val_accuracy"], probs, mags)
        if progress is not None:
            progress(f"discrete search: {evaluated} policies, best val {best[0]:.3f}")
    out = Policy(names, best[1], best[2], kind="discrete")
    out.meta = {"cpu_s": cpu_seconds() - t0, "evaluated": evaluated, "best_val": best[0]}
    return out
