"""Memory and CPU of a server's whole process tree (the main process and its workers).

RSS is summed over the processes (shared library pages count once per process that maps
them: the conservative figure); PSS splits shared pages between the processes that share
them (the tree's fair share of memory). CPU is split, for the main process, between its
Python threads (as the server reports them) and the native threads of the embedded engine and
gRPC.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def tree(root: psutil.Process) -> list[psutil.Process]:
    """The root and its living descendants."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (0 when it is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class Usage:
    """CPU seconds of the tree at one moment, by where they were spent."""

    python: float = 0.0
    """The main process's Python threads (receivers, pipeline, store writer, API)."""
    engine: float = 0.0
    """The main process's native threads (embedded ClickHouse, gRPC core)."""
    workers: float = 0.0
    """Every other process of the tree (receiver workers)."""

    @property
    def total(self) -> float:
        """All of it."""
        return self.python + self.engine + self.workers

    def minus(self, other: Usage) -> Usage:
        """What was spent between ``other`` and this."""
        return Usage(self.python - other.python, self.engine - other.engine, self.workers - other.workers)


def usage(root: psutil.Process, python_seconds: float) -> Usage:
    """CPU seconds so far; ``python_seconds``: the main process's Python threads, as it reports
    them (``otelspend_python_threads_cpu_seconds``): the rest of its CPU is native threads."""
    result = Usage()
    try:
        times = root.cpu_times()
    except psutil.Error:
        return result
    process_total = times.user + times.system
    result.python = python_seconds
    result.engine = max(0.0, process_total - result.python)
    for child in tree(root)[1:]:
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        result.workers += child_times.user + child_times.system
    return result


@dataclass
class TreeSampler:
    """RSS (and, less often, PSS) of the whole tree every ``interval`` seconds, each sample
    tagged by ``progress()`` (e.g. the share of requests acknowledged so far)."""

    root: psutil.Process
    progress: Callable[[], float]
    """Returns a float in [0, 1]."""
    interval: float = 0.1
    pss_every: int = 5
    samples: list[tuple[float, int]] = field(default_factory=list)
    peak_rss: int = 0
    peak_pss: int = 0
    peak_processes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            processes = tree(self.root)
            rss = 0
            for process in processes:
                try:
                    rss += process.memory_info().rss
                except psutil.Error:
                    continue
            if not rss:
                return
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, len(processes))
            if tick % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, sum(pss_bytes(p.pid) for p in processes))
            tick += 1
            self.samples.append((self.progress(), rss))
            self._stop.wait(self.interval)

    def rss_at(self, fraction: float) -> int:
        """Largest tree RSS seen up to the moment ``progress`` reached ``fraction``."""
        seen = [rss for done, rss in self.samples if done <= fraction]
        return max(seen) if seen else 0
