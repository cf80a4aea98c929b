"""A configuration file (rate card, ownership rules) reloaded on change or SIGHUP.

A reload builds and validates a complete new value before swapping the reference; an
invalid file keeps the previous value in force and reports why (no data is dropped).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("otelspend")


class Reloadable(Generic[T]):
    """The value loaded from one file (``current``), replaced only by a complete, valid new load.

    ``check()`` (called periodically) reloads when the file's mtime changed or ``request()``
    asked; a failed load keeps the previous value and sets ``last_error``. ``generation``
    counts successful loads.
    """

    def __init__(self, name: str, path: Path | None, load: Callable[[Path | None], T]) -> None:
        self.name = name
        self.path = path
        self._load = load
        self.current: T = load(path)
        self._mtime = self._stat()
        self.generation = 1
        self.last_error = ""
        self._requested = threading.Event()

    def request(self) -> None:
        """Ask for a reload at the next check (SIGHUP handler)."""
        self._requested.set()

    def check(self) -> bool:
        """Reload if asked or the file changed; True when a new value is in force."""
        if self.path is None:
            return False
        mtime = self._stat()
        if not self._requested.is_set() and mtime == self._mtime:
            return False
        self._requested.clear()
        self._mtime = mtime
        try:
            value = self._load(self.path)
        except (OSError, ValueError) as exc:
            self.last_error = str(exc)
            log.error("%s reload failed, keeping the previous version: %s", self.name, exc)
            return False
        self.current = value
        self.generation += 1
        self.last_error = ""
        log.info("%s reloaded from %s (generation %d)", self.name, self.path, self.generation)
        return True

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path else None
        except OSError:
            return None
