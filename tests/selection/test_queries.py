from __future__ import annotations

from graphrec.selection.evaluate import DEV, HELD_OUT, load_queries
from graphrec.selection.select import training_texts
from graphrec.selection.sources import shipped_entries


def test_held_out_queries_are_many_valid_and_answerable() -> None:
    held = load_queries(HELD_OUT)
    assert len(held) >= 80
    ids = [e.model_id for e in shipped_entries()]
    for q in held:
        assert q.origin in ("scenario", "doc"), q.text
        assert q.models, q.text
        # every acceptable-model pattern names at least one catalogue entry
        for pattern in q.models:
            assert any(q.__class__(q.text, q.tasks, (pattern,)).matches(m) for m in ids), pattern


def test_held_out_queries_are_not_training_or_dev_text() -> None:
    held = {q.text.lower() for q in load_queries(HELD_OUT)}
    dev = {q.text.lower() for q in load_queries(DEV)}
    assert not held & dev
    docs, _ = training_texts(shipped_entries())
    corpus = " ".join(docs).lower()
    assert not [q for q in held if q in corpus]
