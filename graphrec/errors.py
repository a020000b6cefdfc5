"""The one exception hierarchy of graphrec.

Every error graphrec raises on purpose derives from :class:`GraphRecError`, so a
caller embedding graphrec can catch everything it signals with one ``except``.
Errors about a file always carry that file's path and a human-readable reason.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ArtefactError",
    "BenchStoreError",
    "CandidateSpecError",
    "DatasetError",
    "DeviceProfileError",
    "ExternalDataError",
    "GraphRecError",
    "GraphStructureError",
    "InventoryFormatError",
    "MiningError",
    "ModelFormatError",
    "ModelLimitError",
    "ModelLoadError",
    "NotFittedError",
    "OutOfDistributionWarning",
    "RuntimeUnavailableError",
    "ScanPathError",
    "ShapeSpecError",
    "ZooArchStringError",
    "ZooError",
    "ZooUnknownFamilyError",
]


class GraphRecError(Exception):
    """Base class of every error graphrec raises on purpose."""


class ModelLoadError(GraphRecError):
    """A model file could not be read.

    Attributes:
        path: The file that was being read (``None`` when decoding bytes).
        reason: What was wrong, in words.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        where = "<bytes>" if path is None else str(path)
        super().__init__(f"{where}: {reason}")


class ModelFormatError(ModelLoadError):
    """The file is not a well-formed ONNX model (not ONNX, truncated, corrupt)."""


class ModelLimitError(ModelLoadError):
    """The file declares sizes beyond graphrec's safety limits (hostile or absurd)."""


class ExternalDataError(ModelLoadError):
    """An initializer's external data file is missing, escapes the model folder or is short."""


class GraphStructureError(ModelLoadError):
    """The graph is not a valid DAG (a cycle, a tensor produced twice, ...)."""


class ShapeSpecError(GraphRecError, ValueError):
    """A user-given input shape specification is malformed or names no input."""


class RuntimeUnavailableError(GraphRecError, ImportError):
    """An inference runtime is not installed or cannot run here; the message says how to fix it."""


class NotFittedError(GraphRecError, ValueError):
    """An estimator was used before ``fit`` was called."""


class ArtefactError(GraphRecError):
    """A trained recommender artefact is missing, corrupt (checksum) or of another format.

    Attributes:
        path: The file or folder involved.
        reason: What was wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class OutOfDistributionWarning(UserWarning):
    """A recommendation was asked for a model or device far from the training data."""


class DeviceProfileError(GraphRecError, ValueError):
    """A device profile file is missing, not JSON, or has invalid fields.

    Attributes:
        path: The file (or ``"<dict>"``) that was being read.
        reason: What was wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class CandidateSpecError(GraphRecError, ValueError):
    """A deployment candidate id or candidate pattern is malformed or names no runtime."""


class BenchStoreError(GraphRecError):
    """A benchmark results store cannot be opened or has an incompatible schema."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ZooError(GraphRecError):
    """A zoo model could not be sampled, built, exported or quantised (the message names it)."""


class ZooUnknownFamilyError(ZooError, ValueError):
    """A zoo family name is not known; the message lists the valid names."""


class ZooArchStringError(ZooError, ValueError):
    """A NAS-Bench-201 architecture string or index is malformed."""


class MiningError(GraphRecError):
    """``graphrec mine`` could not do what was asked (the scan itself never raises on content).

    Attributes:
        path: The path involved (``None`` when there is none).
        reason: What was wrong, in words.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{'<inventory>' if path is None else path}: {reason}")


class ScanPathError(MiningError, FileNotFoundError):
    """A path given to the model miner does not exist or cannot be read."""


class InventoryFormatError(MiningError, ValueError):
    """An inventory cannot be written or read in the requested format (unknown suffix, missing
    optional dependency such as pyarrow, malformed inventory JSON)."""


class DatasetError(GraphRecError):
    """A dataset folder, results store or zoo manifest is missing or malformed."""
