"""Drive the official Node client (@clickhouse/client, tests/sqlhttp/node) from pytest.

``make test`` installs it with ``npm ci``; ``run.mjs`` takes a batch of queries as JSON on
stdin and answers with rows or ClickHouse errors as the client parsed them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


def node_client_ready() -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "@clickhouse" / "client").is_dir():
        pytest.fail("the Node client is not installed: run `make test` (npm ci in tests/sqlhttp/node)")


def run_node(url: str, username: str, password: str, queries: list[dict[str, Any]], **job: Any) -> dict[str, Any]:
    """One node process for a batch of queries; returns its JSON answer."""
    node_client_ready()
    payload = json.dumps({"url": url, "username": username, "password": password, "queries": queries, **job})
    result = subprocess.run(
        ["node", "run.mjs"], input=payload, capture_output=True, text=True, cwd=NODE_DIR, timeout=180, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"node failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)
