"""Generate a folder of zoo models with a manifest, resumably and without duplicates."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec.errors import ZooError
from graphrec.zoo.entry import OPSET, TORCH_FACTORY, ZooEntry, get_family
from graphrec.zoo.families import FAMILIES

#: File (JSON lines) listing every model of a generated folder.
MANIFEST = "manifest.jsonl"
#: File (JSON lines) listing seeds whose graph duplicated an earlier model.
DUPLICATES = "duplicates.jsonl"
#: Seeds per generation seed: family candidate ``k`` of ``--seed S`` has seed ``S * SEED_STRIDE + k``.
SEED_STRIDE = 1_000_000
#: Consecutive duplicate/failed candidates after which a family counts as exhausted.
MAX_MISSES = 40
#: Manifest format version.
MANIFEST_VERSION = 1


@dataclass
class GenerateReport:
    """What one :func:`generate` call did.

    Attributes:
        out_dir: The folder.
        written: Model ids exported in this call.
        reused: Model ids already present (file and manifest row) and kept.
        duplicates: ``(model_id, duplicate_of)`` pairs skipped for a repeated graph hash.
        failed: ``(model_id, reason)`` pairs that could not be built or exported.
        exhausted: Families that ran out of new architectures.
    """

    out_dir: Path
    written: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    exhausted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Models in the folder that this call's selection covers."""
        return len(self.written) + len(self.reused)


def read_manifest(out_dir: str | Path) -> list[dict[str, Any]]:
    """The manifest rows of a generated folder (empty if there is none).

    Raises:
        ZooError: A manifest line is not valid JSON (the message names file and line).
    """
    path = Path(out_dir) / MANIFEST
    return _read_jsonl(path)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if not line.endswith("\n"):
                    break  # a last line cut off by an interruption: ignored, redone later
                raise ZooError(f"{path}:{lineno}: not a JSON line ({exc.msg})") from exc
    return rows


def _drop_partial_tail(path: Path) -> None:
    """Cut a last line left without its newline by an interruption (it is redone)."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _wants_int8(family: str, seed: int, fraction: float) -> bool:
    """Deterministic per-model coin: does this fp32 model also get an int8 variant?"""
    if fraction <= 0:
        return False
    h = zlib.crc32(f"{family}:{seed}:int8".encode()) / 0xFFFFFFFF
    return h < fraction


def manifest_row(entry: ZooEntry, file_name: str, data: bytes) -> dict[str, Any]:
    """The manifest record of an exported entry (identity, hashes, shapes, cost)."""
    import onnx
    import torch

    from graphrec.zoo.hashing import graph_hash

    flops, n_params = entry.cost()
    model = onnx.load_from_string(data)
    row = entry.to_record()
    row.update(
        {
            "file": file_name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "graph_hash": graph_hash(model),
            "num_bytes": len(data),
            "opset": OPSET,
            "inputs": [
                {"name": s.name, "shape": list(s.shape), "dtype": s.dtype}
                for s in entry.input_specs
            ],
            "outputs": list(entry.output_names),
            "torch_flops": flops,
            "num_params": n_params,
            "domain": entry.family_spec.domain,
            "torch_version": torch.__version__,
            "onnx_version": onnx.__version__,
            "manifest_version": MANIFEST_VERSION,
        }
    )
    if entry.variant == "fp32":
        row["torch_source"] = torch_source(entry)
    else:
        import onnxruntime

        row["onnxruntime_version"] = onnxruntime.__version__
    return row


def torch_source(entry: ZooEntry) -> dict[str, Any]:
    """The benchmark harness's torch-source record (``model.torch.json``) of an fp32 entry.

    int8 variants get none: their torch module would be the fp32 one, not what the ONNX
    file computes.
    """
    kwargs = {"family": entry.family, "seed": entry.seed, "tiny": entry.tiny}
    return {"factory": TORCH_FACTORY, "kwargs": {**kwargs, "params": dict(entry.params)}}


def _write_sidecar(out: Path, row: dict[str, Any]) -> None:
    """Write ``<model>.torch.json`` next to an fp32 model (the harness reads it)."""
    source = row.get("torch_source")
    if source is None:
        return
    side = out / (Path(row["file"]).stem + ".torch.json")
    text = json.dumps(source, sort_keys=True, indent=1) + "\n"
    if not side.is_file() or side.read_text(encoding="utf-8") != text:
        tmp = side.with_name(side.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(side)


def generate(
    out_dir: str | Path,
    *,
    families: Sequence[str] | None = None,
    count: int = 22,
    seed: int = 0,
    int8_fraction: float = 0.0,
    tiny: bool = False,
    check: bool = True,
    max_misses: int = MAX_MISSES,
    progress: Callable[[str, str], None] | None = None,
) -> GenerateReport:
    """Generate ``count`` distinct models across ``families`` into ``out_dir``.

    Families take turns (round robin, in the order given); each draws candidate seeds
    ``seed * SEED_STRIDE + k`` for ``k = 0, 1, ...``. A candidate whose graph hash equals
    one already in the folder is recorded in ``duplicates.jsonl`` and skipped. With
    ``int8_fraction > 0`` a deterministic share of fp32 models also gets the family's int8
    variant (static QDQ for CNNs, dynamic for transformers/RNNs), counted in ``count``.

    The call is resumable: models already in the manifest (with their file present and
    matching its sha256) are reused, so an interrupted run continued with the same
    arguments ends with exactly the folder an uninterrupted run would have produced.

    Args:
        out_dir: Output folder (created).
        families: Family names (default: all of :data:`graphrec.zoo.FAMILIES`).
        count: Number of models wanted in total.
        seed: Generation seed (selects the candidate seed range).
        int8_fraction: Share of fp32 models that also get an int8 variant, in ``[0, 1]``.
        tiny: Draw the cheapest option of every parameter (smoke tests).
        check: Run ``onnx.checker.check_model`` on every export.
        max_misses: Consecutive duplicate or failed candidates after which a family
            counts as exhausted.
        progress: Called as ``progress(model_id, status)`` after each candidate.

    Returns:
        A :class:`GenerateReport`.

    Raises:
        ZooUnknownFamilyError: A family name is unknown.
        ZooError: Bad arguments or an unreadable manifest.
    """
    import onnx

    names = list(families) if families else list(FAMILIES)
    for name in names:
        get_family(name)
    if count < 0 or seed < 0:
        raise ZooError(f"count and seed must be non-negative (got count={count}, seed={seed})")
    if not 0.0 <= int8_fraction <= 1.0:
        raise ZooError(f"int8_fraction must be in [0, 1], got {int8_fraction}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = GenerateReport(out)
    manifest_path = out / MANIFEST
    dup_path = out / DUPLICATES
    _drop_partial_tail(manifest_path)
    _drop_partial_tail(dup_path)

    existing = {row["model_id"]: row for row in read_manifest(out)}
    seen: dict[str, str] = {row["graph_hash"]: row["model_id"] for row in existing.values()}
    # same family, variant and parameters => same graph: skip those without exporting
    seen_params = {_param_key(row): row["model_id"] for row in existing.values()}
    known_dups = {row["model_id"]: row for row in _read_jsonl(dup_path)}

    def note(model_id: str, status: str) -> None:
        if progress is not None:
            progress(model_id, status)

    def produce(entry: ZooEntry) -> bool:
        """Make sure ``entry`` is in the folder; True if it counts as a (new or kept) model."""
        mid = entry.model_id
        file_name = f"{mid}.onnx"
        row = existing.get(mid)
        if row is not None and _file_matches(out / row["file"], row["sha256"]):
            _write_sidecar(out, row)
            report.reused.append(mid)
            note(mid, "reused")
            return True
        if mid in known_dups:
            report.duplicates.append((mid, str(known_dups[mid]["duplicate_of"])))
            note(mid, "duplicate")
            return False
        same = seen_params.get(_param_key(entry.to_record()))
        if same is not None and same != mid:
            _append_jsonl(dup_path, {"model_id": mid, "graph_hash": None, "duplicate_of": same})
            report.duplicates.append((mid, same))
            note(mid, "duplicate")
            return False
        try:
            data = entry.onnx_bytes()
            if check:
                onnx.checker.check_model(onnx.load_from_string(data))
            new_row = manifest_row(entry, file_name, data)
        except (ZooError, onnx.checker.ValidationError) as exc:
            report.failed.append((mid, str(exc)))
            note(mid, "failed")
            return False
        h = new_row["graph_hash"]
        if h in seen and seen[h] != mid:
            dup = {"model_id": mid, "graph_hash": h, "duplicate_of": seen[h]}
            _append_jsonl(dup_path, dup)
            report.duplicates.append((mid, seen[h]))
            note(mid, "duplicate")
            return False
        tmp = out / (file_name + ".part")
        tmp.write_bytes(data)
        tmp.replace(out / file_name)
        _write_sidecar(out, new_row)
        _append_jsonl(manifest_path, new_row)
        existing[mid] = new_row
        seen[h] = mid
        seen_params[_param_key(new_row)] = mid
        report.written.append(mid)
        note(mid, "written")
        return True

    cursor = dict.fromkeys(names, 0)
    misses = dict.fromkeys(names, 0)
    pending: dict[str, list[ZooEntry]] = {n: [] for n in names}
    active = list(names)
    made = 0
    while made < count and active:
        for name in list(active):
            if made >= count:
                break
            if _next_model(
                name, seed, cursor, misses, pending, int8_fraction, tiny, produce, max_misses
            ):
                made += 1
            elif misses[name] >= max_misses:
                active.remove(name)
                report.exhausted.append(name)
    return report


def _next_model(
    name: str,
    seed: int,
    cursor: dict[str, int],
    misses: dict[str, int],
    pending: dict[str, list[ZooEntry]],
    int8_fraction: float,
    tiny: bool,
    produce: Callable[[ZooEntry], bool],
    max_misses: int,
) -> bool:
    """Advance family ``name`` until it yields one model or misses ``max_misses`` times."""
    while misses[name] < max_misses:
        if pending[name]:
            entry = pending[name].pop(0)
        else:
            s = seed * SEED_STRIDE + cursor[name]
            cursor[name] += 1
            try:
                entry = ZooEntry.sample(name, s, tiny=tiny)
            except ZooError:
                misses[name] += 1
                continue
            if _wants_int8(name, s, int8_fraction):
                variant = "int8_" + FAMILIES[name].int8
                pending[name].append(ZooEntry(name, s, entry.params, variant, tiny))
        if produce(entry):
            misses[name] = 0
            return True
        misses[name] += 1
        if entry.variant == "fp32":
            pending[name].clear()  # no int8 variant of a duplicate or failed model
    return False


def _param_key(row: dict[str, Any]) -> str:
    return json.dumps([row["family"], row["variant"], row["params"]], sort_keys=True)


def _file_matches(path: Path, sha256: str) -> bool:
    if not path.is_file():
        return False
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == sha256


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of regenerating one manifest row."""

    model_id: str
    ok: bool
    detail: str


def verify(
    out_dir: str | Path, *, model_ids: Iterable[str] | None = None, sample: int = 0
) -> list[VerifyResult]:
    """Regenerate manifest rows from their seeds and compare sha256 with the manifest.

    Args:
        out_dir: A folder written by :func:`generate`.
        model_ids: Rows to check (default: all, or ``sample`` of them).
        sample: If > 0 and ``model_ids`` is None, check this many rows spread evenly.

    Returns:
        One :class:`VerifyResult` per checked row.
    """
    rows = read_manifest(out_dir)
    if model_ids is not None:
        wanted = set(model_ids)
        rows = [r for r in rows if r["model_id"] in wanted]
    elif sample > 0 and len(rows) > sample:
        step = len(rows) / sample
        rows = [rows[int(i * step)] for i in range(sample)]
    results = []
    for row in rows:
        try:
            entry = ZooEntry.from_record(row)
            digest = hashlib.sha256(entry.onnx_bytes()).hexdigest()
        except ZooError as exc:
            results.append(VerifyResult(row["model_id"], False, str(exc)))
            continue
        ok = digest == row["sha256"]
        detail = "identical" if ok else f"sha256 {digest[:12]} != manifest {row['sha256'][:12]}"
        results.append(VerifyResult(row["model_id"], ok, detail))
    return results
