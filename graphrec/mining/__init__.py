"""Model mining: find the deep-learning models and frameworks inside apps, wheels and folders.

``scan(paths)`` walks folders and (nested) archives — APK, AAB, AAR, JAR, IPA,
ZIP, Python wheels, tar / tar.gz — and returns an :class:`Inventory` of the
model files it recognised by content, the inference frameworks shipped as
native libraries or Python packages, and every hostile or broken input it
met (recorded, never raised).

Example:
    >>> from graphrec.mining import scan
    >>> inventory = scan(["app.apk"])  # doctest: +SKIP
    >>> for m in inventory.models:  # doctest: +SKIP
    ...     print(m.format, m.path, m.size_bytes)
"""

from __future__ import annotations

from graphrec.mining.formats import FORMATS
from graphrec.mining.frameworks import FRAMEWORKS
from graphrec.mining.inventory import (
    Aggregate,
    Inventory,
    LibraryFinding,
    ModelFinding,
    PackageFinding,
    ScanIssue,
    ScanStats,
)
from graphrec.mining.scanner import ScanLimits, scan

__all__ = [
    "FORMATS",
    "FRAMEWORKS",
    "Aggregate",
    "Inventory",
    "LibraryFinding",
    "ModelFinding",
    "PackageFinding",
    "ScanIssue",
    "ScanLimits",
    "ScanStats",
    "scan",
]
