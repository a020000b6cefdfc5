"""Candidate regressors of one module type: ridge, random forest, CatBoost, MLP, MEDN.

Every regressor predicts the log latency (ms) of the module's single-module model from
its features (:func:`graphrec.recommender.modules.vocab.feature_names`), for one or more
runtimes at once (``y`` is ``[n, tasks]``; NaN where a task was not measured). Fitting
uses scikit-learn, CatBoost or torch; prediction runs on plain numpy arrays that
:meth:`ModuleRegressor.to_arrays` exports and :func:`from_arrays` reads back, so a
shipped regressor loads without pickle and predicts in microseconds.

MEDN here is the seed's multi-task encoder-decoder on tabular module features: one
shared encoder, one decoder head per runtime, trained jointly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from graphrec.errors import GraphRecError

__all__ = ["REGRESSORS", "ModuleRegressor", "from_arrays", "make_regressor"]

#: Names of the candidate regressors, in the order they are reported.
REGRESSORS: tuple[str, ...] = ("ridge", "random_forest", "catboost", "mlp", "medn")


def _prep(x: np.ndarray) -> np.ndarray:
    """Size columns to log scale (columns that are already logs stay as they are)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 1.0, np.log(np.maximum(x, 1.0)) + 1.0, x)


class ModuleRegressor:
    """Base class: ``fit(x, y)`` with ``y`` ``[n, tasks]`` log-ms (NaN = missing)."""

    name = "base"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.arrays: dict[str, np.ndarray] = {}

    # standardisation shared by the linear / neural models
    def _scale_fit(self, x: np.ndarray) -> np.ndarray:
        xp = _prep(x)
        self.arrays["x_mean"] = xp.mean(axis=0)
        self.arrays["x_std"] = np.maximum(xp.std(axis=0), 1e-6)
        return (xp - self.arrays["x_mean"]) / self.arrays["x_std"]

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (_prep(x) - self.arrays["x_mean"]) / self.arrays["x_std"]

    def fit(self, x: np.ndarray, y: np.ndarray) -> ModuleRegressor:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Log-ms predictions ``[n, tasks]``."""
        raise NotImplementedError

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything :meth:`predict` needs, as named numpy arrays."""
        return {**self.arrays, "kind": np.array(self.name)}

    def size_bytes(self) -> int:
        """Size of the exported arrays (what ships)."""
        return int(sum(np.asarray(a).nbytes for a in self.to_arrays().values()))

    def predict_time_us(self, x: np.ndarray, repeats: int = 50) -> float:
        """Median wall time of predicting one module (one row), in microseconds."""
        row = x[:1]
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.predict(row)
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e6)


def _fill(y: np.ndarray) -> np.ndarray:
    col = np.nanmean(np.where(np.isnan(y), np.nan, y), axis=0)
    return np.where(np.isnan(y), np.nan_to_num(col)[None, :], y)


class Ridge(ModuleRegressor):
    """Ridge regression on standardised log features (a power law in the sizes)."""

    name = "ridge"

    def __init__(self, alpha: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> Ridge:
        xs = self._scale_fit(x)
        xa = np.column_stack([xs, np.ones(len(xs))])
        reg = np.eye(xa.shape[1]) * self.alpha
        reg[-1, -1] = 0.0
        coefs = []
        for j in range(y.shape[1]):
            ok = ~np.isnan(y[:, j])
            a = xa[ok]
            coefs.append(np.linalg.solve(a.T @ a + reg, a.T @ y[ok, j]))
        self.arrays["coef"] = np.array(coefs).T
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        xs = self._scale(x)
        out: np.ndarray = np.column_stack([xs, np.ones(len(xs))]) @ self.arrays["coef"]
        return out


class RandomForest(ModuleRegressor):
    """scikit-learn random forest, exported as flat tree arrays."""

    name = "random_forest"

    def __init__(self, n_estimators: int = 60, seed: int = 0) -> None:
        super().__init__(seed)
        self.n_estimators = n_estimators

    def fit(self, x: np.ndarray, y: np.ndarray) -> RandomForest:
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(
            n_estimators=self.n_estimators, min_samples_leaf=1, random_state=self.seed, n_jobs=1
        )
        rf.fit(_prep(x), _fill(y))
        left, right, feat, thr, val, offs = [], [], [], [], [], [0]
        for est in rf.estimators_:
            t = est.tree_
            base = offs[-1]
            left.append(np.where(t.children_left >= 0, t.children_left + base, -1))
            right.append(np.where(t.children_right >= 0, t.children_right + base, -1))
            feat.append(t.feature)
            thr.append(t.threshold)
            val.append(t.value[:, :, 0])
            offs.append(base + t.node_count)
        self.arrays.update(
            left=np.concatenate(left).astype(np.int32),
            right=np.concatenate(right).astype(np.int32),
            feature=np.concatenate(feat).astype(np.int32),
            threshold=np.concatenate(thr).astype(np.float64),
            value=np.concatenate(val).astype(np.float64),
            roots=np.array(offs[:-1], dtype=np.int32),
        )
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        xp = _prep(x)
        n = len(xp)
        node = np.repeat(a["roots"][None, :], n, axis=0)  # [n, trees]
        rows = np.arange(n)[:, None]
        for _ in range(64):
            leaf = a["left"][node] < 0
            if leaf.all():
                break
            f = a["feature"][node]
            go_left = xp[rows, np.maximum(f, 0)] <= a["threshold"][node]
            nxt = np.where(go_left, a["left"][node], a["right"][node])
            node = np.where(leaf, node, nxt)
        out: np.ndarray = a["value"][node].mean(axis=1)
        return out


class CatBoost(ModuleRegressor):
    """CatBoost (multi-output RMSE), kept in CatBoost's own format."""

    name = "catboost"

    def __init__(self, iterations: int = 300, depth: int = 4, seed: int = 0) -> None:
        super().__init__(seed)
        self.iterations = iterations
        self.depth = depth
        self.model: Any = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> CatBoost:
        from catboost import CatBoostRegressor

        yy = _fill(y)
        m = CatBoostRegressor(
            iterations=self.iterations,
            depth=self.depth,
            learning_rate=0.08,
            loss_function="MultiRMSE" if yy.shape[1] > 1 else "RMSE",
            random_seed=self.seed,
            verbose=0,
            thread_count=1,
            allow_writing_files=False,
        )
        m.fit(_prep(x), yy if yy.shape[1] > 1 else yy[:, 0])
        self.model = m
        blob = m._serialize_model()  # CatBoost's own binary format (no pickle)
        self.arrays["cbm"] = np.frombuffer(bytes(blob), dtype=np.uint8).copy()
        self.arrays["tasks"] = np.array(yy.shape[1])
        return self

    def _ensure(self) -> Any:
        if self.model is None:
            from catboost import CatBoostRegressor

            self.model = CatBoostRegressor()
            self.model.load_model(blob=self.arrays["cbm"].tobytes())
        return self.model

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(self._ensure().predict(_prep(x)), dtype=np.float64)
        return out.reshape(len(x), int(self.arrays["tasks"]))


def _torch_fit(
    net: Any, xs: np.ndarray, y: np.ndarray, epochs: int, lr: float, wd: float, seed: int
) -> None:
    import torch

    torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine
    torch.manual_seed(seed)
    xt = torch.tensor(xs, dtype=torch.float32)
    yt = torch.tensor(np.nan_to_num(y), dtype=torch.float32)
    mt = torch.tensor(~np.isnan(y), dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    n = len(xt)
    bs = n if n <= 256 else 128  # full batch on the small per-type datasets
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            pred = net(xt[idx])
            loss = (((pred - yt[idx]) ** 2) * mt[idx]).sum() / mt[idx].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()


def _linear_arrays(layers: list[Any], prefix: str) -> dict[str, np.ndarray]:
    out = {}
    for i, lin in enumerate(layers):
        out[f"{prefix}{i}_w"] = lin.weight.detach().numpy().astype(np.float64).T.copy()
        out[f"{prefix}{i}_b"] = lin.bias.detach().numpy().astype(np.float64).copy()
    return out


def _np_mlp(
    a: Mapping[str, np.ndarray], prefix: str, h: np.ndarray, last_linear: bool
) -> np.ndarray:
    i = 0
    while f"{prefix}{i}_w" in a:
        h = h @ a[f"{prefix}{i}_w"] + a[f"{prefix}{i}_b"]
        if not (last_linear and f"{prefix}{i + 1}_w" not in a):
            h = np.maximum(h, 0.0)
        i += 1
    return h


class MLP(ModuleRegressor):
    """A two-hidden-layer perceptron, one output per task (torch, exported to numpy)."""

    name = "mlp"

    def __init__(self, hidden: int = 64, epochs: int = 250, seed: int = 0) -> None:
        super().__init__(seed)
        self.hidden = hidden
        self.epochs = epochs

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLP:
        import torch

        xs = self._scale_fit(x)
        self.arrays["y_mean"] = np.nan_to_num(np.nanmean(y, axis=0))
        lins = [
            torch.nn.Linear(xs.shape[1], self.hidden),
            torch.nn.Linear(self.hidden, self.hidden),
            torch.nn.Linear(self.hidden, y.shape[1]),
        ]
        net = torch.nn.Sequential(lins[0], torch.nn.ReLU(), lins[1], torch.nn.ReLU(), lins[2])
        with torch.enable_grad():
            _torch_fit(net, xs, y - self.arrays["y_mean"], self.epochs, 1e-2, 1e-4, self.seed)
        self.arrays.update(_linear_arrays(lins, "l"))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _np_mlp(self.arrays, "l", self._scale(x), True) + self.arrays["y_mean"]


class MEDN(ModuleRegressor):
    """Multi-task encoder-decoder: a shared encoder, one decoder head per runtime.

    The encoder maps the module features to a small embedding; each decoder (a small
    MLP) maps it to one runtime's log latency; the heads train jointly, so what one
    runtime's measurements teach about a module's cost is shared with the others.
    """

    name = "medn"

    def __init__(
        self, hidden: int = 48, embedding: int = 16, epochs: int = 250, seed: int = 0
    ) -> None:
        super().__init__(seed)
        self.hidden = hidden
        self.embedding = embedding
        self.epochs = epochs

    def fit(self, x: np.ndarray, y: np.ndarray) -> MEDN:
        import torch

        xs = self._scale_fit(x)
        self.arrays["y_mean"] = np.nan_to_num(np.nanmean(y, axis=0))
        tasks = y.shape[1]
        enc = [
            torch.nn.Linear(xs.shape[1], self.hidden),
            torch.nn.Linear(self.hidden, self.embedding),
        ]
        decs = [
            [
                torch.nn.Linear(self.embedding, self.hidden // 2),
                torch.nn.Linear(self.hidden // 2, 1),
            ]
            for _ in range(tasks)
        ]

        class _Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.enc = torch.nn.ModuleList(enc)
                self.decs = torch.nn.ModuleList([torch.nn.ModuleList(d) for d in decs])

            def forward(self, h: Any) -> Any:
                for lin in self.enc:
                    h = torch.relu(lin(h))
                outs = [d[1](torch.relu(d[0](h))) for d in self.decs]  # type: ignore[index]
                return torch.cat(outs, dim=1)

        net = _Net()
        with torch.enable_grad():
            _torch_fit(net, xs, y - self.arrays["y_mean"], self.epochs, 1e-2, 1e-4, self.seed)
        self.arrays.update(_linear_arrays(enc, "e"))
        for j, d in enumerate(decs):
            self.arrays.update(_linear_arrays(d, f"d{j}_"))
        self.arrays["tasks"] = np.array(tasks)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        h = _np_mlp(a, "e", self._scale(x), False)
        outs = [_np_mlp(a, f"d{j}_", h, True) for j in range(int(a["tasks"]))]
        out: np.ndarray = np.column_stack(outs) + a["y_mean"]
        return out


_CLASSES: dict[str, type[ModuleRegressor]] = {
    c.name: c for c in (Ridge, RandomForest, CatBoost, MLP, MEDN)
}


def make_regressor(name: str, seed: int = 0) -> ModuleRegressor:
    """A fresh regressor by name (see :data:`REGRESSORS`).

    Raises:
        GraphRecError: An unknown name.
    """
    if name not in _CLASSES:
        raise GraphRecError(f"unknown module regressor {name!r}; known: {list(REGRESSORS)}")
    return _CLASSES[name](seed=seed)


def from_arrays(arrays: Mapping[str, np.ndarray]) -> ModuleRegressor:
    """A regressor rebuilt from :meth:`ModuleRegressor.to_arrays` output.

    Raises:
        GraphRecError: The arrays name no known regressor.
    """
    kind = str(np.asarray(arrays.get("kind", "")))
    if kind not in _CLASSES:
        raise GraphRecError(f"module regressor arrays of unknown kind {kind!r}")
    reg = _CLASSES[kind]()
    reg.arrays = {k: np.asarray(v) for k, v in arrays.items() if k != "kind"}
    return reg
