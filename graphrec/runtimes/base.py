"""The adapter interface every inference runtime implements, and deployment candidates.

A *deployment candidate* is one way to run a model: a runtime (library), a backend or
execution provider, a precision, a thread count and runtime-specific options. Its
:attr:`Candidate.candidate_id` is a stable, readable string such as
``onnxruntime/cpu/fp32/opt=all/threads=2`` used in store rows, reports and the
recommender's output, so that predictions and measurements join.

Example:
    >>> from graphrec.runtimes.base import Candidate
    >>> c = Candidate.parse("onnxruntime/cpu/fp32/opt=all/threads=2")
    >>> c.runtime, c.threads, c.option("opt")
    ('onnxruntime', 2, 'all')
    >>> Candidate.parse(c.candidate_id) == c
    True
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import importlib
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from graphrec.errors import CandidateSpecError, GraphRecError

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = [
    "PRECISIONS",
    "Candidate",
    "ModelSpec",
    "PreparedModel",
    "RuntimeAdapter",
    "TorchSource",
    "UnsupportedModelError",
    "input_key",
    "measurement_key",
    "prepare_cached",
]

#: Precisions a candidate may name.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")

_TOKEN = re.compile(r"^[A-Za-z0-9_.+\-]+$")


@functools.cache
def dist_version(distribution: str) -> str:
    """The installed version of a distribution, read once per process.

    ``importlib.metadata.version`` parses the distribution's METADATA file on every call
    (~5 ms each, several per ``recommend`` call before this cache).

    Raises:
        importlib.metadata.PackageNotFoundError: Not installed.
    """
    from importlib.metadata import version

    return version(distribution)


class UnsupportedModelError(GraphRecError):
    """A runtime cannot take this model at all (e.g. it needs a torch source)."""


def _check_token(what: str, value: str) -> None:
    if not _TOKEN.match(value):
        raise CandidateSpecError(
            f"candidate {what} {value!r} must be non-empty and use only letters, digits, '_.+-'"
        )


@dataclass(frozen=True)
class Candidate:
    """One deployment choice: runtime, backend, precision, threads and options.

    Attributes:
        runtime: Adapter name, e.g. ``"onnxruntime"``.
        backend: Backend / execution provider, e.g. ``"cpu"``, ``"cuda"``, ``"xnnpack"``.
        precision: One of :data:`PRECISIONS`.
        threads: Intra-op threads (0 = the runtime's default).
        options: Sorted ``(key, value)`` pairs of runtime-specific options.
    """

    runtime: str
    backend: str
    precision: str
    threads: int
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check_token("runtime", self.runtime)
        _check_token("backend", self.backend)
        if self.precision not in PRECISIONS:
            raise CandidateSpecError(
                f"candidate precision {self.precision!r} is not one of {list(PRECISIONS)}"
            )
        if not isinstance(self.threads, int) or self.threads < 0:
            raise CandidateSpecError(f"candidate threads must be an integer >= 0: {self.threads!r}")
        opts = tuple(sorted((str(k), str(v)) for k, v in self.options))
        keys = [k for k, _ in opts]
        if len(set(keys)) != len(keys):
            raise CandidateSpecError(f"candidate options repeat a key: {keys}")
        for k, v in opts:
            _check_token("option key", k)
            _check_token("option value", v)
            if k == "threads":
                raise CandidateSpecError("'threads' is a field, not an option")
        object.__setattr__(self, "options", opts)

    @classmethod
    def make(
        cls, runtime: str, backend: str, precision: str, threads: int, **options: object
    ) -> Candidate:
        """Build a candidate from keyword options (values are turned into strings)."""
        return cls(
            runtime, backend, precision, threads, tuple((k, str(v)) for k, v in options.items())
        )

    @property
    def candidate_id(self) -> str:
        """``runtime/backend/precision[/key=value...]/threads=N``, options sorted by key."""
        parts = [self.runtime, self.backend, self.precision]
        parts += [f"{k}={v}" for k, v in self.options]
        parts.append(f"threads={self.threads}")
        return "/".join(parts)

    @property
    def prepare_key(self) -> str:
        """The part of the id a conversion depends on (the id without the thread count)."""
        return "/".join(
            [self.runtime, self.backend, self.precision, *(f"{k}={v}" for k, v in self.options)]
        )

    def option(self, key: str, default: str | None = None) -> str | None:
        """Return option ``key`` or ``default``."""
        return dict(self.options).get(key, default)

    def matches(self, pattern: str) -> bool:
        """Whether the id matches a shell-style pattern (``onnxruntime/*``, ``*threads=1``).

        A pattern without ``/`` or wildcards matches a runtime name exactly.
        """
        if "/" not in pattern and not any(ch in pattern for ch in "*?["):
            return self.runtime == pattern
        return fnmatch.fnmatchcase(self.candidate_id, pattern)

    @classmethod
    def parse(cls, candidate_id: str) -> Candidate:
        """Parse a :attr:`candidate_id` back into a candidate.

        Raises:
            CandidateSpecError: The string is not a well-formed candidate id.
        """
        parts = candidate_id.strip().split("/")
        if len(parts) < 4 or not parts[-1].startswith("threads="):
            raise CandidateSpecError(
                f"bad candidate id {candidate_id!r}: expected "
                "'runtime/backend/precision[/key=value...]/threads=N'"
            )
        try:
            threads = int(parts[-1].split("=", 1)[1])
        except ValueError:
            raise CandidateSpecError(f"bad thread count in candidate id {candidate_id!r}") from None
        options = []
        for token in parts[3:-1]:
            if "=" not in token:
                raise CandidateSpecError(f"bad option {token!r} in candidate id {candidate_id!r}")
            k, v = token.split("=", 1)
            options.append((k, v))
        return cls(parts[0], parts[1], parts[2], threads, tuple(options))

    def __str__(self) -> str:
        return self.candidate_id


@dataclass
class TorchSource:
    """Where to get the torch module an ONNX file was exported from.

    ``factory`` is ``"package.module:callable"`` or ``"/path/to/file.py:callable"``; the
    callable is called with ``kwargs`` and returns a ``torch.nn.Module`` whose positional
    inputs are the ONNX model's inputs in order. It must be JSON-able so a worker process
    can rebuild it.
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        """Import the factory and build the module in eval mode."""
        mod_name, sep, attr = self.factory.rpartition(":")
        if not sep or not mod_name or not attr:
            raise UnsupportedModelError(
                f"torch source factory {self.factory!r} must look like 'pkg.module:callable'"
            )
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            name = "_graphrec_torch_source_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise UnsupportedModelError(f"{path}: cannot import torch source file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
        net = getattr(module, attr)(**self.kwargs)
        return net.eval()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"factory": self.factory, "kwargs": dict(self.kwargs)}


@dataclass
class ModelSpec:
    """A model to benchmark: its ONNX file, identity, concrete inputs and torch source.

    Attributes:
        onnx_path: The ONNX file.
        sha256: Hex digest of the ONNX file's bytes (the model's identity in the store).
        name: Display name (file stem by default).
        input_names: ONNX input names, in graph order.
        input_shapes: Concrete input shapes (dynamic dims already resolved).
        input_dtypes: NumPy dtype names of the inputs.
        output_names: ONNX output names, in graph order.
        torch_source: The torch module it came from, when known.
        input_values: Inputs filled with one constant instead of random data, by name
            (a sample rate, an NMS threshold: inputs whose values the model checks).
    """

    onnx_path: Path
    sha256: str
    name: str
    input_names: list[str]
    input_shapes: list[list[int]]
    input_dtypes: list[str]
    output_names: list[str]
    torch_source: TorchSource | None = None
    input_values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for worker requests)."""
        return {
            "onnx_path": str(self.onnx_path),
            "sha256": self.sha256,
            "name": self.name,
            "input_names": list(self.input_names),
            "input_shapes": [list(s) for s in self.input_shapes],
            "input_dtypes": list(self.input_dtypes),
            "output_names": list(self.output_names),
            "torch_source": None if self.torch_source is None else self.torch_source.to_dict(),
            "input_values": dict(self.input_values),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        ts = d.get("torch_source")
        return cls(
            onnx_path=Path(d["onnx_path"]),
            sha256=d["sha256"],
            name=d["name"],
            input_names=list(d["input_names"]),
            input_shapes=[list(s) for s in d["input_shapes"]],
            input_dtypes=list(d["input_dtypes"]),
            output_names=list(d["output_names"]),
            torch_source=None if ts is None else TorchSource(ts["factory"], dict(ts["kwargs"])),
            input_values={str(k): float(v) for k, v in (d.get("input_values") or {}).items()},
        )


@dataclass
class PreparedModel:
    """A converted artefact ready for :meth:`RuntimeAdapter.load`.

    Attributes:
        path: File or folder the adapter's ``prepare`` produced.
        convert_s: Seconds the conversion took when it ran (also when read from cache).
        cached: Whether it came from the cache instead of being converted now.
    """

    path: Path
    convert_s: float
    cached: bool


class RuntimeAdapter(ABC):
    """One inference runtime behind a small interface.

    Subclasses set :attr:`name`, :attr:`install_hint` and :attr:`modules` (import names
    whose presence means the runtime is installed) and implement the abstract methods.
    Runtime libraries are imported inside methods only, never at module import.
    """

    #: Adapter name, first component of candidate ids.
    name: ClassVar[str] = ""
    #: How to install the runtime, shown when it is missing.
    install_hint: ClassVar[str] = ""
    #: Top-level modules the runtime needs.
    modules: ClassVar[tuple[str, ...]] = ()
    #: Whether conversion starts from the torch module instead of the ONNX file.
    needs_torch_source: ClassVar[bool] = False

    @classmethod
    def is_available(cls) -> bool:
        """Whether the runtime's modules can be imported here (cheap: nothing is imported)."""
        try:
            return all(importlib.util.find_spec(m) is not None for m in cls.modules)
        except (ImportError, ValueError):
            return False

    @abstractmethod
    def version(self) -> str:
        """The runtime library's version string."""

    @abstractmethod
    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        """Deployment candidates this runtime offers on ``device`` for the thread counts."""

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        """Return why ``candidate`` cannot take ``model`` at all, or ``None`` if it may try."""
        if self.needs_torch_source and model.torch_source is None:
            return "needs a torch source (bare ONNX file)"
        return None

    @abstractmethod
    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        """Convert the model for ``candidate`` into files under ``workdir``; return the artefact.

        Only called through :func:`prepare_cached`, which times it and caches the result
        by :func:`measurement_key` (model hash, inputs, runtime version, prepare key).
        """

    @abstractmethod
    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        """Load the artefact into a ready-to-run session (timed as part of cold start)."""

    @abstractmethod
    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; inputs and outputs follow the ONNX graph's order."""


def _input_signature(model: ModelSpec | Mapping[str, Any]) -> dict[str, Any]:
    """What the inputs of a measurement are: file hash, names, shapes, dtypes, fixed values."""
    spec = model.to_dict() if isinstance(model, ModelSpec) else dict(model)
    values = {str(k): float(v) for k, v in (spec.get("input_values") or {}).items()}
    return {
        "sha256": str(spec.get("sha256") or ""),
        "inputs": [
            [str(n), [int(d) for d in shape], str(dt), values.get(str(n))]
            for n, shape, dt in zip(
                spec.get("input_names") or [],
                spec.get("input_shapes") or [],
                spec.get("input_dtypes") or [],
                strict=False,
            )
        ],
    }


def _digest(payload: object) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def input_key(model: ModelSpec | Mapping[str, Any]) -> str:
    """Hash of a model file *and* the concrete inputs it is run with.

    Two batch sizes or input shapes of one ONNX file are two input keys. ``model`` is a
    :class:`ModelSpec` or its :meth:`ModelSpec.to_dict` form (as stored in a results
    store's ``models`` table).
    """
    return _digest(_input_signature(model))


def measurement_key(
    model: ModelSpec | Mapping[str, Any],
    candidate: Candidate | str,
    runtime_version: str | None,
) -> str:
    """The identity of one measurement's artefact: what a conversion and a result depend on.

    A hash (32 hex digits) of the model file's sha256, the input names, shapes, dtypes and
    fixed values (:func:`input_key`), the runtime's name and version, and the prepare
    options (:attr:`Candidate.prepare_key`: backend, precision, runtime options; not the
    thread count, which a conversion does not depend on). The converted-model cache
    (:func:`prepare_cached`) and the results store's unique key (with the full candidate
    id, device and round) both use it, so a second shape, batch size or runtime version is
    a new conversion and a new row, never a stale reuse or a skipped resume.

    ``candidate`` may be a candidate id string (it is parsed; an unparsable id is used
    verbatim, so keys of old store rows can always be computed).
    """
    if isinstance(candidate, Candidate):
        runtime, prepare = candidate.runtime, candidate.prepare_key
    else:
        try:
            c = Candidate.parse(candidate)
            runtime, prepare = c.runtime, c.prepare_key
        except CandidateSpecError:
            runtime, prepare = candidate.split("/", 1)[0], candidate
    return _digest(
        {
            "model": _input_signature(model),
            "runtime": runtime,
            "runtime_version": runtime_version or "",
            "prepare": prepare,
        }
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)


def prepare_cached(
    adapter: RuntimeAdapter,
    model: ModelSpec,
    candidate: Candidate,
    cache_root: Path,
    *,
    runtime_version: str | None = None,
) -> PreparedModel:
    """Run ``adapter.prepare`` once per :func:`measurement_key` and cache the artefact.

    The cache folder is ``<cache_root>/<sha256[:16]>/<prepare_key>-<measurement_key[:16]>``:
    a second input shape, batch size or runtime version of the same file is converted
    again (OpenVINO and pnnx bake the shapes into the converted file).
    ``runtime_version`` defaults to ``adapter.version()``.

    The conversion runs in a temporary folder that is renamed into place only when it
    succeeded, so an interrupted or failed conversion never leaves a half artefact.
    """
    version = adapter.version() if runtime_version is None else runtime_version
    key = measurement_key(model, candidate, version)
    final = Path(cache_root) / model.sha256[:16] / f"{_slug(candidate.prepare_key)}-{key[:16]}"
    meta_path = final / "prepared.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return PreparedModel(final / meta["artifact"], float(meta["convert_s"]), cached=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        t0 = time.perf_counter()
        artifact = adapter.prepare(model, candidate, tmp)
        convert_s = time.perf_counter() - t0
        rel = Path(artifact).resolve().relative_to(tmp.resolve())
        (tmp / "prepared.json").write_text(
            json.dumps(
                {
                    "artifact": str(rel),
                    "convert_s": convert_s,
                    "candidate": candidate.prepare_key,
                    "measurement_key": key,
                    "runtime_version": version,
                    "input_shapes": model.input_shapes,
                    "input_dtypes": model.input_dtypes,
                }
            )
        )
        try:
            tmp.rename(final)
        except OSError:  # another process won the race: use its artefact
            shutil.rmtree(tmp, ignore_errors=True)
            meta = json.loads(meta_path.read_text())
            return PreparedModel(final / meta["artifact"], float(meta["convert_s"]), cached=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreparedModel(final / rel, convert_s, cached=False)
