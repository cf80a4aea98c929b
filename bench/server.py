"""``otelspend serve`` as a child process on its own data directory (own chDB path).

Used by the ingest benchmark and the fault tests: start on loopback (ephemeral or given
ports), wait for the one ``otelspend listening ...`` line, read /metrics and /readyz,
stop with SIGTERM or SIGKILL, and read the stored totals from a fresh process once it is
down (chDB allows one data path per process, and the test process may hold another).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"otelspend listening otlp_grpc=(\S+) otlp_http=(\S+) api=(\S+)(?: sql=(\S+))?")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def free_port() -> int:
    """A loopback port free right now (for a server that must come back on the same port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def otelspend_command() -> list[str]:
    """The ``otelspend`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("otelspend")
    return [str(script)] if script.exists() else [sys.executable, "-m", "otelspend"]


class ServerProcess:
    """One ``otelspend serve`` child. ``env`` adds OTELSPEND_* settings."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        grpc_port: int = 0,
        http_port: int = 0,
        api_port: int = 0,
        sql_port: int = 0,
        dsn: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.dsn = dsn or f"chdb://{self.data_dir / 'chdb'}"
        self.env = dict(env or {})
        self.ports = (grpc_port, http_port, api_port, sql_port)
        self.process: subprocess.Popen[str] | None = None
        self.grpc_address = self.http_address = self.api_address = self.sql_address = ""
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self._log: IO[str] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout_seconds: float = 60.0) -> ServerProcess:
        """Start ``otelspend serve``; wait for the line saying where it listens (RuntimeError with the log if none)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        grpc_port, http_port, api_port, sql_port = self.ports
        command = [
            *otelspend_command(), "serve",
            "--data-dir", str(self.data_dir),
            "--clickhouse-dsn", self.dsn,
            "--otlp-grpc-address", f"127.0.0.1:{grpc_port}",
            "--otlp-http-address", f"127.0.0.1:{http_port}",
            "--api-address", f"127.0.0.1:{api_port}",
            "--sql-address", f"127.0.0.1:{sql_port}",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTELSPEND_")}
        env["PYTHONFAULTHANDLER"] = "1"  # thread stacks in the log if it has to be aborted
        env.update(self.env)
        self._log = open(self.log_path, "a")  # noqa: SIM115 - outlives this call; closed in _closed()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=self.data_dir
        )
        line = self._first_line(timeout_seconds)
        match = _LISTENING.search(line)
        if match is None:
            self.kill()
            raise RuntimeError(f"otelspend serve did not start: {line!r}\n{self.log_tail()}")
        self.grpc_address, self.http_address, self.api_address, sql = match.groups()
        self.sql_address = sql or ""
        return self

    def _first_line(self, timeout_seconds: float) -> str:
        """The first stdout line, or '' if none within the timeout (readline has no timeout)."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_seconds)
        return box[0] if box else ""

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout_seconds: float = 60.0) -> int:
        """SIGTERM (graceful: flush what was acknowledged) and wait for the exit code."""
        return self._signal(signal.SIGTERM, timeout_seconds)

    def kill(self) -> int:
        """SIGKILL: no flush, no cleanup, like a crash or the OOM killer."""
        return self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout_seconds: float) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            # SIGABRT makes faulthandler (PYTHONFAULTHANDLER) write every thread's stack to the log.
            self.process.send_signal(signal.SIGABRT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
            raise RuntimeError(
                f"server did not exit within {timeout_seconds}s of signal {signum}; its threads:\n{self.log_tail(200)}"
            ) from None
        finally:
            self._closed()

    def _closed(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def thread_died(self) -> bool:
        """True once the log shows an uncaught exception in one of the server's threads."""
        try:
            return "Exception in thread" in self.log_path.read_text()
        except FileNotFoundError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # -- endpoints -------------------------------------------------------------------------

    @property
    def grpc_endpoint(self) -> str:
        """``grpc://host:port`` of the OTLP/gRPC receiver."""
        return f"grpc://{self.grpc_address}"

    @property
    def http_endpoint(self) -> str:
        """``http://host:port`` of the OTLP/HTTP receiver."""
        return f"http://{self.http_address}"

    def endpoint(self, transport: str) -> str:
        """The receiver endpoint for ``transport`` (``grpc`` or ``http``)."""
        return self.grpc_endpoint if transport == "grpc" else self.http_endpoint

    def metrics(self) -> dict[str, float]:
        """/metrics as {name: value}, label sets summed."""
        text = httpx.get(f"http://{self.api_address}/metrics", timeout=10).text
        return parse_metrics(text)

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """``GET /readyz``: status code and body."""
        response = httpx.get(f"http://{self.api_address}/readyz", timeout=10)
        return response.status_code, response.json()

    def wait_until(
        self, predicate: Callable[[dict[str, float]], bool], timeout_seconds: float, what: str
    ) -> dict[str, float]:
        """Poll /metrics until ``predicate`` holds."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            if not self.alive():
                raise RuntimeError(f"server exited while waiting for {what}\n{self.log_tail()}")
            metrics = self.metrics()
            if predicate(metrics):
                return metrics
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_seconds}s waiting for {what}: {metrics}")
            time.sleep(0.05)

    def wait_stored(self, spans: int, runs: int, timeout_seconds: float = 120.0) -> dict[str, float]:
        """Until ``spans`` spans are stored and ``runs`` runs emitted, nothing queued or open.

        A store error fails at once: against a healthy store there is none, and a pipeline
        that keeps retrying a batch would otherwise only show up as a timeout.
        """

        def settled(metrics: dict[str, float]) -> bool:
            if metrics.get("otelspend_store_errors_total", 0):
                raise RuntimeError(f"the server reports store errors:\n{self.log_tail(10)}")
            return is_settled(metrics, spans, runs)

        return self.wait_until(settled, timeout_seconds, f"{spans} spans and {runs} runs")

    # -- reading the data once stopped -----------------------------------------------------

    def stored_totals(self, database: str = "otelspend", *, span_ids: bool = False) -> dict[str, Any]:
        """Totals (``bench.truth.store_totals``) of the stopped server's data, read in a fresh interpreter."""
        if self.alive():
            raise RuntimeError("stop the server before reading its data")
        command = [sys.executable, "-m", "bench.truth", "totals", "--dsn", self.dsn, "--database", database]
        result = subprocess.run(
            command + (["--span-ids"] if span_ids else []),
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"reading totals failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout)


def is_settled(metrics: dict[str, float], spans: int, runs: int) -> bool:
    """Every span stored (written or recognised as a duplicate), every run emitted."""
    stored = metrics.get("otelspend_spans_written_total", 0) + metrics.get("otelspend_spans_duplicate_total", 0)
    emitted = metrics.get("otelspend_runs_emitted_total", 0) + metrics.get("otelspend_runs_unchanged_total", 0)
    return (
        stored >= spans
        and emitted >= runs
        and metrics.get("otelspend_queue_spans", 1) == 0
        and metrics.get("otelspend_open_runs", 1) == 0
    )


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {metric name: value}, the label sets of a name summed."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        if labels and "le=" in labels:
            continue  # histogram buckets: only _sum / _count are kept
        values[name] = values.get(name, 0.0) + float(value)
    return values
