"""MEDN: a multi-task encoder-decoder network for per-candidate latency, cold start and deployability.

The encoder is :class:`~graphrec.recommender.encoder.HeteroGraphEncoder` over the operator
graph; its embedding is concatenated with the standardised numeric model features and
device features and passed through a shared trunk. The decoder has one head per
deployment candidate, each predicting three things: warm log-latency, log cold-start
time and the logit of deployability. All three are trained jointly; missing
measurements are masked out of the loss.

Example:
    >>> from graphrec.recommender.medn import MEDNRegressor
    >>> medn = MEDNRegressor(epochs=40, seed=0).fit(dataset)  # doctest: +SKIP
    >>> pred = medn.predict(dataset)  # doctest: +SKIP
    >>> pred.latency_ms.shape  # doctest: +SKIP
    (120, 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import NotFittedError
from graphrec.recommender._params import EstimatorParams

if TYPE_CHECKING:
    import torch
    from torch import nn

    from graphrec.dataset.samples import RecDataset

__all__ = ["MEDNPrediction", "MEDNRegressor"]


@dataclass
class MEDNPrediction:
    """MEDN outputs for ``N`` samples and ``C`` candidates.

    Attributes:
        log_latency_ms: Predicted mean of ``log(p50 ms)``, ``[N, C]``.
        log_latency_sigma: Standard deviation of the log-latency error (from held-out
            residuals), ``[C]``.
        log_latency_rel_sigma: The part of that error not shared by the sample's other
            candidates (:func:`graphrec.recommender.ranking.relative_sigma`), ``[C]``, or
            ``None`` when unknown.
        log_cold_start_ms: Predicted ``log(cold start ms)``, ``[N, C]``.
        p_deployable: Probability the candidate runs the model correctly, ``[N, C]``.
        embedding: The encoder's graph embedding, ``[N, E]``.
    """

    log_latency_ms: np.ndarray
    log_latency_sigma: np.ndarray
    log_cold_start_ms: np.ndarray
    p_deployable: np.ndarray
    embedding: np.ndarray
    log_latency_rel_sigma: np.ndarray | None = None

    @property
    def latency_ms(self) -> np.ndarray:
        """Median latency estimate in ms (``exp`` of the log mean)."""
        return np.exp(self.log_latency_ms)


def _build_net(
    n_graph: int,
    n_dev: int,
    n_cand: int,
    hidden: int,
    emb: int,
    layers: int,
    *,
    plain: bool = False,
) -> Any:
    """The network; ``plain``: its encoder in plain torch (for a trained state dict: same
    parameters and outputs, without importing ``torch_geometric``)."""
    import torch
    from torch import nn

    from graphrec.recommender.encoder import HeteroGraphEncoder, PlainHeteroGraphEncoder

    encoder_cls = PlainHeteroGraphEncoder if plain else HeteroGraphEncoder

    class MEDNNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder_cls(hidden=hidden, out_dim=emb, layers=layers)
            self.trunk = nn.Sequential(
                nn.Linear(emb + n_graph + n_dev, hidden * 2),
                nn.ReLU(),
                nn.Linear(hidden * 2, hidden * 2),
                nn.ReLU(),
            )
            # One decoder head per candidate, 3 outputs each (lat, cold, deploy logit),
            # stored as one linear map for speed.
            self.heads = nn.Linear(hidden * 2, n_cand * 3)
            self.n_cand = n_cand

        def forward(
            self, batch: Any, gf: torch.Tensor, df: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.encoder(batch)
            h = self.trunk(torch.cat([z, gf, df], dim=1))
            return self.heads(h).view(-1, self.n_cand, 3), z

    return MEDNNet()


#: Bound of standardised inputs at prediction time.
_CLIP = 6.0


def _scale(a: np.ndarray) -> np.ndarray:
    """Per-column standard deviation; 1 for columns constant in the training data."""
    sd = np.asarray(a, dtype=np.float64).std(axis=0)
    return np.where(sd > 1e-6, sd, 1.0)


class MEDNRegressor(EstimatorParams):
    """Multi-task latency / cold-start / deployability model (scikit-learn conventions).

    Args:
        hidden: Width of the encoder's node states (the trunk is twice as wide).
        embedding_dim: Size of the graph embedding.
        layers: Message-passing rounds of the encoder.
        epochs: Maximum training epochs.
        learning_rate: Adam learning rate.
        batch_size: Samples per step.
        weight_decay: Adam weight decay.
        validation_fraction: Share of samples held out for early stopping and to
            calibrate the latency error (0 disables both).
        patience: Epochs without validation improvement before stopping.
        seed: Seed of initialisation, shuffling and the validation split.
    """

    def __init__(
        self,
        hidden: int = 32,
        embedding_dim: int = 32,
        layers: int = 2,
        epochs: int = 120,
        learning_rate: float = 3e-3,
        batch_size: int = 32,
        weight_decay: float = 1e-4,
        validation_fraction: float = 0.15,
        patience: int = 25,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.embedding_dim = embedding_dim
        self.layers = layers
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed

    # ------------------------------------------------------------------ params
    # ------------------------------------------------------------------ fit
    def fit(self, dataset: RecDataset) -> MEDNRegressor:
        """Train on a :class:`~graphrec.dataset.samples.RecDataset`; returns ``self``."""
        import torch

        if len(dataset) < 2:
            raise ValueError(f"MEDN needs at least 2 samples, got {len(dataset)}")
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        n, c = dataset.log_latency_ms.shape
        self.candidates_ = list(dataset.candidates)
        self.graph_mean_ = dataset.graph_features.mean(axis=0)
        self.graph_std_ = _scale(dataset.graph_features)
        self.device_mean_ = dataset.device_features.mean(axis=0)
        self.device_std_ = _scale(dataset.device_features)
        lat = dataset.log_latency_ms
        cold = dataset.log_cold_start_ms
        self.lat_mean_ = np.nan_to_num(np.nanmean(np.where(np.isnan(lat), np.nan, lat), axis=0))
        self.cold_mean_ = np.nan_to_num(np.nanmean(np.where(np.isnan(cold), np.nan, cold), axis=0))
        self.lat_scale_ = float(np.nanstd(lat)) if np.isfinite(np.nanstd(lat)) else 1.0
        self.lat_scale_ = max(self.lat_scale_, 1e-3)
        self.cold_scale_ = float(np.nanstd(cold)) if np.any(~np.isnan(cold)) else 1.0
        self.cold_scale_ = max(self.cold_scale_, 1e-3)

        order = rng.permutation(n)
        n_val = round(self.validation_fraction * n) if self.validation_fraction > 0 else 0
        n_val = min(n_val, n - 1)
        val_idx, tr_idx = order[:n_val], order[n_val:]

        net = _build_net(
            dataset.graph_features.shape[1],
            dataset.device_features.shape[1],
            c,
            self.hidden,
            self.embedding_dim,
            self.layers,
        )
        opt = torch.optim.Adam(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        tensors = self._tensors(dataset)
        best_state = None
        best_val = float("inf")
        stale = 0
        batches_val = self._batches(dataset, val_idx, tensors) if n_val else []
        for _epoch in range(self.epochs):
            net.train()
            perm = tr_idx[rng.permutation(len(tr_idx))]
            for batch in self._batches(dataset, perm, tensors):
                opt.zero_grad()
                loss = self._loss(net, batch)
                loss.backward()
                opt.step()
            if n_val:
                net.eval()
                with torch.no_grad():
                    v = sum(float(self._loss(net, b)) * len(b[5]) for b in batches_val) / n_val
                if v < best_val - 1e-5:
                    best_val, stale = v, 0
                    best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.net_ = net
        self.n_epochs_ = _epoch + 1
        # Latency error per candidate from held-out residuals (training ones if none).
        ref = val_idx if n_val >= 5 else tr_idx
        pred = self._raw_predict(dataset, ref)
        resid = pred[0] - lat[ref]
        sig = np.sqrt(np.nanmean(resid**2, axis=0))
        overall = float(np.sqrt(np.nanmean(resid**2))) if np.any(~np.isnan(resid)) else 0.3
        self.log_latency_sigma_ = np.where(np.isfinite(sig), sig, overall)
        self.log_latency_sigma_ = np.maximum(self.log_latency_sigma_, 0.02)
        from graphrec.recommender.ranking import relative_sigma

        rel = relative_sigma(resid)
        self.log_latency_rel_sigma_ = np.where(np.isfinite(rel), rel, self.log_latency_sigma_)
        self.n_features_in_ = dataset.graph_features.shape[1] + dataset.device_features.shape[1]
        return self

    # ------------------------------------------------------------------ predict
    def predict(self, dataset: RecDataset) -> MEDNPrediction:
        """Predict every candidate's latency, cold start and deployability."""
        return self.predict_arrays(dataset.hetero, dataset.graph_features, dataset.device_features)

    def predict_arrays(
        self, hetero: Sequence[Any], graph_features: np.ndarray, device_features: np.ndarray
    ) -> MEDNPrediction:
        """Like :meth:`predict`, from the raw inputs (one row per sample)."""
        self._check()
        lat, cold, dep, emb = self._forward(hetero, graph_features, device_features)
        return MEDNPrediction(
            log_latency_ms=lat,
            log_latency_sigma=np.asarray(self.log_latency_sigma_, dtype=np.float64),
            log_cold_start_ms=cold,
            p_deployable=dep,
            embedding=emb,
            log_latency_rel_sigma=np.asarray(
                getattr(self, "log_latency_rel_sigma_", self.log_latency_sigma_),
                dtype=np.float64,
            ),
        )

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """JSON-able metadata and a tensor state dict (for :mod:`graphrec.recommender.artefact`)."""
        import torch

        self._check()
        meta = {
            "params": self.get_params(),
            "candidates": self.candidates_,
            "n_graph": int(self.graph_mean_.shape[0]),
            "n_device": int(self.device_mean_.shape[0]),
            "lat_scale": self.lat_scale_,
            "cold_scale": self.cold_scale_,
            "n_epochs": self.n_epochs_,
        }
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        for name in (
            "graph_mean_",
            "graph_std_",
            "device_mean_",
            "device_std_",
            "lat_mean_",
            "cold_mean_",
            "log_latency_sigma_",
            "log_latency_rel_sigma_",
        ):
            tensors[f"arr.{name}"] = torch.from_numpy(np.asarray(getattr(self, name)).copy())
        return meta, tensors

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> MEDNRegressor:
        """Inverse of :meth:`state`."""
        self = cls(**meta["params"])
        self.candidates_ = list(meta["candidates"])
        self.lat_scale_ = float(meta["lat_scale"])
        self.cold_scale_ = float(meta["cold_scale"])
        self.n_epochs_ = int(meta["n_epochs"])
        for k, v in tensors.items():
            if k.startswith("arr."):
                setattr(self, k[4:], v.numpy().astype(np.float64))
        net = _build_net(
            int(meta["n_graph"]),
            int(meta["n_device"]),
            len(self.candidates_),
            self.hidden,
            self.embedding_dim,
            self.layers,
            plain=True,
        )
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        net.eval()
        self.net_ = net
        self.n_features_in_ = int(meta["n_graph"]) + int(meta["n_device"])
        return self

    # ------------------------------------------------------------------ internals
    def _check(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError(
                "this MEDNRegressor is not fitted yet; call fit(dataset) or load an artefact"
            )

    def _tensors(self, ds: RecDataset) -> dict[str, Any]:
        import torch

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(a, dtype=np.float32))

        lat = (ds.log_latency_ms - self.lat_mean_) / self.lat_scale_
        cold = (ds.log_cold_start_ms - self.cold_mean_) / self.cold_scale_
        return {
            "gf": t((ds.graph_features - self.graph_mean_) / self.graph_std_),
            "df": t((ds.device_features - self.device_mean_) / self.device_std_),
            "lat": t(np.nan_to_num(lat)),
            "lat_m": t(~np.isnan(lat)),
            "cold": t(np.nan_to_num(cold)),
            "cold_m": t(~np.isnan(cold)),
            "dep": t(np.nan_to_num(ds.deployable)),
            "dep_m": t(~np.isnan(ds.deployable)),
        }

    def _batches(self, ds: RecDataset, idx: np.ndarray, tens: dict[str, Any]) -> list[Any]:
        import torch

        from graphrec.recommender.encoder import collate

        out = []
        for s in range(0, len(idx), self.batch_size):
            ix = idx[s : s + self.batch_size]
            ti = torch.from_numpy(np.asarray(ix, dtype=np.int64))
            g = collate([ds.hetero[int(i)] for i in ix])
            out.append((g, *(tens[k][ti] for k in ("gf", "df", "lat", "lat_m")), ix, tens, ti))
        return out

    def _loss(self, net: nn.Module, b: Any) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        g, gf, df, lat, lat_m, _ix, tens, ti = b
        out, _ = net(g, gf, df)
        cold, cold_m = tens["cold"][ti], tens["cold_m"][ti]
        dep, dep_m = tens["dep"][ti], tens["dep_m"][ti]
        l_lat = ((out[..., 0] - lat) ** 2 * lat_m).sum() / lat_m.sum().clamp(min=1.0)
        l_cold = ((out[..., 1] - cold) ** 2 * cold_m).sum() / cold_m.sum().clamp(min=1.0)
        bce = F.binary_cross_entropy_with_logits(out[..., 2], dep, reduction="none")
        l_dep = (bce * dep_m).sum() / dep_m.sum().clamp(min=1.0)
        # Pairwise ranking term on latency: the order of candidates decides the regret.
        d_pred = out[..., 0].unsqueeze(2) - out[..., 0].unsqueeze(1)
        d_true = lat.unsqueeze(2) - lat.unsqueeze(1)
        pm = lat_m.unsqueeze(2) * lat_m.unsqueeze(1)
        l_rank = (
            F.softplus(-d_pred * torch.sign(d_true)) * pm * (d_true != 0)
        ).sum() / pm.sum().clamp(min=1.0)
        loss: torch.Tensor = l_lat + 0.5 * l_cold + 0.5 * l_dep + 0.2 * l_rank
        return loss

    def _raw_predict(
        self, ds: RecDataset, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sub = ds.subset(idx)
        return self._forward(sub.hetero, sub.graph_features, sub.device_features)

    def _forward(
        self, hetero: Sequence[Any], gf: np.ndarray, df: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import torch

        from graphrec.recommender.encoder import collate

        gf = np.atleast_2d(np.asarray(gf, dtype=np.float64))
        df = np.atleast_2d(np.asarray(df, dtype=np.float64))
        if len(hetero) == 0:
            c = len(self.candidates_)
            z = np.zeros((0, c))
            return z, z, z, np.zeros((0, self.embedding_dim))
        with torch.no_grad():
            g = collate(list(hetero))
            # Standardised inputs are clipped: far outside the training data the network
            # extrapolates wildly otherwise (the API warns about such inputs).
            zg = np.clip((gf - self.graph_mean_) / self.graph_std_, -_CLIP, _CLIP)
            zd = np.clip((df - self.device_mean_) / self.device_std_, -_CLIP, _CLIP)
            out, emb = self.net_(
                g, torch.from_numpy(zg.astype(np.float32)), torch.from_numpy(zd.astype(np.float32))
            )
        o = out.numpy().astype(np.float64)
        lat = o[..., 0] * self.lat_scale_ + self.lat_mean_
        cold = o[..., 1] * self.cold_scale_ + self.cold_mean_
        dep = 1.0 / (1.0 + np.exp(-o[..., 2]))
        return lat, cold, dep, emb.numpy().astype(np.float64)
