"""Coarse classification: TF-IDF and Labeled-LDA map a text to a distribution over tasks.

* TF-IDF (scikit-learn, word uni- and bi-grams, sublinear term frequency): each task's
  centroid is the normalised mean of its labelled documents; a text's task distribution
  is a softmax over its cosine similarity to the centroids. The same vectors give a
  direct text match between a query and each entry.
* Labeled-LDA (tomotopy ``LLDAModel``): one topic per task, trained on the labelled
  documents (catalogue texts and the task definitions); a text's inferred topic
  distribution is its task distribution.

Both are fitted from the catalogue in well under a second, deterministically (seeded,
one worker), so models the user registers take part without retraining anything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CoarseClassifier", "tokenize"]

_WORD = re.compile(r"[a-z0-9]+")


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def tokenize(text: str, stop: frozenset[str] | None = None) -> list[str]:
    """Lower-case word tokens without English stop words or one-letter tokens."""
    stop = _stop_words() if stop is None else stop
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in stop]


class CoarseClassifier:
    """TF-IDF + Labeled-LDA task classifier.

    Args:
        use_llda: Mix the Labeled-LDA distribution with the TF-IDF one (``False``: TF-IDF
            only, an ablation).
        temperature: Softmax temperature over the TF-IDF centroid similarities.
        llda_iterations: Gibbs sampling iterations for training.
        infer_iterations: Iterations when inferring a new text's distribution.
        seed: Random seed of the LDA sampler.

    Example:
        >>> clf = CoarseClassifier().fit(["detect faces in photos"], ["face-detection"],
        ...                              ["face-detection", "ocr-detection"])
        >>> clf.task_distribution("find a face").argmax()
        0
    """

    def __init__(
        self,
        use_llda: bool = True,
        temperature: float = 0.05,
        llda_iterations: int = 200,
        infer_iterations: int = 60,
        seed: int = 0,
    ) -> None:
        self.use_llda = use_llda
        self.temperature = temperature
        self.llda_iterations = llda_iterations
        self.infer_iterations = infer_iterations
        self.seed = seed

    def fit(
        self, docs: Sequence[str], labels: Sequence[str], tasks: Sequence[str]
    ) -> CoarseClassifier:
        """Fit on labelled documents.

        Args:
            docs: Texts.
            labels: The task of each text.
            tasks: The task vocabulary (the order of every distribution).
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tasks_ = list(tasks)
        index = {t: i for i, t in enumerate(self.tasks_)}
        stop = _stop_words()
        self._stop = stop
        self.vectorizer_ = TfidfVectorizer(
            tokenizer=lambda s: tokenize(s, stop),
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=1,
        )
        x = self.vectorizer_.fit_transform(list(docs))
        y = np.array([index[t] for t in labels])
        cent = np.zeros((len(self.tasks_), x.shape[1]))
        for i in range(len(self.tasks_)):
            rows = np.flatnonzero(y == i)
            if len(rows):
                cent[i] = np.asarray(x[rows].mean(axis=0)).ravel()
        norm = np.linalg.norm(cent, axis=1, keepdims=True)
        self.centroids_ = cent / np.where(norm > 0, norm, 1.0)
        self.has_docs_ = norm.ravel() > 0
        self.llda_: Any = None
        if self.use_llda:
            import tomotopy as tp

            model = tp.LLDAModel(k=len(self.tasks_), seed=self.seed)
            # Declare every task's label in order first, so topic i is task i.
            for doc, label in zip(docs, labels, strict=True):
                words = tokenize(doc, stop)
                if words:
                    model.add_doc(words, labels=[label])
            model.train(0, workers=1)
            order = list(model.topic_label_dict)
            model.train(self.llda_iterations, workers=1)
            self.llda_ = model
            self._llda_order = np.array([order.index(t) if t in order else -1 for t in self.tasks_])
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        """TF-IDF vectors (sparse, L2-normalised) of ``texts``."""
        return self.vectorizer_.transform(list(texts))

    def tfidf_distribution(self, text: str) -> np.ndarray:
        """Softmax over the cosine similarity of ``text`` to each task's centroid."""
        v = self.transform([text])
        sims = np.asarray(v @ self.centroids_.T).ravel()
        logits = np.where(self.has_docs_, sims / self.temperature, -np.inf)
        logits -= logits.max()
        p = np.exp(logits)
        return p / p.sum()

    def llda_distribution(self, text: str) -> np.ndarray:
        """Labeled-LDA's inferred topic (task) distribution of ``text`` (uniform when no
        word of it is in the model's vocabulary)."""
        n = len(self.tasks_)
        words = [w for w in tokenize(text, self._stop) if w in self._llda_vocab()]
        if self.llda_ is None or not words:
            return np.full(n, 1.0 / n)
        doc = self.llda_.make_doc(words)
        dist, _ = self.llda_.infer(doc, iterations=self.infer_iterations, workers=1)
        topics = np.asarray(dist, dtype=np.float64)
        out = np.array([topics[j] if j >= 0 else 0.0 for j in self._llda_order])
        s = out.sum()
        return out / s if s > 0 else np.full(n, 1.0 / n)

    def _llda_vocab(self) -> frozenset[str]:
        vocab: frozenset[str] | None = getattr(self, "_vocab_cache", None)
        if vocab is None:
            vocab = frozenset(self.llda_.used_vocabs) if self.llda_ is not None else frozenset()
            self._vocab_cache = vocab
        return vocab

    def task_distribution(self, text: str) -> np.ndarray:
        """The coarse task distribution: TF-IDF's, averaged with Labeled-LDA's if used."""
        p = self.tfidf_distribution(text)
        if self.use_llda and self.llda_ is not None:
            p = 0.5 * p + 0.5 * self.llda_distribution(text)
        return p
