"""Keep the C allocator's resident memory close to what the process uses.

Python hands allocations above 512 bytes to glibc ``malloc``. Left at its defaults, glibc
keeps up to eight arenas per core for a many-threaded process (gRPC and HTTP receivers,
pipeline, store writer, API) and raises its mmap threshold after every large free, so the
request buffers and result frames of a busy receiver end up in arenas that grow and are
seldom given back: resident memory climbs in steps and stays there. ``tune_allocator``
caps the arenas and fixes the mmap threshold (large buffers are mapped and unmapped, never
left in an arena); ``trim`` returns the free top of every arena to the system (the pipeline
calls it every few seconds, as it purges the embedded engine's allocator).

Both are no-ops where glibc is not the C library.

``skip_pandas_probe`` keeps pyarrow from importing pandas (about 55 MiB resident) the first
time it builds an array: pyarrow asks, once, whether pandas is installed (chDB depends on
it), and nothing here uses it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.abc
import logging
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

log = logging.getLogger("otelspend")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

ARENAS = 2
"""glibc arenas for the whole process (threads share them; contention is low: the hot paths
allocate through Python's own small-object allocator)."""
MMAP_THRESHOLD_BYTES = 256 * 1024
"""Allocations this large are mapped on their own and unmapped when freed (request bodies,
worker frames, marshal buffers), instead of staying in an arena."""
TRIM_THRESHOLD_BYTES = 4 * 1024 * 1024
"""Free memory at the top of an arena above this is given back at once."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return None
    return libc


_LIBC = _libc()


def tune_allocator() -> bool:
    """Cap glibc's arenas and fix its mmap and trim thresholds; False where not possible.

    Call early, before threads start allocating (arenas already created stay).
    """
    if _LIBC is None:
        return False
    ok = all(
        _LIBC.mallopt(option, value) == 1
        for option, value in (
            (_M_ARENA_MAX, ARENAS),
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        )
    )
    if not ok:
        log.debug("mallopt refused an option; the C allocator keeps its defaults")
    return ok


def trim() -> None:
    """Give free memory at the top of the C allocator's arenas back to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class _NoPandas(importlib.abc.MetaPathFinder):
    """Refuses ``import pandas`` while it is on ``sys.meta_path``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ImportError("pandas is not used by otelspend's ingest")
        return None


def skip_pandas_probe() -> None:
    """Let pyarrow find pandas missing the one time it probes for it (its first array).

    Afterwards ``import pandas`` works as usual for anyone who needs it (pyarrow's own
    ``to_pandas`` imports it then); only the probe that would load it for nothing is answered
    "not installed". Does nothing if pandas is already imported.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])  # the probe: remembered by pyarrow for the life of the process
    finally:
        sys.meta_path.remove(finder)
