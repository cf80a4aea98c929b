"""Start-up mistakes a restart cannot fix stop ``otelspend serve`` at once: exit status 2 and
one clear message on stderr (file, entry, field, value, expectation), no Python traceback,
no retrying, and no "listening" line a supervisor could take for readiness.

Each case runs the real ``otelspend`` console script in a child process on its own data
directory (chDB allows one data path per process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.server import otelspend_command

pytestmark = pytest.mark.timeout(180)

LOOPBACK = ["--otlp-grpc-address", "127.0.0.1:0", "--otlp-http-address", "127.0.0.1:0", "--api-address", "127.0.0.1:0"]


def _otelspend(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "OTELSPEND_LOG_LEVEL": "info"}
    return subprocess.run(
        [*otelspend_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _serve(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _otelspend("serve", "--data-dir", str(data), "--clickhouse-dsn", f"chdb://{data / 'chdb'}",
                      *LOOPBACK, *extra, cwd=data.parent)  # fmt: skip


def _assert_message_only(result: subprocess.CompletedProcess[str], *expected: str, lines: int = 1) -> str:
    """Exit 2, no traceback, no readiness line, and stderr is the message (``lines`` long)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    assert "otelspend listening" not in result.stdout
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(message) == lines and message[0].startswith("otelspend: "), message
    text = "\n".join(message)
    for part in expected:
        assert part in text, text
    return text


def test_a_migration_changed_after_it_was_applied_stops_start_up_with_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = ["--data-dir", str(data), "--clickhouse-dsn", f"chdb://{data / 'chdb'}"]
    migrated = _otelspend("migrate", *store, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    # The stored checksum of 0002 no longer matches the file: as if the file had been edited.
    edit = textwrap.dedent(
        f"""
        from otelspend.clickhouse.client import Store
        store = Store("chdb://{data / "chdb"}", "otelspend")
        store.command("INSERT INTO otelspend.schema_migrations VALUES (2, 'runs', 'edited0000000000', now64(3) + 1)")
        store.close()
        """
    )
    subprocess.run([sys.executable, "-c", edit], check=True, timeout=60, cwd=tmp_path)

    _assert_message_only(_serve(data), "migration 0002_runs changed after it was applied (checksum edited0000000000",
                         "add a new migration instead")  # fmt: skip
    migrate_again = _otelspend("migrate", *store, cwd=tmp_path)
    _assert_message_only(migrate_again, "migration 0002_runs changed after it was applied")


@pytest.mark.parametrize(
    ("flag", "content", "expected", "lines"),
    [
        pytest.param(
            "--rate-card",
            "entries:\n  - id: gpt-in-house\n    provider: openai\n    model: gpt-4o\n"
            "    prices: {input: 2.5, output: abc}\n",
            ("rate card", "card.yaml", "entry 1 (id 'gpt-in-house')", "prices.output", "'abc'"),
            1,
            id="rate-card-value",
        ),
        pytest.param(
            "--ownership",
            "rules:\n  - match: {service: support-bot}\n    set: {teem: support}\n",
            ("ownership rules", "card.yaml", "teem", "settable fields"),
            1,
            id="ownership-field",
        ),
        pytest.param(
            "--config",
            "clickhouse:\n  batch_rows: -3\n",
            ("invalid configuration", "clickhouse.batch_rows", "card.yaml", "-3", "greater than or equal to 1"),
            2,  # a heading, then one line per problem
            id="settings-value",
        ),
    ],
)
def test_a_configuration_mistake_prints_the_message_alone_and_exits_2(
    tmp_path: Path, flag: str, content: str, expected: tuple[str, ...], lines: int
) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(content)
    _assert_message_only(_serve(tmp_path / "data", flag, str(path)), *expected, lines=lines)
