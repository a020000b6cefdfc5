"""graphrec.dataset: building from a store + manifest, the card's figures, the CLI.

The card is arithmetic over stored rows, so these tests write rows with known latencies
into a real ResultStore and check the figures exactly; the harness that produces such
rows is tested with the real runtimes in tests/bench.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphrec.bench.store import ResultStore
from graphrec.cli import main
from graphrec.dataset import (
    build_dataset,
    card_figures,
    fragmentation_svg,
    load_dataset,
    render_card,
)
from graphrec.errors import DatasetError

# (model sha, family) -> {runtime: (p50 at threads=1, p50 at threads=2)}; None = failed.
LAT: dict[tuple[str, str], dict[str, tuple[float, float | None] | None]] = {
    ("a" * 64, "resnet"): {"onnxruntime": (2.0, 1.2), "openvino": (1.0, 0.6), "tract": (4.0, None)},
    ("b" * 64, "resnet"): {"onnxruntime": (3.0, 2.0), "openvino": (2.0, 1.0), "tract": (6.0, None)},
    ("c" * 64, "bert"): {"onnxruntime": (1.0, 0.5), "openvino": (1.5, 1.0), "tract": None},
}


def _store(path: Path) -> Path:
    with ResultStore(path) as st:
        st.add_device("dev1", {"cpu": "test"})
        for (sha, _fam), per_rt in LAT.items():
            runtimes: dict[str, tuple[float, float | None] | None] = {**per_rt, "ncnn": None}
            for rt, lat in runtimes.items():
                for t, threads in enumerate((1, 2)):
                    value = None if lat is None else lat[t]
                    rounds = 3 if (sha[0] == "a" and rt == "onnxruntime") else 1
                    for r in range(rounds):
                        st.insert_result(
                            {
                                "model_sha256": sha,
                                "candidate_id": f"{rt}/cpu/fp32/threads={threads}",
                                "device_id": "dev1",
                                "round": r,
                                "runtime": rt,
                                "runtime_version": "1.0",
                                "threads": threads,
                                "status": "ok" if value is not None else "load_failed",
                                "error": None
                                if value is not None
                                else "RuntimeError: no kernel for op X",
                                "p50_ms": None if value is None else value * (1.0 + 0.1 * r),
                            }
                        )
        # A row of a model that no manifest knows: dropped by default.
        st.insert_result(
            {
                "model_sha256": "f" * 64,
                "candidate_id": "onnxruntime/cpu/fp32/threads=1",
                "device_id": "dev1",
                "round": 0,
                "runtime": "onnxruntime",
                "threads": 1,
                "status": "ok",
                "p50_ms": 1.0,
            }
        )
    return path


def _zoo(d: Path) -> Path:
    d.mkdir()
    lines = [
        json.dumps(
            {"sha256": sha, "model_id": f"{fam}-s{i}", "family": fam, "seed": i, "params": {"w": i}}
        )
        for i, (sha, fam) in enumerate(LAT)
    ]
    (d / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return d


def test_build_and_figures(tmp_path: Path) -> None:
    meta = build_dataset([_store(tmp_path / "s.sqlite")], [_zoo(tmp_path / "zoo")], tmp_path / "ds")
    assert meta["counts"]["models"] == 3 and meta["counts"]["dropped_untraced_rows"] == 1
    meas, models, meta2 = load_dataset(tmp_path / "ds")
    assert meta2 == meta
    assert set(models["model_id"]) == {"resnet-s0", "resnet-s1", "bert-s2"}
    assert set(meas["family"].astype(str)) == {"resnet", "bert"}
    fig = card_figures(meas)
    fr = fig["fragmentation"]
    # 6 settings (3 models x 2 thread counts): openvino wins the 4 resnet ones, onnxruntime the 2 bert ones.
    assert fr["settings"] == 6
    assert fr["overall"] == {
        "openvino": pytest.approx(4 / 6, abs=1e-4),
        "onnxruntime": pytest.approx(2 / 6, abs=1e-4),
    }
    assert fr["by_family"]["bert"]["onnxruntime"] == 1.0
    assert fr["distinct_winners_per_family"] == {"bert": 1, "resnet": 1}
    loss = fig["single_runtime_loss"]
    # openvino vs oracle: resnet 0 (x4), bert 1.5/1-1=0.5 and 1.0/0.5-1=1.0 -> mean 0.25
    assert loss["openvino"]["mean_loss"] == pytest.approx(0.25)
    assert loss["openvino"]["coverage"] == 1.0
    assert loss["tract"]["coverage"] == pytest.approx(2 / 6, abs=1e-4)
    assert fig["single_best_runtime"]["runtime"] == "openvino"
    # onnxruntime on model a, 3 rounds of 2.0 * (1, 1.1, 1.2) and 1.2 * (...): CV = 0.1 / 1.1
    assert fig["noise"]["series"] == 2
    assert fig["noise"]["median_cv"] == pytest.approx(0.1 / 1.1, rel=1e-6)
    # One series per thread count (threads=1 at 2.0 x ..., threads=2 at 1.2 x ...).
    by_threads = fig["noise"]["by_threads"]
    assert set(by_threads) == {"harness 2.0, threads=1", "harness 2.0, threads=2"}
    assert by_threads["harness 2.0, threads=1"]["series"] == 1
    assert by_threads["harness 2.0, threads=1"]["within_10pct"] == 1.0  # 1, 1.1, 1.2 x median 1.1
    assert fig["status_by_runtime"]["ncnn"] == {"load_failed": 6}
    assert fig["top_errors"]["ncnn"][0]["reason"] == "RuntimeError: no kernel for op X"
    md = render_card(fig, meta)
    assert "| openvino | 100.0 % | 25.0 %" in md
    # One row per family, one bar segment per runtime that wins there (valid SVG).
    root = ET.fromstring(fragmentation_svg(fig))
    svg_ns = "{http://www.w3.org/2000/svg}"
    bars = [g for g in root.iter(f"{svg_ns}g") if g.get("id", "").startswith("bar-")]
    assert len(bars) == 2
    texts = {t.text for t in root.iter(f"{svg_ns}text")}
    assert {"bert (2)", "resnet (4)", "100 %", "onnxruntime", "openvino"} <= texts


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such results store"):
        build_dataset([tmp_path / "none.sqlite"], [_zoo(tmp_path / "zoo")], tmp_path / "o")
    with pytest.raises(DatasetError, match="no zoo manifest"):
        build_dataset([_store(tmp_path / "s.sqlite")], [tmp_path], tmp_path / "o")
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(DatasetError, match="not a graphrec results store"):
        build_dataset([bad], [tmp_path / "zoo"], tmp_path / "o")
    with pytest.raises(DatasetError, match="not a graphrec dataset"):
        load_dataset(tmp_path)


def test_cli_info_and_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    assert (
        main(
            [
                "dataset",
                "build",
                "--store",
                str(_store(tmp_path / "s.sqlite")),
                "--zoo",
                str(_zoo(tmp_path / "zoo")),
                "--out",
                str(ds),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["dataset", "info", "--data", str(ds), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fragmentation"]["settings"] == 6
    assert main(["dataset", "card", "--data", str(ds), "--out", str(tmp_path / "card.md")]) == 0
    assert (tmp_path / "dataset_fragmentation.svg").is_file()
    first = (tmp_path / "card.md").read_text()
    assert first.startswith("## Figures (generated by")
    # Regenerating keeps the hand-written text above the figures, replaces the figures.
    (tmp_path / "card.md").write_text("# Data card\n\nhand-written\n\n" + first + "stale\n")
    assert main(["dataset", "card", "--data", str(ds), "--out", str(tmp_path / "card.md")]) == 0
    assert (tmp_path / "card.md").read_text() == "# Data card\n\nhand-written\n\n" + first
    assert main(["dataset", "info", "--data", str(tmp_path / "empty")]) == 1


def test_dataset_folder_reads_like_its_store(tmp_path: Path) -> None:
    """The recommender trains from a dataset folder as from the store it was built from."""
    from graphrec.dataset.samples import _read_dataset_folder, _read_store

    store = _store(tmp_path / "s.sqlite")
    build_dataset([store], [_zoo(tmp_path / "zoo")], tmp_path / "ds")
    rows, models, devices = _read_dataset_folder(tmp_path / "ds")
    srows, _smodels, sdevices = _read_store(store)
    traced = [r for r in srows if r["model_sha256"] in models]
    assert len(rows) == len(traced) == len(srows) - 1  # the untraced row is dropped

    def key(r: dict[str, object]) -> tuple[str, ...]:
        return (str(r["model_sha256"]), str(r["candidate_id"]), str(r["status"]), str(r["p50_ms"]))

    assert sorted(map(key, rows)) == sorted(map(key, traced))
    assert models["a" * 64]["path"] == "resnet-s0.onnx"
    assert devices == sdevices
    assert _read_store(tmp_path / "ds")[0] == rows


def test_clean_rows_of_the_new_protocol_make_the_label() -> None:
    import pandas as pd

    from graphrec.dataset.build import label_rows

    meas = pd.DataFrame(
        [
            # pair a: two old rows, one clean 2.0 row, one busy 2.0 row
            ("a", "c", "d", "1.0", "ok", 1.0, None),
            ("a", "c", "d", "1.0", "ok", 1.5, None),
            ("a", "c", "d", "2.0", "ok", 1.1, 0),
            ("a", "c", "d", "2.0", "ok", 2.0, 1),
            # pair b: only a busy 2.0 row beside the old one: both count
            ("b", "c", "d", "1.0", "ok", 1.0, None),
            ("b", "c", "d", "2.0", "ok", 1.2, 1),
            # pair c: the 2.0 row failed: the old row still counts
            ("c", "c", "d", "1.0", "ok", 1.0, None),
            ("c", "c", "d", "2.0", "crashed", None, 0),
        ],
        columns=[
            "measurement_key", "candidate_id", "device_id", "harness_version", "status",
            "p50_ms", "busy",
        ],
    )  # fmt: skip
    assert label_rows(meas).tolist() == [False, False, True, False, True, True, True, True]
