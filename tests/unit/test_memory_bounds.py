"""The memory bounds of a process are real: the embedded engine runs under the limit and cache
sizes ``clickhouse.embedded_memory_mib`` sets, glibc takes the allocator options, and pyarrow's
pandas probe leaves pandas unloaded (and importable).

Each runs in a fresh interpreter: chDB starts one engine per process, configured by whoever
connects first (this test process already has one), and allocator options and pyarrow's probe
are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MIB = 1024 * 1024


def _run(code: str) -> object:
    """Run ``code`` in a fresh interpreter; it prints one JSON value, which is returned."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_embedded_engine_runs_under_the_configured_memory_limit_and_cache_sizes(tmp_path: Path) -> None:
    limit = 300 * MIB
    code = f"""
import json
from otelspend.clickhouse.client import Store
store = Store("chdb://{tmp_path / "chdb"}", "default", memory_limit_bytes={limit})
names = ("max_server_memory_usage", "mark_cache_size", "primary_index_cache_size", "uncompressed_cache_size")
rows = store.rows(
    "SELECT name, value FROM system.server_settings WHERE name IN {{names:Array(String)}}", {{"names": list(names)}}
)
print(json.dumps(dict(rows)))
"""
    settings = _run(code)
    assert settings == {
        "max_server_memory_usage": str(limit),
        "mark_cache_size": str(limit // 16),
        "primary_index_cache_size": str(limit // 16),
        "uncompressed_cache_size": "0",
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt (elsewhere: a no-op, False)")
def test_glibc_takes_the_allocator_options() -> None:
    code = """
import json
from otelspend.pipeline import memory
ok = memory.tune_allocator()
memory.trim()
print(json.dumps(ok))
"""
    assert _run(code) is True


def test_pyarrow_builds_arrays_without_loading_pandas_which_stays_importable() -> None:
    code = """
import json, sys
import pyarrow as pa
from otelspend.pipeline.memory import skip_pandas_probe
skip_pandas_probe()
pa.array(["a", "b"]); pa.table({"x": [1, 2]})
after_arrays = "pandas" in sys.modules
import pandas
print(json.dumps([after_arrays, pandas.__name__]))
"""
    assert _run(code) == [False, "pandas"]
