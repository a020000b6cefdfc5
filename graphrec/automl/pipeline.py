"""The end-to-end ``graphrec automl`` run: augmentation search, architecture search,
final training, ONNX export, recommendation and measured verification.

Each step writes its result into ``OUT/state.json`` as soon as it ends; a run started
again on the same folder skips the steps already done (an interrupted run resumes at
the step it was in). The folder ends with ``model.onnx``, ``model.pt`` (the trained
weights), ``card.json`` / ``card.md`` (the model card) and ``summary.json``.

The budget is split 15 / 60 / 25 % between augmentation search, architecture search and
final training; epochs are chosen from the measured CPU cost of a few steps of each
network, so a budget is a CPU-time budget (one torch thread).
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphrec.automl.data import TASKS, AutoMLError

__all__ = ["run_pipeline"]

_STEPS = ("augment", "latency_table", "search", "train", "export", "deploy")
_REFERENCE_OP = "conv_3x3"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)


def _step_cost_s(model: Any, task: Any, batch_size: int, steps: int = 2) -> float:
    """CPU seconds of one forward + backward step of ``model`` on a training batch."""
    import torch

    from graphrec.automl.train import cpu_seconds

    xb = torch.from_numpy(task.x_train[:batch_size])
    yb = torch.from_numpy(task.y_train[:batch_size])
    model.train()
    t0 = cpu_seconds()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
    return (cpu_seconds() - t0) / steps


def run_pipeline(
    data: str,
    out_dir: str | Path,
    *,
    budget_min: float = 10.0,
    target_device: Any = "auto",
    latency_target_ms: float | None = None,
    seed: int = 0,
    depth: int = 5,
    channels: int = 8,
    subsample: float | None = None,
    measure: bool = True,
    artefact: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Generate, train, export and deploy a model for ``data``.

    Args:
        data: A task name (:data:`~graphrec.automl.data.TASKS`).
        out_dir: Result folder (resumed when it holds a ``state.json`` of the same run).
        budget_min: CPU-minute budget of searches plus final training.
        target_device: ``"auto"`` (this machine), a device profile path, or a profile.
        latency_target_ms: Add the latency term to the architecture search with this
            target (predicted latency of the recommended deployment).
        seed: Seed.
        depth: Cells of the final network.
        channels: Channels of its first cells.
        subsample: Keep only this fraction of each split (smoke runs).
        measure: Measure the recommended deployment with graphrec's harness (only
            possible when the target device is this machine).
        artefact: Recommender artefact folder (default: graphrec's).
        progress: Called with a line at each step and epoch.

    Returns:
        The summary (also written to ``summary.json``): ``test_accuracy``,
        ``search_minutes``, ``onnx_path``, ``recommended_runtime``,
        ``predicted_latency_ms``, ``measured_latency_ms`` and more.

    Raises:
        AutoMLError: Unknown task, bad budget, or a folder holding another run.
    """
    import torch

    from graphrec.automl import augment as aug
    from graphrec.automl.data import load_task
    from graphrec.automl.latency import build_latency_table, deploy, export_onnx
    from graphrec.automl.search import StageConfig, default_stages, staged_search
    from graphrec.automl.space import LIGHT_OPS, Genotype, build_network, build_supernet
    from graphrec.automl.train import cpu_seconds, train_model

    if data not in TASKS:
        raise AutoMLError(f"unknown task {data!r}; valid: {', '.join(TASKS)}")
    if not budget_min > 0:
        raise AutoMLError(f"--budget-min must be positive, got {budget_min}")
    if latency_target_ms is not None and not latency_target_ms > 0:
        raise AutoMLError(f"the latency target must be positive, got {latency_target_ms}")
    say = progress or (lambda _s: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    config = {
        "data": data,
        "budget_min": budget_min,
        "target_device": str(target_device),
        "latency_target_ms": latency_target_ms,
        "seed": seed,
        "depth": depth,
        "channels": channels,
        "subsample": subsample,
    }
    state_path = out / "state.json"
    state: dict[str, Any] = {"config": config, "steps": {}}
    if state_path.is_file():
        try:
            old = json.loads(state_path.read_text())
        except json.JSONDecodeError as exc:
            raise AutoMLError(
                f"{state_path}: not valid JSON ({exc}); remove it to start over"
            ) from exc
        if old.get("config") != config:
            raise AutoMLError(
                f"{out}: holds a run with other settings ({old.get('config')}); "
                "use another folder or the same settings to resume"
            )
        state = old
        done = [s for s in _STEPS if s in state["steps"]]
        if done:
            say(f"resuming: {', '.join(done)} already done")
    steps: dict[str, Any] = state["steps"]

    def save(name: str, value: Any) -> None:
        steps[name] = value
        _write_json(state_path, state)

    torch.manual_seed(seed)
    task = load_task(data)
    if subsample is not None:
        task = task.subsample(subsample, seed)
    budget_s = budget_min * 60.0
    batch = 64
    n_train_steps = math.ceil(len(task.y_train) / batch)

    # 1. augmentation search
    if "augment" not in steps:
        say("augmentation search (differentiable, sigmoid-gated)")
        probe = aug.small_cnn(task.input_shape, task.n_classes)
        per_epoch = 4.0 * _step_cost_s(probe, task, batch) * n_train_steps  # lookahead ~4x
        epochs = max(1, min(30, int(0.15 * budget_s / max(per_epoch, 1e-6))))
        pol = aug.differentiable_search(task, epochs=epochs, seed=seed, progress=say)
        save("augment", pol.to_dict())
    policy = aug.Policy.from_dict(steps["augment"])

    # 2. latency table (only with a latency target)
    table = None
    ref = Genotype(
        normal=[(_REFERENCE_OP, i) for j in range(3) for i in (0, 1)],
        reduce=[(_REFERENCE_OP, i) for j in range(3) for i in (0, 1)],
    )
    if latency_target_ms is not None:
        from graphrec.automl.latency import LatencyTable

        if "latency_table" not in steps:
            say("latency table from graphrec.recommend")
            t0 = cpu_seconds()
            table = build_latency_table(
                task.input_shape,
                task.n_classes,
                LIGHT_OPS,
                depth=depth,
                c=channels,
                device=target_device,
                reference=ref,
                cache=out / "latency_cache.json",
                artefact=artefact,
            )
            d = table.to_dict()
            d["cpu_s"] = cpu_seconds() - t0
            save("latency_table", d)
        d = dict(steps["latency_table"])
        d.pop("cpu_s", None)
        table = LatencyTable.from_dict(d)

    # 3. staged architecture search
    if "search" not in steps:
        say("architecture search (4 stages)")
        cost = 0.0
        for st in default_stages((1, 1, 1, 1)):
            net = build_supernet(
                task.input_shape,
                task.n_classes,
                LIGHT_OPS[: st.n_ops],
                depth=st.depth,
                c=channels,
            )
            cost += 2.0 * _step_cost_s(net, task, batch, steps=1) * n_train_steps
        per_stage = max(1, min(20, int(0.6 * budget_s / max(cost, 1e-6))))
        stages: list[StageConfig] = default_stages((per_stage,) * 4)
        res = staged_search(
            task,
            seed=seed,
            stages=stages,
            c=channels,
            latency_fn=table,
            latency_target_ms=latency_target_ms,
            progress=say,
        )
        d = res.to_dict()
        d["epochs_per_stage"] = per_stage
        if table is not None:
            d["table_latency_ms"] = table.genotype_ms(res.genotype)
        save("search", d)
    geno = Genotype.from_dict(steps["search"]["genotype"])

    # 4. final training (training + validation splits, with the learned policy)
    model = build_network(geno, task.input_shape, task.n_classes, depth=depth, c=channels)
    weights = out / "model.pt"
    if "train" not in steps:
        say("final training")
        per_epoch = 1.3 * _step_cost_s(model, task, batch) * n_train_steps
        epochs = max(1, min(100, int(0.25 * budget_s / max(per_epoch, 1e-6))))
        torch.manual_seed(seed)
        model = build_network(geno, task.input_shape, task.n_classes, depth=depth, c=channels)
        r = train_model(
            model, task, epochs=epochs, seed=seed, augment=policy, use_val=True, progress=say
        )
        torch.save(model.state_dict(), weights)
        save("train", r)
    else:
        model.load_state_dict(torch.load(weights, weights_only=True))

    # 5. ONNX export
    onnx_path = out / "model.onnx"
    if "export" not in steps or not onnx_path.is_file():
        say("ONNX export")
        export_onnx(model, task.input_shape, onnx_path)
        save("export", {"onnx_path": str(onnx_path), "bytes": onnx_path.stat().st_size})

    # 6. recommend the deployment and measure it
    if "deploy" not in steps:
        say("graphrec recommend + measured verification")
        save("deploy", deploy(onnx_path, target_device, measure=measure, artefact=artefact))
    dep = steps["deploy"]

    search_s = float(steps["augment"]["meta"]["cpu_s"]) + float(steps["search"]["cpu_s"])
    summary = {
        "data": data,
        "test_accuracy": steps["train"]["test_accuracy"],
        "search_minutes": search_s / 60.0,
        "train_minutes": float(steps["train"]["cpu_s"]) / 60.0,
        "onnx_path": str(onnx_path),
        "recommended_runtime": dep["recommended_runtime"],
        "candidate_id": dep["candidate_id"],
        "predicted_latency_ms": dep["predicted_latency_ms"],
        "measured_latency_ms": dep["measured_latency_ms"],
        "measured_status": dep["measured_status"],
        "latency_target_ms": latency_target_ms,
        "meets_latency_target": (
            None
            if latency_target_ms is None or dep["measured_latency_ms"] is None
            else bool(dep["measured_latency_ms"] <= latency_target_ms)
        ),
        "skip_connections": Genotype.from_dict(steps["search"]["genotype"]).skip_count(),
        "genotype": steps["search"]["genotype"],
        "augmentation_policy": {
            n: {"p": p, "m": m}
            for n, p, m in zip(policy.names, policy.probs or [], policy.magnitudes, strict=False)
        },
        "output_dir": str(out),
    }
    _write_json(out / "summary.json", summary)
    _write_card(out, summary, steps, config)
    say(f"done: test accuracy {summary['test_accuracy']:.3f}")
    return summary


def _write_card(out: Path, summary: dict[str, Any], steps: dict[str, Any], config: Any) -> None:
    import torch

    from graphrec.automl.data import __doc__ as splits_doc

    card = {
        "model": "model.onnx",
        "task": config["data"],
        "splits": "see graphrec.automl.data (fixed split seed 0); final training on "
        "training + validation splits, accuracy on the test split",
        "config": config,
        "test_accuracy": summary["test_accuracy"],
        "genotype": summary["genotype"],
        "augmentation_policy": summary["augmentation_policy"],
        "search_cpu_minutes": summary["search_minutes"],
        "deployment": steps["deploy"],
        "made_with": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    _write_json(out / "card.json", card)
    meas = summary["measured_latency_ms"]
    lines = [
        f"# Model card: automl {config['data']} (seed {config['seed']})",
        "",
        f"* Test accuracy: {summary['test_accuracy']:.4f}",
        f"* Search: {summary['search_minutes']:.2f} CPU-minutes (one thread); final "
        f"training {summary['train_minutes']:.2f} CPU-minutes",
        f"* Normal cell: {summary['genotype']['normal']} "
        f"({summary['skip_connections']} skip connections)",
        f"* Reduction cell: {summary['genotype']['reduce']}",
        f"* Recommended deployment: {summary['candidate_id']}",
        f"* Latency: predicted {summary['predicted_latency_ms']:.4f} ms, measured "
        + (f"{meas:.4f} ms" if meas is not None else f"- ({summary['measured_status']})"),
        "",
        "Splits:" + (splits_doc or "").split("Splits", 1)[-1].split("\n\n", 1)[-1],
    ]
    (out / "card.md").write_text("\n".join(lines))
