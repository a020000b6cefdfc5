from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from sel_models import small_catalogue

from graphrec.cli import main
from graphrec.selection.errors import QueryError, UnknownTaskError
from graphrec.selection.select import Selector


@pytest.fixture(scope="module")
def selector(tmp_path_factory: pytest.TempPathFactory) -> Selector:
    warnings.simplefilter("ignore")
    return Selector(small_catalogue(tmp_path_factory.mktemp("sel")), variant="tfidf+llda")


def test_ranks_by_task_and_predicts_latency(selector: Selector) -> None:
    sel = selector.select("detect people and products on a shop shelf", top_k=4)
    assert sel.results[0].task == "object-detection"
    first = sel.results[0]
    # latency comes from graphrec.recommend on the entry's file, with its fastest runtime
    assert first.latency_ms is not None and first.latency_ms > 0
    assert first.runtime and first.candidate_id and first.candidate_id.startswith(first.runtime)
    assert "ms predicted" in first.reason
    assert [r.rank for r in sel.results] == list(range(1, len(sel.results) + 1))
    scores = [r.score for r in sel.results]
    assert scores == sorted(scores, reverse=True)


def test_cost_breaks_ties_towards_the_cheaper_model(selector: Selector) -> None:
    sel = selector.select("detect people", top_k=4, tasks=["object-detection"])
    by_id = {r.model_id: r for r in sel.results}
    small, big = by_id["user/shelf-detector"], by_id["user/big-detector"]
    assert big.latency_ms is not None and small.latency_ms is not None
    assert big.latency_ms > small.latency_ms
    assert small.score - small.relevance > big.score - big.relevance  # a smaller cost


def test_max_latency_is_honoured(selector: Selector) -> None:
    sel = selector.select("detect people", top_k=4, tasks=["object-detection"])
    lat = sorted(r.latency_ms for r in sel.results if r.latency_ms is not None)
    limit = (lat[0] + lat[-1]) / 2
    capped = selector.select("detect people", top_k=4, max_latency_ms=limit)
    assert capped.results and all(
        r.latency_ms is not None and r.latency_ms <= limit for r in capped.results
    )
    assert capped.excluded.get("over --max-latency-ms", 0) >= 1
    none = selector.select("detect people", top_k=4, max_latency_ms=lat[0] / 1000)
    assert none.results == []


def test_max_size_and_task_filters(selector: Selector) -> None:
    sel = selector.select("read text", top_k=4, max_size_mb=0.001)
    assert all(r.size_mb is not None and r.size_mb <= 0.001 for r in sel.results)
    only = selector.select("read text", top_k=4, tasks=["face-detection"])
    assert {r.task for r in only.results} == {"face-detection"}


def test_bad_input(selector: Selector) -> None:
    with pytest.raises(QueryError, match="empty"):
        selector.select("   ")
    with pytest.raises(QueryError, match="no words"):
        selector.select("the of and ?!")
    with pytest.raises(UnknownTaskError, match="valid tasks"):
        selector.select("detect", tasks=["mind-reading"])
    with pytest.raises(QueryError, match="positive"):
        selector.select("detect", max_latency_ms=-1)
    with pytest.raises(QueryError, match="top-k"):
        selector.select("detect", top_k=0)
    with pytest.raises(QueryError, match="unknown variant"):
        Selector(selector.catalogue, variant="bm25")


def test_selection_outputs(selector: Selector) -> None:
    sel = selector.select("find faces in photos", top_k=2)
    d = json.loads(sel.to_json())
    for key in (
        "model_id",
        "package",
        "task",
        "relevance",
        "latency_ms",
        "size_mb",
        "score",
        "runtime",
    ):
        assert key in d["results"][0]
    df = sel.to_pandas()
    assert list(df["model_id"]) == [r.model_id for r in sel.results]


def test_multiscale_twin_on_small_catalogue(tmp_path: Path) -> None:
    sel = Selector(small_catalogue(tmp_path), variant="multiscale")
    res = sel.select("I need to read the text on shop receipts", top_k=2)
    assert res.results[0].model_id == "user/receipt-reader"
    assert "description similarity" in res.results[0].reason


def test_cli_select_add_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cat = small_catalogue(tmp_path)
    path = str(cat.path)
    cat.close()
    common = ["--catalogue", path, "--variant", "tfidf"]
    assert main(["select", "find", "faces", "in", "photos", "--json", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["model_id"] == "user/face-finder"
    assert main(["select", "", *common]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["select", "add", str(tmp_path / "m0.onnx"), "--catalogue", path]) == 1
    assert "--task and --description" in capsys.readouterr().err
    rc = main(
        [
            "select",
            "add",
            str(tmp_path / "m0.onnx"),
            "--task",
            "segmentation",
            "--description",
            "mask road pixels",
            "--name",
            "user/road",
            "--catalogue",
            path,
        ]
    )
    assert rc == 0 and "added user/road" in capsys.readouterr().out
    assert main(["select", "list", "--catalogue", path]) == 0
    assert "user/road" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("{{{")
    assert main(["select", "add", str(bad), "--catalogue", path]) == 1
    assert "does not parse" in capsys.readouterr().err
