"""How well graphrec predicts whether a deployment choice runs a model correctly.

For every (model, candidate) pair measured in a results store, the truth is the harness's
status: ``ok`` (runs, outputs within the precision's tolerance) or a failure
(``convert_failed``, ``load_failed``, ``run_failed``, ``crashed``, ``wrong_output``,
``unsupported``). Rounds of a pair vote; ``timeout`` and ``out_of_memory`` rows are left
out (they say how the machine was, not what the runtime can do). Three predictors:

* **learned**: the recommender's probability to run (``p_deployable >= 0.5``), with no
  rules or probes (``recommend(..., check_support=False)``);
* **rules + probes**: the adapters' own rules and the operator support tables
  (:func:`graphrec.runtimes.support.blockers`); a pair with no blocker is predicted to run;
* **combined**: what ``graphrec recommend`` does: a blocker decides, else the learned
  probability.

With ``--evidence STORE`` (the held-out part of the ``--manifest`` never counts) the probe
failures are reconciled as ``graphrec support
reconcile`` does (a failing signature that ran inside a whole model measured ``ok`` on the
same candidate kind stops blocking), but **leaving the evaluated model's group out**: a
model's own measurements never clear its own blockers. The group is the zoo family (the
name before ``-s``) or, with ``--manifest``, the real model's package.

Figures: for the *failure* class (a predicted failure is right / a real failure is found)
and for the *runs* class, precision and recall, per predictor, overall and per runtime.

Usage::

    python benchmarks/bench_deployability.py --store runs/campaign.sqlite \\
        --models runs/zoo --tables runs/support/tables --name zoo

``remeasure`` (first argument) measures the real models again on some runtimes with the
harness into another store (resumable: stored keys are skipped; smallest model first), with
a short timing phase (these rows are for what runs, not for latency); ``--truth-from``
STORE then lets the evaluation take those runtimes' rows from that store instead::

    python benchmarks/bench_deployability.py remeasure --store runs/deploy/torch.sqlite \\
        --runtimes torch,litert,executorch --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

FAILING = {"convert_failed", "load_failed", "run_failed", "crashed", "wrong_output", "unsupported"}
SKIPPED = {"timeout", "out_of_memory"}


def truth(store_path: Path) -> tuple[dict[tuple[str, str], bool], dict[str, dict[str, Any]]]:
    """``{(model sha, candidate): runs?}`` by vote of rounds, and the stored models."""
    from graphrec.bench.store import ResultStore

    votes: dict[tuple[str, str], Counter[bool]] = defaultdict(Counter)
    with ResultStore(store_path, readonly=True) as store:
        models = store.models()
        for r in store.iter_rows():
            st = str(r["status"])
            if st in SKIPPED or (st != "ok" and st not in FAILING):
                continue
            votes[(str(r["model_sha256"]), str(r["candidate_id"]))][st == "ok"] += 1
    return {k: v[True] >= v[False] for k, v in votes.items()}, models


def _scores(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Precision/recall of both classes from ``(actual_runs, predicted_runs)`` pairs."""
    tp_f = sum(1 for a, p in pairs if not a and not p)
    fp_f = sum(1 for a, p in pairs if a and not p)
    fn_f = sum(1 for a, p in pairs if not a and p)
    tp_r = sum(1 for a, p in pairs if a and p)

    def ratio(x: int, y: int) -> float | None:
        return round(x / y, 4) if y else None

    return {
        "pairs": len(pairs),
        "failures": tp_f + fn_f,
        "fail_precision": ratio(tp_f, tp_f + fp_f),
        "fail_recall": ratio(tp_f, tp_f + fn_f),
        "run_precision": ratio(tp_r, tp_r + fn_f),
        "run_recall": ratio(tp_r, tp_r + fp_f),
        "accuracy": ratio(tp_f + tp_r, len(pairs)),
    }


def remeasure(argv: list[str]) -> int:
    """Measure the real-model set again on ``--runtimes`` into ``--store`` (resumable)."""
    ap = argparse.ArgumentParser(description="re-measure real models on some runtimes")
    ap.add_argument("--store", required=True, type=Path)
    ap.add_argument("--dest", type=Path, default=Path("runs/real/models"))
    ap.add_argument("--runtimes", default="torch,litert,executorch")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--split", default=None)
    ap.add_argument("--cache", type=Path, default=None, help="conversion cache (fresh)")
    args = ap.parse_args(argv)

    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.errors import GraphRecError
    from graphrec.runtimes.inputs import model_spec
    from graphrec.zoo.real import load_manifest

    specs = []
    for m in load_manifest(None).select(split=args.split):
        path = args.dest / m.relpath
        try:
            specs.append(model_spec(path))
        except GraphRecError as exc:
            print(f"cannot describe {m.id}: {exc}", flush=True)
    specs.sort(key=lambda s: Path(s.onnx_path).stat().st_size)
    cfg = MeasureConfig(warmup_runs=1, min_runs=3, max_runs=50, min_time_s=0.0, max_time_s=0.2)
    args.store.parent.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.store.with_suffix(".cache")
    t0 = time.perf_counter()
    with ResultStore(args.store) as store:
        run_campaign(
            specs,
            store=store,
            runtimes=args.runtimes.split(","),
            threads=tuple(int(t) for t in args.threads.split(",")),
            config=cfg,
            cache_dir=cache,
            resume=True,
            on_result=lambda row: print(
                f"{time.perf_counter() - t0:7.0f}s {row.get('model_name')} "
                f"{row['candidate_id']}: {row['status']} {str(row.get('error') or '')[:120]}",
                flush=True,
            ),
        )
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["remeasure"]:
        return remeasure(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True, type=Path)
    ap.add_argument("--models", type=Path, default=None, help="folder to find moved model files")
    ap.add_argument("--tables", type=Path, nargs="*", default=None, help="support table folders")
    ap.add_argument("--artefact", default=None)
    ap.add_argument("--name", default="store")
    ap.add_argument("--limit", type=int, default=0, help="at most this many models (0: all)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    ap.add_argument("--evidence", type=Path, nargs="*", default=None, help="stores to reconcile")
    ap.add_argument("--evidence-models", type=Path, default=None, help="their moved model files")
    ap.add_argument("--manifest", type=Path, default=None, help="real-model manifest (groups)")
    ap.add_argument("--split", default=None, help="with --manifest: only this split's models")
    ap.add_argument(
        "--no-torch-route",
        action="store_true",
        help="leave out the torch-route rules and tables (graphrec before them)",
    )
    ap.add_argument(
        "--threads", default=None, help="only candidates with these thread counts (1,2)"
    )
    ap.add_argument(
        "--truth-from",
        type=Path,
        nargs="*",
        default=None,
        help="stores of re-measured pairs whose statuses replace --store's",
    )
    args = ap.parse_args(argv)
    argv_shown = list(argv)

    import torch

    import graphrec
    from graphrec.errors import GraphRecError, OutOfDistributionWarning

    torch.set_num_threads(1)
    from graphrec.runtimes.inputs import model_spec
    from graphrec.runtimes.support import (
        FAILING as PROBE_FAILING,
    )
    from graphrec.runtimes.support import (
        PACKAGED_DIR,
        TORCH_ROUTE_RUNTIMES,
        _probe_kind,
        blockers,
        load_tables,
        op_signatures,
        route_check,
        tables_for,
        uses_converter,
    )

    labels, models = truth(args.store)
    if args.threads:
        keep = {f"threads={t}" for t in args.threads.split(",")}
        labels = {k: v for k, v in labels.items() if k[1].rsplit("/", 1)[-1] in keep}
    replaced = 0
    for ov in args.truth_from or []:
        # re-measured pairs (the same models, another store) replace the stored truth
        new_labels, _ = truth(ov)
        for k, v in new_labels.items():
            if k in labels:
                replaced += labels[k] != v
                labels[k] = v
    tables = load_tables(args.tables) if args.tables else load_tables([PACKAGED_DIR])
    if args.no_torch_route:
        tables = {rt: ts for rt, ts in tables.items() if rt not in TORCH_ROUTE_RUNTIMES}
    group_of_pkg: dict[str, str] = {}
    split_of: dict[str, str] = {}
    if args.manifest:
        for m in json.loads(args.manifest.read_text())["models"]:
            group_of_pkg[m["sha256"]] = m["package"]
            split_of[m["sha256"]] = m["split"]

    def group(sha: str, name: str) -> str:
        return group_of_pkg.get(sha) or name.split("-s")[0]

    # Evidence: (runtime, version, kind, signature key) -> groups whose models ran ok.
    evidence: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    sig_cache: dict[str, dict[str, Any]] = {}
    if args.evidence:
        from graphrec.bench.store import ResultStore

        for ev in args.evidence:
            with ResultStore(ev, readonly=True) as st:
                ev_models = st.models()
                ok_kinds: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
                for r in st.iter_rows():
                    if r["status"] == "ok":
                        ok_kinds[str(r["model_sha256"])].add(
                            (
                                str(r["runtime"]),
                                str(r["runtime_version"]),
                                _probe_kind(str(r["candidate_id"])),
                            )
                        )
            for sha, kinds in ok_kinds.items():
                if split_of.get(sha) == "heldout":
                    continue  # the held-out real models are never evidence
                info = ev_models.get(sha, {})
                p = Path(str(info.get("path") or ""))
                if not p.is_file() and args.evidence_models is not None:
                    p = args.evidence_models / p.name
                if not p.is_file():
                    continue
                try:
                    sigs = sig_cache.setdefault(sha, op_signatures(p))
                except GraphRecError:
                    continue
                g = group(sha, str(info.get("name") or p.stem))
                keys = {s.key for s in sigs.values()}
                for rt, ver, kind in kinds:
                    for k in keys:
                        evidence[(rt, ver, kind, k)].add(g)
    by_model: dict[str, list[str]] = defaultdict(list)
    for sha, cid in labels:
        by_model[sha].append(cid)
    shas = sorted(by_model, key=lambda s: str(models.get(s, {}).get("name", s)))
    if args.split:
        shas = [s for s in shas if split_of.get(s) == args.split]
    if args.limit:
        shas = shas[: args.limit]
    preds: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    per_rt: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)
    misses: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    skipped = 0
    for sha in shas:
        info = models.get(sha, {})
        path = Path(str(info.get("path") or ""))
        if not path.is_file() and args.models is not None:
            path = args.models / path.name
        if not path.is_file():
            skipped += 1
            continue
        spec_d = info.get("spec") or {}
        shapes = dict(
            zip(spec_d.get("input_names", []), spec_d.get("input_shapes", []), strict=False)
        )
        try:
            spec = model_spec(path, overrides=shapes or None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutOfDistributionWarning)
                learned = graphrec.recommend(
                    path,
                    artefact=args.artefact,
                    precision="all",
                    check_support=False,
                    input_shapes=shapes or None,
                )
            rules = blockers(
                path, by_model[sha], tables={}, spec=spec, torch_route=not args.no_torch_route
            )
            sigs = sig_cache.get(sha) or op_signatures(path, spec=spec)
        except GraphRecError as exc:
            print(f"{path.name}: skipped ({exc})", file=sys.stderr)
            skipped += 1
            continue
        g_self = group(sha, str(info.get("name") or path.stem))
        converted = uses_converter(path)
        # what `recommend --probe` adds: the converter's route checked on the whole model
        route_failed = False
        if converted and not args.no_torch_route:
            route_failed = route_check(path, spec)[0] in PROBE_FAILING
        found: dict[str, str | None] = {}
        raw: dict[str, bool] = {}  # blocked by a probe failure, before any evidence
        for cid in by_model[sha]:
            if rules.get(cid) is not None:
                found[cid] = f"rule: {rules[cid].reason}"  # type: ignore[union-attr]
                raw[cid] = True
                continue
            rt = cid.split("/", 1)[0]
            rt_tables = tables_for(tables, rt, None, converted=converted)
            raw[cid] = any(
                (st0 := t.status(cid, sig.key)) is not None and st0[0] in PROBE_FAILING
                for t in rt_tables
                for sig in sigs.values()
            )
            kind = _probe_kind(cid)
            why = None
            for t in rt_tables:
                for sig in sigs.values():
                    st_ = t.status(cid, sig.key)
                    if st_ is None or st_[0] not in PROBE_FAILING:
                        continue
                    others = evidence.get((rt, t.version, kind, sig.key), set()) - {g_self}
                    if others:
                        continue
                    why = f"{sig.describe()}: {st_[0]}"
                    break
                if why:
                    break
            found[cid] = why
        p_dep = {c.candidate_id: (c.p_deployable, c.note) for c in learned.choices}
        for cid in by_model[sha]:
            actual = labels[(sha, cid)]
            if cid not in p_dep:
                continue
            p, note = p_dep[cid]
            learned_runs = note is None and p >= 0.5
            rules_runs = found.get(cid) is None
            combined_runs = rules_runs and learned_runs
            rt = cid.split("/", 1)[0]
            for name, pred in (
                ("learned", learned_runs),
                ("rules + raw probes", not raw[cid]),
                ("rules + raw probes, then learned", not raw[cid] and learned_runs),
                ("rules + probes", rules_runs),
                ("combined", combined_runs),
                (
                    "combined + route check (--probe)",
                    combined_runs and not (route_failed and rt in TORCH_ROUTE_RUNTIMES),
                ),
            ):
                preds[name].append((actual, pred))
                per_rt[(name, rt)].append((actual, pred))
            if combined_runs != actual and len(misses) < 400:
                misses.append(
                    {
                        "model": path.name,
                        "candidate": cid,
                        "actual_runs": actual,
                        "p_learned": round(p, 3),
                        "blocker": found.get(cid),
                        "route_check_failed": route_failed,
                    }
                )
    wall = time.perf_counter() - t0
    result = {
        "store": str(args.store),
        "name": args.name,
        "models": len(shas) - skipped,
        "skipped_models": skipped,
        "tables": {rt: [t.version for t in ts] for rt, ts in tables.items()},
        "evidence": [str(e) for e in args.evidence or []],
        "truth_from": [str(e) for e in args.truth_from or []],
        "truth_changed_pairs": replaced,
        "wall_s": round(wall, 1),
        "overall": {k: _scores(v) for k, v in preds.items()},
        "per_runtime": {f"{k[0]} | {k[1]}": _scores(v) for k, v in sorted(per_rt.items())},
        "misses": misses,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"deployability_{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [
        f"# Deployability on `{args.store}` ({result['models']} models)",
        "",
        f"Command: `python benchmarks/bench_deployability.py {' '.join(argv_shown)}`",
        "",
    ]
    if args.truth_from:
        lines += [
            f"Truth of the pairs re-measured in {', '.join(f'`{t}`' for t in args.truth_from)} "
            f"taken from there ({replaced} pairs changed status).",
            "",
        ]
    lines += [
        "| predictor | pairs | failures | fail precision | fail recall | runs precision "
        "| runs recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, v in result["overall"].items():
        lines.append(
            f"| {k} | {v['pairs']} | {v['failures']} | {v['fail_precision']} | "
            f"{v['fail_recall']} | {v['run_precision']} | {v['run_recall']} |"
        )
    for pred in ("combined", "combined + route check (--probe)"):
        lines += [
            "",
            f"Per runtime ({pred}):",
            "",
            "| runtime | pairs | failures | fail P | fail R |",
        ]
        lines.append("|---|---:|---:|---:|---:|")
        for key, v in result["per_runtime"].items():
            if key.split(" | ")[0] == pred:
                lines.append(
                    f"| {key.split(' | ')[1]} | {v['pairs']} | {v['failures']} | "
                    f"{v['fail_precision']} | {v['fail_recall']} |"
                )
    text = "\n".join(lines) + "\n"
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"{wall:.0f} s; report: {stem}.md/.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
