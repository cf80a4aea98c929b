"""The SQL endpoint's HTTP transport: a raw ASGI app served by uvicorn on its own listener.

``POST /`` (query in the body) and ``GET /?query=...``; ``/ping``, ``/`` and
``/replicas_status`` answer ``Ok.``. A request is authenticated, its statement checked by
the policy, and the query run on its own bounded thread pool (``sql.max_concurrent_queries``
threads, at most ``sql.max_queued_queries`` waiting, each for at most the execution-time
ceiling), so slow queries never take the event loop or the ingest threads. The whole result
is buffered before the answer (ClickHouse's ``wait_end_of_query=1``): an error is always a
clean ClickHouse error response, never a half-sent result.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from otelspend.api.sqlhttp import compression, errors, request, response
from otelspend.api.sqlhttp.errors import ClickHouseError
from otelspend.api.sqlhttp.policy import Limits, Policy
from otelspend.api.sqlhttp.sessions import Session, Sessions
from otelspend.api.sqlhttp.statement import Statement, analyze, identifier
from otelspend.clickhouse.readonly import EngineInfo, Outcome, ReadOnlyQueries, ReadOnlyQueryError
from otelspend.metrics import Metrics
from otelspend.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("otelspend.sql")
HEALTH_PATHS = frozenset({"/ping", "/replicas_status"})
KEEP_ALIVE_SECONDS = 5  # uvicorn's default keep-alive; the Node client reads it from this header


@dataclass(frozen=True)
class EndpointConfig:
    """The SQL endpoint's settings: password, database, display name, concurrency and request bounds."""

    password: str | None
    database: str
    display_name: str
    max_concurrent_queries: int
    max_queued_queries: int
    max_request_bytes: int


class SqlHttpApp:
    """The read-only SQL endpoint as an ASGI app speaking ClickHouse's HTTP interface: health
    paths, ``GET /?query=`` and ``POST /``, sessions, compression, ClickHouse-shaped errors.
    """

    def __init__(self, config: EndpointConfig, queries: ReadOnlyQueries, limits: Limits, metrics: Metrics) -> None:
        self.config = config
        self.queries = queries
        self.metrics = metrics
        self.info: EngineInfo = queries.info()
        self.policy = Policy(limits, self.info.table_functions, self.info.settings)
        self.sessions = Sessions()
        self.executor = ThreadPoolExecutor(
            max_workers=config.max_concurrent_queries, thread_name_prefix="otelspend-sql"
        )
        self._slots = asyncio.Semaphore(config.max_concurrent_queries)
        self._waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: health checks, then each query vetted by the policy and run read-only."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if path in HEALTH_PATHS or (path == "/" and method in ("GET", "HEAD") and "query" not in params):
            await _plain(send, 200, b"Ok.\n", method)
            return
        if path != "/":
            text = f"There is no handle {path}\n\nUse / or /ping for health checks.\n"
            await _plain(send, 404, (text + "Send queries with POST / or GET /?query=...\n").encode(), method)
            return
        started = time.perf_counter()
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            if method not in ("GET", "POST"):
                raise ClickHouseError.of(
                    errors.NOT_IMPLEMENTED, f"HTTP method {method} is not supported: use GET or POST"
                )
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            body = await self._body(receive, headers)
            status, out_headers, out = await self._answer(params, headers, body, query_id)
        except Exception as exc:  # every failure answers as ClickHouse does; a bug is also logged
            error = exc if isinstance(exc, ClickHouseError) else _unexpected(exc)
            self.metrics.inc("otelspend_sql_queries_total", outcome=_outcome(error))
            self.metrics.observe("otelspend_sql_query_seconds", time.perf_counter() - started)
            headers_ = response.common(self.config.display_name, query_id) + response.error_headers(error)
            await _send(send, error.http_status, headers_, error.body(self.info.version))
            return
        self.metrics.inc("otelspend_sql_queries_total", outcome="ok")
        self.metrics.observe("otelspend_sql_query_seconds", time.perf_counter() - started)
        await _send(send, status, response.common(self.config.display_name, query_id) + out_headers, out)

    async def _answer(
        self, params: dict[str, str], headers: dict[str, str], body: bytes, query_id: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        content_type = headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            params = {**params, **request.multipart_fields(content_type, body)}
            body = b""
        if params.get("compress") == "1" or params.get("decompress") == "1":
            raise ClickHouseError.of(
                errors.NOT_IMPLEMENTED,
                "compress=1 / decompress=1 (ClickHouse's native block compression) is not supported: use HTTP "
                "compression (enable_http_compression=1 with Accept-Encoding: gzip, zstd, lz4, deflate)",
            )
        request.authenticate(request.credentials(headers, params), self.config.password)
        session = self._session(params)
        sql = request.query_text(params, body)
        statement = analyze(sql)
        self.policy.check(statement, sql)
        if statement.kind in ("SET", "USE"):
            self._keep(statement, session)
            return 200, self._result_headers("TabSeparated", session, None), b""
        url_settings, query_params = request.split_params(params)
        chosen = {**(session.settings if session else {})}
        for name, value in url_settings.items():
            chosen[name] = self.policy.setting(name, value, from_url=True)
        for name, value in statement.settings:
            chosen[name] = self.policy.setting(name, value, from_url=False)
        default_format = params.get("default_format") or "TabSeparated"
        fmt = statement.format or default_format  # what the engine answers in: a FORMAT clause wins
        database = (
            params.get("database") or headers.get("x-clickhouse-database") or (session.database if session else None)
        ) or self.config.database
        encoding = self._encoding(params, headers)
        level = _int(params.get("http_zlib_compression_level"), compression.DEFAULT_LEVEL)

        def work() -> tuple[Outcome, bytes]:
            outcome = self.queries.run(
                sql,
                database=database,
                settings=self.policy.engine_settings(chosen),
                params={**(session.params if session else {}), **query_params},
                fmt=default_format,
            )
            return outcome, compression.encode(outcome.body, encoding, level) if encoding else outcome.body

        try:
            outcome, out = await self._run(work)
        except ReadOnlyQueryError as exc:
            raise ClickHouseError.from_engine(str(exc)) from None
        out_headers = self._result_headers(fmt, session, chosen.get("session_timezone"), outcome)
        if encoding:
            out_headers.append((b"content-encoding", encoding.encode()))
        return 200, out_headers, out

    # -- pieces ----------------------------------------------------------------------------

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        limit = self.config.max_request_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return compression.decode(b"".join(chunks), headers.get("content-encoding", ""), limit)

    def _session(self, params: dict[str, str]) -> Session | None:
        session_id = params.get("session_id")
        if not session_id:
            return None
        return self.sessions.get(
            session_id, timeout=params.get("session_timeout"), check=params.get("session_check") == "1"
        )

    def _keep(self, statement: Statement, session: Session | None) -> None:
        """SET and USE change the session (ClickHouse forgets them at once without one)."""
        if statement.kind == "USE":
            names = [t for t in statement.tokens[1:] if t.text != "."]
            if len(names) != 1:
                raise ClickHouseError.of(errors.SYNTAX_ERROR, "USE: expected one database name")
            if session is not None:
                session.database = identifier(names[0])
            return
        vetted = []
        for name, value in statement.settings:
            if name.startswith("param_"):
                vetted.append((name, value))
            else:
                vetted.append((name, self.policy.setting(name, value, from_url=False)))
        if session is not None:
            for name, value in vetted:
                if name.startswith("param_"):
                    session.params[name[len("param_") :]] = value
                else:
                    session.settings[name] = value

    def _encoding(self, params: dict[str, str], headers: dict[str, str]) -> str | None:
        enabled = params.get("enable_http_compression")
        on = self.info.http_compression_by_default if enabled is None else enabled not in ("0", "false", "")
        accept = headers.get("accept-encoding", "")
        return compression.choose(accept) if on and accept else None

    def _result_headers(
        self, fmt: str, session: Session | None, timezone: str | None, outcome: Outcome | None = None
    ) -> list[tuple[bytes, bytes]]:
        zone = timezone or (session.settings.get("session_timezone") if session else None) or self.info.timezone
        totals = {} if outcome is None else {
            "read_rows": outcome.read_rows, "read_bytes": outcome.read_bytes, "result_rows": outcome.result_rows,
            "result_bytes": outcome.result_bytes, "elapsed_ns": outcome.elapsed_ns,
        }  # fmt: skip
        return [
            (b"content-type", response.content_type(fmt).encode()),
            (b"x-clickhouse-format", response.header_value(fmt)),
            (b"x-clickhouse-timezone", response.header_value(zone)),
            (b"x-clickhouse-summary", response.summary(**totals).encode()),
            (b"keep-alive", f"timeout={KEEP_ALIVE_SECONDS}".encode()),
        ]

    async def _run(self, work: Callable[[], tuple[Outcome, bytes]]) -> tuple[Outcome, bytes]:
        if self._slots.locked() and self._waiting >= self.config.max_queued_queries:
            raise _busy(f"{self._waiting} queries are already waiting (sql.max_queued_queries)")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.policy.limits.max_execution_time)
        except TimeoutError:
            raise _busy(f"no query slot freed within {self.policy.limits.max_execution_time:g} s") from None
        finally:
            self._waiting -= 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, work)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        """Wait for running queries (each bounded by the execution-time ceiling); safe twice."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def _outcome(error: ClickHouseError) -> str:
    if error.name in ("AUTHENTICATION_FAILED", "REQUIRED_PASSWORD"):
        return "unauthorized"
    if error.name in ("READONLY", "INTO_OUTFILE_NOT_ALLOWED"):
        return "refused"
    return "failed"


def _unexpected(exc: Exception) -> ClickHouseError:
    log.exception("sql endpoint: unexpected error")
    return ClickHouseError.of(errors.UNKNOWN_EXCEPTION, f"otelspend SQL endpoint error: {type(exc).__name__}: {exc}")


def _busy(why: str) -> ClickHouseError:
    return ClickHouseError.of(errors.TOO_MANY_SIMULTANEOUS_QUERIES, f"Too many simultaneous queries: {why}")


def _too_large(size: int, limit: int) -> ClickHouseError:
    return ClickHouseError.of(
        errors.QUERY_IS_TOO_LARGE, f"The request body ({size} bytes) is larger than sql.max_request_bytes ({limit})"
    )


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() else default


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _plain(send: Send, status: int, body: bytes, method: str) -> None:
    headers = [(b"content-type", b"text/plain; charset=UTF-8")]
    await _send(send, status, headers, b"" if method == "HEAD" else body, length=len(body))


async def _send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, length: int | None = None
) -> None:
    headers = [*headers, (b"content-length", str(len(body) if length is None else length).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_sql_app(settings: Settings, store_path: Path, metrics: Metrics) -> SqlHttpApp:
    """The endpoint over the embedded store at ``store_path``, as ``settings.sql`` configures it."""
    sql = settings.sql
    limits = Limits(
        max_execution_time=sql.max_execution_seconds,
        max_memory_usage=sql.max_memory_bytes,
        max_result_rows=sql.max_result_rows,
        max_result_bytes=sql.max_result_bytes,
        max_threads=sql.max_threads,
    )
    config = EndpointConfig(
        password=sql.password.get_secret_value() if sql.password is not None else None,
        database=settings.clickhouse.database,
        display_name=settings.node_id,
        max_concurrent_queries=sql.max_concurrent_queries,
        max_queued_queries=sql.max_queued_queries,
        max_request_bytes=sql.max_request_bytes,
    )
    return SqlHttpApp(config, ReadOnlyQueries(store_path), limits, metrics)
