"""graphrec.recommend, Recommendation and the recommend / train CLI on real tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "recommender"))

from rec_fixtures import *  # noqa: F403  (session fixtures shared with tests/recommender)
from rec_models import make_convnet

import graphrec
from graphrec.cli import main
from graphrec.device import DeviceProfile
from graphrec.errors import (
    ArtefactError,
    CandidateSpecError,
    DeviceProfileError,
    ModelLoadError,
    OutOfDistributionWarning,
)


def test_import_graphrec_is_light() -> None:
    code = "import sys, graphrec; print('torch' in sys.modules, 'catboost' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _measured_p50(store_path: Path, model_name: str) -> dict[str, float]:
    """Median over rounds of the measured warm p50 per candidate, from the fixture store."""
    from graphrec.bench.store import ResultStore

    with ResultStore(store_path) as store:
        rows = [r for r in store.rows() if r["model_name"] == model_name and r["status"] == "ok"]
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r["candidate_id"], []).append(float(r["p50_ms"]))
    return {k: float(np.median(v)) for k, v in out.items()}


def _check_ranking(rec: graphrec.Recommendation) -> None:
    """The order is the one the predictions imply: deployable choices by expected loss."""
    ch = rec.choices
    assert [c.rank for c in ch] == list(range(1, len(ch) + 1))
    dep = [c for c in ch if c.deployable]
    assert dep and ch[: len(dep)] == dep  # every deployable choice before any other
    losses = [c.expected_loss for c in dep if c.expected_loss is not None]
    assert len(losses) == len(dep) and all(x >= 0.0 for x in losses)
    assert losses == sorted(losses)
    assert rec.best is dep[0] and rec.best.expected_loss == min(losses)
    for c in ch[len(dep) :]:
        assert c.expected_loss is None and c.p_fastest == 0.0 and c.p_deployable < 0.5
    # deployable: p >= 0.5; when no choice reaches 0.5, the likeliest ones (ranking.py)
    top_p = max(c.p_deployable for c in ch)
    for c in dep:
        assert c.p_deployable >= 0.5 or (top_p < 0.5 and c.p_deployable == top_p)
    assert sum(c.p_fastest for c in dep) == pytest.approx(1.0)
    for c in ch:
        # A 90 % interval symmetric in log space around the median prediction.
        assert 0.0 < c.latency_low_ms < c.latency_ms < c.latency_high_ms
        assert c.latency_ms**2 == pytest.approx(c.latency_low_ms * c.latency_high_ms, rel=1e-6)
        assert 0.0 <= c.p_fastest <= 1.0 and 0.0 <= c.p_deployable <= 1.0
        assert c.cold_start_ms > 0.0
    # A choice that is never the fastest cannot be expected to lose nothing.
    for c in dep:
        if c.p_fastest == 0.0:
            assert c.expected_loss is not None and c.expected_loss > 0.0


@pytest.mark.parametrize("model", ["conv-s1", "mlp-s0"])
def test_recommend(rec_artefact: Path, rec_models_dir: Path, rec_store: Path, model: str) -> None:
    rec = graphrec.recommend(rec_models_dir / f"{model}.onnx", "auto", artefact=rec_artefact)
    assert isinstance(rec, graphrec.Recommendation)
    measured = _measured_p50(rec_store, model)
    ids = [c.candidate_id for c in rec.choices]
    assert sorted(ids) == sorted(measured)  # ids join with the harness's rows
    _check_ranking(rec)
    expected = {"conv-s1": [1, 3, 32, 32], "mlp-s0": [1, 32]}[model]
    assert rec.input_shapes == {"x": expected}
    # Trained on these very measurements: every prediction within 10x of what was measured.
    for c in rec.choices:
        ratio = c.latency_ms / measured[c.candidate_id]
        assert 0.1 < ratio < 10.0, (c.candidate_id, c.latency_ms, measured[c.candidate_id])


def test_recommendation_json_round_trip(rec_artefact: Path, rec_models_dir: Path) -> None:
    from dataclasses import asdict

    from graphrec.api import Choice

    rec = graphrec.recommend(rec_models_dir / "conv-s0.onnx", artefact=rec_artefact)
    d = json.loads(rec.to_json())
    assert d["best"] == rec.best.candidate_id
    back = graphrec.Recommendation(
        **{k: v for k, v in d.items() if k not in ("best", "choices")},
        choices=[Choice(**c) for c in d["choices"]],
    )
    assert back == rec  # every field, every float, survives the text
    df = rec.to_pandas()
    assert list(df["candidate_id"]) == [c.candidate_id for c in rec.choices]
    assert list(df["latency_ms"]) == [c.latency_ms for c in rec.choices]
    assert list(df.columns) == list(asdict(rec.choices[0]))


def test_recommend_options(rec_artefact: Path, rec_models_dir: Path, tmp_path: Path) -> None:
    model = rec_models_dir / "mlp-s0.onnx"
    full = graphrec.recommend(model, artefact=rec_artefact)
    by_id = {c.candidate_id: c for c in full.choices}
    one = graphrec.recommend(model, artefact=rec_artefact, top_k=1)
    assert [c.candidate_id for c in one.choices] == [full.choices[0].candidate_id]
    only = graphrec.recommend(model, artefact=rec_artefact, candidates=["*/opt=basic/*"])
    assert [c.candidate_id for c in only.choices] == ["onnxruntime/cpu/fp32/opt=basic/threads=1"]
    # Filtering keeps the predictions of the kept candidates and re-ranks among them only.
    fp32 = graphrec.recommend(model, artefact=rec_artefact, candidates=["*/fp32/*"])
    kept = [c.candidate_id for c in fp32.choices]
    assert sorted(kept) == sorted(i for i in by_id if "/fp32/" in i) and len(kept) == 2
    for c in fp32.choices:
        assert c.latency_ms == pytest.approx(by_id[c.candidate_id].latency_ms, rel=1e-9)
        assert c.p_deployable == pytest.approx(by_id[c.candidate_id].p_deployable, rel=1e-9)
    _check_ranking(fp32)
    exact = graphrec.recommend(model, artefact=rec_artefact, candidates=[kept[1], kept[0]])
    assert sorted(c.candidate_id for c in exact.choices) == sorted(kept)
    with pytest.raises(CandidateSpecError, match="knows"):
        graphrec.recommend(model, artefact=rec_artefact, candidates=["tflite"])
    # Dynamic batch: resolved by the bench rule, overridable.
    dyn = make_convnet(tmp_path / "dyn.onnx", channels=8, dynamic_batch=True)
    assert graphrec.recommend(dyn, artefact=rec_artefact).input_shapes == {"x": [1, 3, 32, 32]}
    r4 = graphrec.recommend(dyn, artefact=rec_artefact, input_shapes={"x": [4, 3, 32, 32]})
    assert r4.input_shapes == {"x": [4, 3, 32, 32]}


def test_far_device_warns(rec_artefact: Path, rec_models_dir: Path, tmp_path: Path) -> None:
    phone = DeviceProfile(
        name="phone",
        source="spec-sheet",
        os="Android",
        arch="aarch64",
        cpu_model="Cortex-A55",
        physical_cores=8,
        logical_cores=8,
        threads_available=8,
        memory_total_mb=4096,
    )
    path = phone.save(tmp_path / "phone.json")
    with pytest.warns(OutOfDistributionWarning, match="device differs"):
        rec = graphrec.recommend(rec_models_dir / "mlp-s1.onnx", path, artefact=rec_artefact)
    assert rec.device_name == "phone" and rec.warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        graphrec.recommend(rec_models_dir / "mlp-s1.onnx", artefact=rec_artefact)


def test_errors(rec_artefact: Path, rec_models_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match=r"bad\.onnx"):
        graphrec.recommend(bad, artefact=rec_artefact)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((rec_models_dir / "conv-s0.onnx").read_bytes()[:200])
    with pytest.raises(ModelLoadError, match=r"cut\.onnx"):
        graphrec.recommend(cut, artefact=rec_artefact)
    with pytest.raises(ModelLoadError, match=r"missing\.onnx"):
        graphrec.recommend(tmp_path / "missing.onnx", artefact=rec_artefact)
    profile = tmp_path / "phone.json"
    profile.write_text("{not json")
    with pytest.raises(DeviceProfileError, match=r"phone\.json"):
        graphrec.recommend(rec_models_dir / "conv-s0.onnx", profile, artefact=rec_artefact)
    with pytest.raises(DeviceProfileError, match=r"nowhere\.json"):
        graphrec.recommend(
            rec_models_dir / "conv-s0.onnx", tmp_path / "nowhere.json", artefact=rec_artefact
        )
    with pytest.raises(ArtefactError, match="graphrec train"):
        graphrec.recommend(bad, artefact=tmp_path)


def test_cli_recommend(
    rec_artefact: Path, rec_models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(rec_models_dir / "conv-s0.onnx")
    assert main(["recommend", model, "--artefact", str(rec_artefact), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)  # nothing but the JSON on stdout
    api = graphrec.recommend(model, artefact=rec_artefact).to_dict()
    assert d["best"] == api["best"]
    assert [c["candidate_id"] for c in d["choices"]] == [c["candidate_id"] for c in api["choices"]]
    assert [c["latency_ms"] for c in d["choices"]] == pytest.approx(
        [c["latency_ms"] for c in api["choices"]], rel=1e-9
    )
    assert main(["recommend", model, "--artefact", str(rec_artefact)]) == 0
    assert "recommended:" in capsys.readouterr().out
    assert main(["recommend", model, "--artefact", str(rec_artefact / "nope")]) == 1
    assert "graphrec train" in capsys.readouterr().err


def test_verify_measures_the_top_choices(
    rec_artefact: Path, rec_models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify() runs the real harness on the recommended choices, with the same shapes."""
    from graphrec.bench.store import ResultStore

    rec = graphrec.recommend(rec_models_dir / "mlp-s0.onnx", artefact=rec_artefact)
    db = tmp_path / "verify.sqlite"
    assert graphrec.verify(rec, 2, store=db) is rec
    top = rec.choices[:2]
    assert all(c.measured_status == "ok" and (c.measured_ms or 0) > 0 for c in top)
    assert all(c.measured_status is None for c in rec.choices[2:])
    with ResultStore(db) as store:
        rows = store.rows()
    assert sorted(r["candidate_id"] for r in rows) == sorted(c.candidate_id for c in top)
    assert json.loads(rec.to_json())["choices"][0]["measured_ms"] == top[0].measured_ms
    model = str(rec_models_dir / "mlp-s0.onnx")
    assert main(["recommend", model, "--artefact", str(rec_artefact), "--verify", "1"]) == 0
    out = capsys.readouterr().out
    assert "measured ms" in out and "measured 1 choices on this machine" in out
    # Another device's recommendation cannot be measured here.
    phone = DeviceProfile(name="phone", source="spec-sheet", arch="aarch64", cpu_model="A55")
    other = graphrec.recommend(
        model, phone.save(tmp_path / "phone.json"), artefact=rec_artefact, top_k=1
    )
    with pytest.raises(DeviceProfileError, match="this machine only"):
        graphrec.verify(other, 1)


def test_cli_train(rec_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "art"
    argv = [
        "train",
        "--data",
        str(rec_store),
        "--out",
        str(out),
        "--epochs",
        "3",
        "--weighting",
        "heuristic",
    ]
    assert main(argv) == 0
    assert (out / "meta.json").is_file() and (out / "medn.pt").is_file()
    assert "trained on 4 samples" in capsys.readouterr().err
    card = (out / "CARD.md").read_text()
    assert f"graphrec train --data {rec_store} --out {out}" in card
    assert "4 (model, device) samples" in card and "torch:" in card
    assert main(["train", "--data", str(tmp_path / "missing.sqlite"), "--out", str(out)]) == 1


def test_torch_source_runtimes_cannot_take_a_bare_onnx(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from graphrec.api import Choice, _mark_torch_source, _torch_source_blocker

    def choice(rank: int, cid: str) -> Choice:
        return Choice(rank, cid, 1.0, 0.5, 2.0, 0.5, 0.0, 1.0, True, 5.0)

    model = tmp_path / "m.onnx"
    make_convnet(model, channels=4, seed=0)
    ids = ["litert/xnnpack/fp32/threads=1", "onnxruntime/cpu/fp32/opt=all/threads=1"]
    # A bare ONNX file that graphrec's ONNX -> torch converter takes has a torch source
    # (issue 22): nothing is marked.
    assert _torch_source_blocker(model) is None
    out = _mark_torch_source([choice(1, ids[0]), choice(2, ids[1])], None)
    assert [c.candidate_id for c in out] == ids and out[0].deployable
    # One with an operator the converter has no rule for names that operator.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Hardmax", ["x"], ["y"], axis=-1)
    odd = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), odd)
    why = _torch_source_blocker(odd)
    assert why is not None and "no rule for Hardmax" in why
    out = _mark_torch_source([choice(1, ids[0]), choice(2, ids[1])], why)
    assert [c.candidate_id for c in out] == ids[::-1] and [c.rank for c in out] == [1, 2]
    assert not out[1].deployable and "Hardmax" in (out[1].note or "")
    assert out[0].note is None and out[0].deployable
    # With a torch-source sidecar (as graphrec zoo writes) the converter is not needed.
    (tmp_path / "odd.torch.json").write_text(
        json.dumps({"factory": "graphrec.zoo.entry:torch_module", "kwargs": {}})
    )
    assert _torch_source_blocker(odd) is None


PACKAGED = Path(graphrec.__file__).parent / "data" / "recommender"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "models" / "tiny_convnet.onnx"


def test_packaged_default_artefact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped recommender loads by default (checksums checked) and ranks the example."""
    from graphrec.api import _PACKAGED
    from graphrec.recommender import Recommender

    assert _PACKAGED == PACKAGED and (PACKAGED / "meta.json").is_file()  # shipped: never skip

    monkeypatch.delenv("GRAPHREC_ARTEFACT", raising=False)
    meta = json.loads((PACKAGED / "meta.json").read_text())
    assert meta["info"]["n_models"] >= 100
    assert (PACKAGED / "CARD.md").is_file()
    Recommender.load(PACKAGED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        rec = graphrec.recommend(EXAMPLE)
    assert rec.artefact == str(PACKAGED)
    assert len(rec.choices) == len(meta["candidates"])
    assert rec.best.deployable and rec.best.latency_ms > 0
    # A bare ONNX file: the runtimes that convert from torch come last, marked.
    blocked = [c for c in rec.choices if c.note]
    assert blocked and all(not c.deployable for c in blocked)
    assert rec.choices[-1].note is not None
    # ... and take no part in the ranking: never the fastest, so they do not inflate the
    # others' expected loss (ranking the ONNX runtimes alone gives about the same figures).
    assert all(c.p_fastest == 0.0 and c.p_deployable == 0.0 for c in blocked)
    onnx_only = [c.candidate_id for c in rec.choices if not c.note]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        alone = graphrec.recommend(EXAMPLE, candidates=onnx_only)
    assert alone.best.candidate_id == rec.best.candidate_id
    assert rec.best.expected_loss is not None and alone.best.expected_loss is not None
    assert abs(rec.best.expected_loss - alone.best.expected_loss) < 0.1


def test_support_tables_are_read_again_when_a_table_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from graphrec import api
    from graphrec.runtimes.support import PACKAGED_DIR

    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path))
    first = api._support_tables()
    assert api._support_tables() is first  # cached while nothing changed
    table = sorted(PACKAGED_DIR.glob("onnxruntime-*.json"))[0]
    (tmp_path / "support").mkdir()
    shutil.copy(table, tmp_path / "support" / "onnxruntime-copy.json")
    again = api._support_tables()
    assert again is not first
    assert len(again["onnxruntime"]) == len(first["onnxruntime"]) + 1
