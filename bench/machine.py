"""The machine a benchmark ran on, recorded with its figures."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import psutil

from bench.server import REPO


def machine() -> dict[str, str]:
    """The machine a result was measured on: CPU, cores, memory, OS, versions, git commit and load average."""
    import chdb
    import clickhouse_connect

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu or "unknown CPU",
        "cores": str(psutil.cpu_count(logical=True)),
        "ram": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "chdb": f"{chdb.__version__} (ClickHouse {getattr(chdb, 'engine_version', '?')})",
        "clickhouse_connect": clickhouse_connect.__version__,
        "commit": _commit(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head
