"""Function-driven model selection: a description of the job -> models ranked by fit and cost.

Relevance of an entry to a query combines three signals (weights fixed before any
evaluation, never tuned on the held-out queries):

* coarse: the query's task distribution (TF-IDF + Labeled-LDA) at the entry's task;
* text match: TF-IDF cosine between the query and the entry's text;
* fine: the twin encoder's cosine between the query and the entry's description or
  README paragraph (the larger).

The compound score subtracts a cost: the latency that ``graphrec.recommend`` predicts for
the entry's ONNX file on the device (the fastest deployable runtime), or, without a file,
its size; entries with neither get a neutral cost and say so. Constraints remove entries
outright: ``max_latency_ms`` keeps only entries whose predicted latency is known and
within the limit, ``max_size_mb`` likewise for the size.

Example:
    >>> import graphrec
    >>> sel = graphrec.select("count people in a shop camera feed")  # doctest: +SKIP
    >>> sel.results[0].model_id, sel.results[0].task  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.selection.catalogue import Catalogue, Entry, LatencyRecord
from graphrec.selection.errors import QueryError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TWIN_DIR", "VARIANTS", "Result", "Selection", "Selector", "select"]

TWIN_DIR = Path(__file__).resolve().parent.parent / "data" / "selection" / "twin"

#: Ablation variants, cheapest first: the signals each one uses.
VARIANTS: dict[str, dict[str, Any]] = {
    "tfidf": {"llda": False, "fine": None},
    "tfidf+llda": {"llda": True, "fine": None},
    "frozen": {"llda": True, "fine": "frozen"},
    "twin": {"llda": True, "fine": "document"},
    "multiscale": {"llda": True, "fine": "multiscale"},
}

#: Relevance weights (task probability, text match, fine); without a fine signal its
#: weight is shared out in proportion. Chosen on the development queries only.
WEIGHTS = (0.4, 0.2, 0.4)
#: Softmax temperature of the fine task distribution (cosine units).
FINE_TEMPERATURE = 0.05
#: Weight of the cost term of the compound score.
COST_WEIGHT = 0.1
#: Cost of an entry with neither latency nor size (in the 0..1 cost scale).
UNKNOWN_COST = 0.5


@dataclass
class Result:
    """One selected model.

    Attributes:
        rank: 1 for the best.
        model_id: Catalogue id.
        package: The package that ships or fetches it.
        task: Its task.
        relevance: Fit to the query (0..1, higher is better).
        latency_ms: Predicted latency on the device (``None``: no model file).
        size_mb: File size (``None`` when unknown).
        score: The compound score the ranking sorts by.
        runtime: The runtime ``graphrec.recommend`` predicts fastest (``None`` without file).
        candidate_id: That deployment choice in full.
        reason: Why it ranks here, in words.
        source: ``package`` (metadata only, not fetched), ``zoo``, ``real`` or ``user``.
        fetched: Whether a model file is at hand (so latency is known).
        license: As its source states it.
        accuracy: As its source states it.
        flops: Forward FLOPs from the graph kernel (ONNX files only).
        params: Parameters from the kernel.
        version: The package version.
    """

    rank: int
    model_id: str
    package: str
    task: str
    relevance: float
    latency_ms: float | None
    size_mb: float | None
    score: float
    runtime: str | None
    candidate_id: str | None
    reason: str
    source: str
    fetched: bool
    license: str | None = None
    accuracy: str | None = None
    flops: float | None = None
    params: float | None = None
    version: str | None = None


@dataclass
class Selection:
    """The answer to one query.

    Attributes:
        query: The query text.
        device_id: The device the latencies are for.
        variant: The ablation variant used (``multiscale`` by default).
        results: Best first.
        task_distribution: The coarse classifier's top tasks and probabilities.
        excluded: Entries removed by constraints, by reason.
    """

    query: str
    device_id: str
    variant: str
    results: list[Result]
    task_distribution: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict` (keyword arguments go to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    def to_pandas(self) -> pd.DataFrame:
        """The results as a ``pandas.DataFrame``, one row per model."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.results])


def _norm_rows(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


class Selector:
    """Loads the catalogue and the text models once and answers queries.

    Args:
        catalogue: An open catalogue, or its path (default: the user's catalogue).
        variant: One of :data:`VARIANTS`.
        twin_dir: Folder of the trained twin heads (default: the shipped ones).
        artefact: The recommender artefact for latency (default: graphrec's default).
    """

    def __init__(
        self,
        catalogue: Catalogue | str | os.PathLike[str] | None = None,
        variant: str = "multiscale",
        twin_dir: str | os.PathLike[str] | None = None,
        artefact: str | os.PathLike[str] | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise QueryError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.catalogue = (
            catalogue if isinstance(catalogue, Catalogue) else Catalogue.open(catalogue)
        )
        self.variant = variant
        self.twin_dir = Path(twin_dir) if twin_dir is not None else TWIN_DIR
        self.artefact = artefact
        self.weights = WEIGHTS
        self._digest: str | None = None

    # -- text models ---------------------------------------------------------------------
    def _ensure(self) -> None:
        digest = self.catalogue.digest()
        if digest == self._digest:
            return
        from graphrec.selection.coarse import CoarseClassifier
        from graphrec.selection.tasks import TASKS

        self.entries = self.catalogue.entries()
        self.tasks = list(TASKS)
        spec = VARIANTS[self.variant]
        docs, labels = training_texts(self.entries)
        self.coarse = CoarseClassifier(use_llda=spec["llda"]).fit(docs, labels, self.tasks)
        self.entry_tfidf = self.coarse.transform([e.text for e in self.entries])
        self.task_index = np.array([self.tasks.index(e.task) for e in self.entries])
        self.head: Any = None
        self.entry_z: np.ndarray | None = None
        if spec["fine"] is not None:
            if spec["fine"] != "frozen":
                from graphrec.selection.encoder import load_twin

                self.head, _ = load_twin(self.twin_dir / spec["fine"])
            from graphrec.selection.encoder import twin_embed

            n = len(self.entries)
            texts = (
                [e.description for e in self.entries]
                + [e.readme or e.description for e in self.entries]
                + [_definition(t) for t in self.tasks]
            )
            z = twin_embed(self.head, cached_features(self.catalogue, texts))
            self.entry_z = np.stack([z[:n], z[n : 2 * n]], axis=1)  # (n, 2, d)
            self.task_z = z[2 * n :]
        self._digest = digest

    def relevance(self, query: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Relevance of every entry to ``query``.

        Returns:
            ``(relevance per entry, task distribution, the parts by name)``.

        Raises:
            QueryError: The query is empty.
        """
        q = _check_query(query)
        self._ensure()
        p_task = self.coarse.task_distribution(q)
        tfidf = np.asarray((self.entry_tfidf @ self.coarse.transform([q]).T).todense()).ravel()
        parts = {"text": tfidf}
        w_task, w_text, w_fine = self.weights
        if self.entry_z is not None:
            from graphrec.selection.encoder import encode_multiscale, twin_embed

            zq = twin_embed(self.head, encode_multiscale([q]))[0]
            sims = self.entry_z @ zq  # (n, 2): description, README
            fine = sims.max(axis=1)
            # The fine task distribution: per task, the best similarity of its entries'
            # texts or its definition, softmaxed; averaged with the coarse one.
            per_task = self.task_z @ zq
            np.maximum.at(per_task, self.task_index, fine)
            logits = per_task / FINE_TEMPERATURE
            p_fine = np.exp(logits - logits.max())
            p_task = 0.5 * p_task + 0.5 * p_fine / p_fine.sum()
            parts["fine"] = fine
            rel = (
                w_task * p_task[self.task_index] + w_text * tfidf + w_fine * np.clip(fine, 0.0, 1.0)
            )
        else:
            rel = (w_task * p_task[self.task_index] + w_text * tfidf) / (w_task + w_text)
        parts["task"] = p_task[self.task_index]
        return rel, p_task, parts

    # -- cost ----------------------------------------------------------------------------
    def _device(self, device: Any) -> Any:
        from graphrec.device import DeviceProfile

        if isinstance(device, DeviceProfile):
            return device
        if device is None or device == "auto":
            return _detected_device()
        return DeviceProfile.load(device)

    def latency(self, entry: Entry, device: Any) -> tuple[LatencyRecord | None, str | None]:
        """Predicted latency of ``entry`` on ``device`` (cached), or why there is none."""
        if not entry.has_model_file:
            if entry.source == "package":
                return None, "not fetched"
            return None, "no model file"
        path = Path(entry.file_path) if entry.file_path else _zoo_file(entry)
        sha = entry.sha256 or _sha256(path)
        art_key, art_path = _artefact_key(None if self.artefact is None else str(self.artefact))
        cached = self.catalogue.latency(entry.model_id, sha, device.device_id, art_key)
        if cached is not None:
            return cached, None
        import graphrec
        from graphrec.errors import GraphRecError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = graphrec.recommend(path, device, artefact=art_path)
        except GraphRecError as exc:
            return None, f"recommend failed: {exc}"
        best = rec.best
        record = LatencyRecord(float(best.latency_ms), best.candidate_id)
        self.catalogue.put_latency(entry.model_id, sha, device.device_id, art_key, record)
        return record, None

    # -- answering -----------------------------------------------------------------------
    def select(
        self,
        query: str,
        *,
        top_k: int = 5,
        device: Any = "auto",
        max_latency_ms: float | None = None,
        max_size_mb: float | None = None,
        tasks: Sequence[str] | None = None,
    ) -> Selection:
        """Rank catalogue models for ``query``.

        Args:
            query: What the model should do, in words.
            top_k: How many models to return.
            device: ``"auto"`` (this machine), a :class:`~graphrec.device.DeviceProfile` or
                the path of a saved profile.
            max_latency_ms: Keep only models predicted to run within this on the device.
            max_size_mb: Keep only models whose file is at most this large.
            tasks: Keep only models of these tasks.

        Raises:
            QueryError: Empty query, or a constraint that is not a positive number.
            UnknownTaskError: A task outside the vocabulary.
            DeviceProfileError: The device profile is invalid.
        """
        from graphrec.selection.tasks import check_task

        if top_k < 1:
            raise QueryError(f"--top-k must be at least 1, got {top_k}")
        for name, value in (("--max-latency-ms", max_latency_ms), ("--max-size-mb", max_size_mb)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise QueryError(f"{name} must be a positive number, got {value}")
        wanted = {check_task(t) for t in tasks} if tasks else None
        rel, p_task, parts = self.relevance(query)
        dev = self._device(device)
        excluded: dict[str, int] = {}

        def exclude(reason: str) -> None:
            excluded[reason] = excluded.get(reason, 0) + 1

        order = np.argsort(-rel, kind="stable")
        if wanted is not None:
            kept = [i for i in order if self.entries[int(i)].task in wanted]
            excluded["task not wanted"] = len(order) - len(kept)
            order = np.array(kept, dtype=np.int64)
        best_rel = float(rel[order[0]]) if len(order) else 0.0
        pool: list[tuple[float, int, LatencyRecord | None, str | None, float]] = []
        # Enough candidates for the cost term to reorder: the top_k + 10 most relevant
        # that pass the constraints, never ones far below the best relevance.
        for i in order:
            e = self.entries[int(i)]
            if len(pool) >= top_k + 10 or float(rel[i]) < 0.5 * best_rel:
                break
            if max_size_mb is not None and (e.size_mb is None or e.size_mb > max_size_mb):
                exclude("size unknown" if e.size_mb is None else "over --max-size-mb")
                continue
            record, why = self.latency(e, dev)
            if max_latency_ms is not None and (
                record is None or record.latency_ms > max_latency_ms
            ):
                exclude(f"no latency ({why})" if record is None else "over --max-latency-ms")
                continue
            cost = _cost(record, e)
            score = float(rel[i]) - COST_WEIGHT * cost
            pool.append((score, int(i), record, why, cost))
        pool.sort(key=lambda t: -t[0])
        results = []
        for rank, (score, i, record, why, cost) in enumerate(pool[:top_k], start=1):
            e = self.entries[i]
            results.append(
                Result(
                    rank=rank,
                    model_id=e.model_id,
                    package=e.package,
                    task=e.task,
                    relevance=round(float(rel[i]), 4),
                    latency_ms=None if record is None else round(record.latency_ms, 3),
                    size_mb=None if e.size_mb is None else round(e.size_mb, 3),
                    score=round(score, 4),
                    runtime=None if record is None else record.runtime,
                    candidate_id=None if record is None else record.candidate_id,
                    reason=_reason(e, p_task, self.tasks, parts, i, record, why, cost),
                    source=e.source,
                    fetched=e.has_model_file,
                    license=e.license,
                    accuracy=e.accuracy,
                    flops=e.flops,
                    params=e.params,
                    version=e.version,
                )
            )
        top = np.argsort(-p_task)[:3]
        return Selection(
            query=query.strip(),
            device_id=dev.device_id,
            variant=self.variant,
            results=results,
            task_distribution={self.tasks[int(j)]: round(float(p_task[j]), 4) for j in top},
            excluded=excluded,
        )


def _check_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise QueryError("the query is empty: describe what the model should do")
    from graphrec.selection.coarse import tokenize

    if not tokenize(query):
        raise QueryError(f"the query {query!r} has no words to match (only stop words or symbols)")
    return query.strip()


def _cost(record: LatencyRecord | None, e: Entry) -> float:
    """Cost on a 0..1 scale: log latency (1 ms -> 0.1, 1 s -> 1), else log size."""
    if record is not None:
        return min(math.log10(1.0 + record.latency_ms) / 3.0, 1.0)
    if e.size_mb is not None:
        return min(math.log10(1.0 + e.size_mb) / 3.0, 1.0)
    return UNKNOWN_COST


def _reason(
    e: Entry,
    p_task: np.ndarray,
    tasks: list[str],
    parts: dict[str, np.ndarray],
    i: int,
    record: LatencyRecord | None,
    why: str | None,
    cost: float,
) -> str:
    bits = [f"task {e.task} (p={float(p_task[tasks.index(e.task)]):.2f})"]
    bits.append(f"text match {float(parts['text'][i]):.2f}")
    if "fine" in parts:
        bits.append(f"description similarity {float(parts['fine'][i]):.2f}")
    if record is not None:
        bits.append(f"{record.latency_ms:.2f} ms predicted, fastest with {record.candidate_id}")
    elif e.size_mb is not None:
        bits.append(f"no latency ({why}); cost from size {e.size_mb:.1f} MB")
    else:
        bits.append(f"no latency ({why}); neutral cost")
    bits.append(f"cost {cost:.2f}")
    return "; ".join(bits)


def _definition(task: str) -> str:
    from graphrec.selection.tasks import TASKS

    return f"{task.replace('-', ' ')}: {TASKS[task]}"


def training_texts(entries: Sequence[Entry]) -> tuple[list[str], list[str]]:
    """The labelled texts the classifiers learn from: each entry's description, README
    paragraph and its sentences, and each task's definition."""
    from graphrec.selection.tasks import TASKS

    docs: list[str] = []
    labels: list[str] = []
    for e in entries:
        pieces = [e.description]
        if e.readme:
            pieces.append(e.readme)
            sentences = [s.strip() for s in e.readme.split(". ") if len(s.split()) >= 4]
            if len(sentences) > 1:
                pieces += sentences
        for p in pieces:
            docs.append(p)
            labels.append(e.task)
    for task in TASKS:
        docs.append(_definition(task))
        labels.append(task)
    return docs, labels


def cached_features(catalogue: Catalogue, texts: Sequence[str]) -> np.ndarray:
    """Multi-scale features of ``texts``, cached in the catalogue by text and encoder."""
    from graphrec.selection.encoder import encode_multiscale, encoder_digest

    enc = encoder_digest()
    keys = [f"ms:{enc}:{hashlib.sha1(t.encode()).hexdigest()}" for t in texts]
    out: list[np.ndarray | None] = []
    missing = []
    for j, k in enumerate(keys):
        blob = catalogue.feature_blob(k)
        if blob is None:
            out.append(None)
            missing.append(j)
        else:
            out.append(np.frombuffer(blob, dtype=np.float32).reshape(3, -1))
    if missing:
        feats = encode_multiscale([texts[j] for j in missing])
        for j, f in zip(missing, feats, strict=True):
            out[j] = f
            catalogue.put_feature_blob(keys[j], f.astype(np.float32).tobytes())
    return np.stack([o for o in out if o is not None])


@functools.lru_cache(maxsize=1)
def _detected_device() -> Any:
    from graphrec.device import DeviceProfile

    return DeviceProfile.detect()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=4)
def _artefact_key(artefact: str | None) -> tuple[str, Path]:
    from graphrec.api import load_artefact

    _, path = load_artefact(artefact)
    meta = (Path(path) / "meta.json").read_bytes()
    return hashlib.sha256(meta).hexdigest()[:16], Path(path)


def _zoo_file(entry: Entry) -> Path:
    """The zoo entry's ONNX file, regenerated into the cache on first use."""
    from graphrec.bench.harness import default_cache_dir
    from graphrec.zoo.entry import ZooEntry

    assert entry.zoo_id is not None
    path = default_cache_dir() / "selection" / "zoo" / f"{entry.zoo_id}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.onnx")
        ZooEntry.from_model_id(entry.zoo_id).export(tmp)
        tmp.replace(path)
    return path


@functools.lru_cache(maxsize=4)
def _selector(catalogue: str | None, variant: str) -> Selector:
    return Selector(catalogue, variant=variant)


def select(
    query: str,
    device: Any = "auto",
    *,
    top_k: int = 5,
    max_latency_ms: float | None = None,
    max_size_mb: float | None = None,
    tasks: Sequence[str] | None = None,
    catalogue: str | os.PathLike[str] | None = None,
    variant: str = "multiscale",
) -> Selection:
    """Propose catalogue models for a job described in words (see :meth:`Selector.select`).

    The loaded catalogue and text models are kept for the next call in this process.
    """
    sel = _selector(None if catalogue is None else str(catalogue), variant)
    return sel.select(
        query,
        top_k=top_k,
        device=device,
        max_latency_ms=max_latency_ms,
        max_size_mb=max_size_mb,
        tasks=tasks,
    )
