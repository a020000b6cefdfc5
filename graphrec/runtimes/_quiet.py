"""Keep runtime libraries' chatter off stdout.

Some runtimes print from C/C++ when imported (MNN: ``The device supports: ...``), which
bypasses ``sys.stdout`` and would corrupt ``--json`` output piped to another tool. The
context manager points file descriptor 1 at stderr while the library is imported and
flushes C stdio before pointing it back, so nothing is lost and nothing lands on stdout.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["stdout_to_stderr"]


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no libc to flush (rare platforms): nothing buffered
        pass


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to file descriptor 1 (Python or C) to stderr meanwhile.

    Example:
        >>> with stdout_to_stderr():
        ...     import MNN  # doctest: +SKIP
    """
    try:
        fd_out, fd_err = sys.__stdout__.fileno(), sys.__stderr__.fileno()  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):  # no real descriptors (embedded, captured)
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _flush_c_stdio()
    saved = os.dup(fd_out)
    try:
        os.dup2(fd_err, fd_out)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        _flush_c_stdio()
        os.dup2(saved, fd_out)
        os.close(saved)
