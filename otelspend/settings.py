"""One validated settings model for the whole process.

Sources, lowest precedence first: field defaults, an optional YAML file (``--config`` or
``OTELSPEND_CONFIG``), ``OTELSPEND_*`` environment variables, ``serve`` flags. Every
section rejects unknown keys; every problem is reported at once, naming the key, where it
came from, the value and what was expected.

Environment names are derived, not listed: ``OTELSPEND_<SECTION>_<FIELD>`` for a field of
a section (``OTELSPEND_CLICKHOUSE_DSN``), ``OTELSPEND_<FIELD>`` for a top-level field
(``OTELSPEND_RATE_CARD``). Lists are comma separated.

Secret settings (tokens, passwords, keys, URLs with credentials) are ``SecretStr`` types
(``otelspend.redact``): never shown, and each can also be read from a file only the service
user can read, named by ``OTELSPEND_<SECTION>_<FIELD>_FILE`` or ``<field>_file:`` in YAML.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import json
import os
import socket
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from otelspend.redact import (
    SecretDsn,
    SecretFileError,
    SecretUrl,
    annotation_at,
    bare,
    holds_secret,
    is_secret_path,
    read_secret_file,
    shown,
)
from otelspend.yamltext import yaml_problem

__all__ = ["SecretDsn", "SecretStr", "SecretUrl"]  # the secret types new settings use

ENV_PREFIX = "OTELSPEND_"
MIB = 1024 * 1024


class ConfigError(ValueError):
    """Configuration is invalid; the message lists every problem."""


def _check_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port, e.g. 127.0.0.1:4317 (port 0 picks a free port)")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected a port number from 0 to 65535 after the colon")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not all(part and part.replace("-", "").isalnum() for part in bare.split(".")):
            raise ValueError("expected an IP address or host name before the port") from None
    return value


Address = Annotated[str, AfterValidator(_check_address)]


def _check_optional_address(value: str) -> str:
    return value if value == "" else _check_address(value)


OptionalAddress = Annotated[str, AfterValidator(_check_optional_address)]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IPs (127.0.0.0/8, ::1)."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def split_address(address: str) -> tuple[str, int]:
    """``'127.0.0.1:4317'`` -> ``('127.0.0.1', 4317)``; brackets stripped from IPv6 hosts."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Section(BaseModel):
    # hide_input_in_errors: a ValidationError printed by anyone (not only load_settings,
    # which formats its own) never repeats the input, which may be a secret.
    """A settings section: unknown keys rejected, values frozen, inputs never echoed in errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _at_least(length: int, what: str) -> Any:
    def check(value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < length:
            raise ValueError(f"{what} must be at least {length} characters")
        return value

    return AfterValidator(check)


def _split_secret_list(value: Any) -> Any:
    """Env and file form of a token list: separated by commas or new lines."""
    if isinstance(value, str):
        return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    return value


class IngestToken(Section):
    """A bearer token accepted on OTLP; ``name`` is what gets stored and matched by ownership rules."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    token: Annotated[SecretStr, _at_least(8, "an ingest token")]


class OtlpSettings(Section):
    """The OTLP receivers: listen addresses, request bounds, ingest tokens, what is kept of spans."""

    grpc_address: Address = "127.0.0.1:4317"
    """OTLP/gRPC listen address (TraceService/Export). Default loopback only."""
    http_address: Address = "127.0.0.1:4318"
    """OTLP/HTTP listen address (POST /v1/traces and /api/public/otel/v1/traces)."""
    max_request_bytes: int = Field(16 * MIB, ge=1024, le=1024 * MIB)
    """Largest request accepted, compressed or not (RESOURCE_EXHAUSTED / 413 above it)."""
    ingest_tokens: list[IngestToken] = []
    """Bearer tokens accepted on OTLP; the name is stored with each span, the token never. Empty =
    no auth. Env and file form: ``name:token,name2:token2`` (or one pair per line)."""
    keep_content: bool = False
    """Keep prompt/completion content attributes. Default drops them and keeps their byte size."""
    max_attribute_value_bytes: int = Field(4096, ge=64, le=MIB)
    """Attribute values longer than this many characters are truncated before storage (content
    size is measured first)."""
    max_attributes_per_span: int = Field(256, ge=8, le=10_000)
    """Attributes beyond this count are dropped from the stored map (canonical fields still read)."""
    grpc_workers: int = Field(8, ge=1, le=256)
    """Threads serving gRPC exports."""

    @field_validator("ingest_tokens", mode="before")
    @classmethod
    def _parse_token_list(cls, value: Any) -> Any:
        if isinstance(value, Mapping):  # YAML {name: token, ...}
            return [{"name": name, "token": token} for name, token in value.items()]
        if isinstance(value, str):
            parsed = []
            for pair in _split_secret_list(value):
                name, sep, token = pair.partition(":")
                if not sep:
                    raise ValueError("expected name:token pairs separated by commas")
                parsed.append({"name": name, "token": token})
            return parsed
        return value


class ApiSettings(Section):
    """The REST API and dashboard: listen address, bearer tokens, answer size."""

    address: Address = "127.0.0.1:8000"
    """REST API and web dashboard listen address."""
    tokens: list[Annotated[SecretStr, _at_least(8, "each API token")]] = []
    """Bearer tokens accepted by the API and dashboard, at least 8 characters each. Empty = no
    auth (loopback default). Env and file form: comma separated (or one per line)."""
    max_rows: int = Field(10_000, ge=1, le=1_000_000)
    """Upper bound of ``limit`` on list and rollup endpoints."""

    @field_validator("tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        return _split_secret_list(value)


class SqlSettings(Section):
    """The read-only SQL endpoint (ClickHouse HTTP interface over the embedded store): address,
    password, concurrency, limits."""

    address: OptionalAddress = "127.0.0.1:8123"
    """Read-only ClickHouse HTTP interface over the embedded store (Grafana, clickhouse-connect,
    @clickhouse/client, curl). Empty = off. Off too when the store is a ClickHouse server: query
    that server directly."""
    password: SecretStr | None = Field(None, validate_default=True)
    """Password of the endpoint's user ``otelspend``. Without one the endpoint must listen on
    loopback, and then needs no credentials."""
    max_concurrent_queries: int = Field(2, ge=1, le=64)
    """Queries running at once, each on a thread of the endpoint's own pool."""
    max_queued_queries: int = Field(32, ge=0, le=10_000)
    """Queries waiting for a thread (each at most ``max_execution_seconds``); beyond,
    TOO_MANY_SIMULTANEOUS_QUERIES."""
    max_execution_seconds: float = Field(30.0, gt=0, le=3600)
    """Ceiling of ``max_execution_time``: a longer query fails with TIMEOUT_EXCEEDED."""
    max_memory_bytes: int = Field(512 * MIB, ge=MIB)
    """Ceiling of ``max_memory_usage`` per query (MEMORY_LIMIT_EXCEEDED above it)."""
    max_result_rows: int = Field(1_000_000, ge=1)
    """Ceiling of ``max_result_rows`` (TOO_MANY_ROWS_OR_BYTES above it, never a cut result)."""
    max_result_bytes: int = Field(128 * MIB, ge=1024)
    """Ceiling of ``max_result_bytes`` (uncompressed result blocks)."""
    max_threads: int = Field(1, ge=1, le=64)
    """Ceiling of ``max_threads``: engine threads per query. One leaves the other cores to ingest."""
    max_request_bytes: int = Field(MIB, ge=1024, le=64 * MIB)
    """Largest query request accepted, before and after decompression (QUERY_IS_TOO_LARGE above it)."""

    @field_validator("password")
    @classmethod
    def _required_beyond_loopback(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("expected at least 8 characters")
        address = info.data.get("address", "")
        if value is None and address and not is_loopback(split_address(address)[0]):
            raise ValueError(f"required when sql.address ({address}) listens beyond loopback")
        return value


class ClickHouseSettings(Section):
    """The store: DSN (embedded chDB or a server), database, cluster, insert batching and timeouts, span TTL."""

    dsn: SecretDsn = SecretDsn("chdb://./data/chdb")
    """``chdb://<dir>`` for embedded chDB (relative paths resolve from the working directory),
    ``http(s)://user:password@host:8123`` for a ClickHouse server (shown with ``***`` for the
    password and query values)."""
    database: str = Field("otelspend", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Database holding every otelspend table."""
    batch_rows: int = Field(20_000, ge=1, le=1_000_000)
    """Spans per columnar insert (the size trigger)."""
    flush_interval_ms: int = Field(1000, ge=1, le=60_000)
    """Longest a span waits in the pipeline before an insert (the time trigger). Every insert has
    a fixed cost in the store (a part written, then merged): fewer, larger inserts cost less."""
    spans_ttl_days: int | None = Field(None, ge=1)
    """Drop raw spans older than this many days (runs and rollups are kept). Default: keep."""
    insert_timeout_seconds: float = Field(30.0, gt=0)
    """A store call slower than this counts as a failure and is retried."""
    embedded_memory_mib: int = Field(1024, ge=64, le=1024 * 1024)
    """Embedded store only: memory limit of the engine (queries and merges above it fail and are
    retried); its mark, index and condition caches are bounded to small fractions of it. The
    engine's tracker counts more than it keeps resident: at 512 inserts failed under sustained load."""
    startup_wait_seconds: float = Field(20.0, ge=0, le=3600)
    """``serve`` waits this long for the store (migrations, crash recovery) before announcing
    it is listening; past it, ingest answers 503 until the store is up (retried with backoff)."""
    cluster: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-{}]+$")
    """ClickHouse cluster name: create replicated ``*_local`` tables ON CLUSTER with Distributed
    tables over them (server DSN only; see ``otelspend migrate --print-cluster-ddl``)."""

    @field_validator("dsn")
    @classmethod
    def _known_scheme(cls, dsn: SecretDsn) -> SecretDsn:
        value = dsn.get_secret_value()
        if value.startswith("chdb://"):
            if not value[len("chdb://") :]:
                raise ValueError("expected chdb://<directory>, e.g. chdb://./data/chdb")
            return dsn
        if value.startswith(("http://", "https://")):
            return dsn
        raise ValueError("expected a chdb://<directory> or http(s)://host:port DSN")


class WalSettings(Section):
    """The write-ahead log: where, whether appends are fsynced, segment size."""

    dir: Path | None = None
    """Write-ahead log directory. Default ``<data_dir>/wal``."""
    fsync: bool = True
    """fsync before acknowledging (group commit). Off survives process crashes, not power loss."""
    segment_bytes: int = Field(64 * MIB, ge=MIB)
    """Size at which the log rolls to a new segment file."""


AUTO_WORKERS_MAX = 4
"""``pipeline.workers: auto`` starts at most this many receiver workers."""


class PipelineSettings(Section):
    """The ingest queue: its bound and the Retry-After hint when it is full."""

    queue_spans: int = Field(50_000, ge=1_000)
    """Spans accepted but not yet stored. Above it, exporters get UNAVAILABLE / 503 + Retry-After."""
    retry_after_seconds: int = Field(2, ge=1, le=300)
    """Retry hint sent with UNAVAILABLE / 503."""
    workers: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = "auto"
    """Receiver worker processes that decode, normalise, price and build Arrow beside the main
    process (which keeps the listeners, write-ahead log, stitching and store). 0 = one process;
    ``auto`` = one less than the CPU cores available, at most 4 (0 on one core)."""

    def worker_count(self) -> int:
        """Workers to start: ``workers``, with ``auto`` resolved for this machine (the main
        process's pipeline thread keeps about one core busy; beyond four workers it, not the
        workers, bounds throughput, and each worker costs memory)."""
        if self.workers != "auto":
            return self.workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return min(max(0, cores - 1), AUTO_WORKERS_MAX)


class RunsSettings(Section):
    """Run stitching and emission: when a run is due, memory caps, emission batching, late spans, retry loops."""

    settle_seconds: float = Field(3.0, ge=0)
    """A run whose root has arrived is emitted after this long without new spans."""
    root_wait_seconds: float = Field(300.0, ge=0)
    """A run whose root never arrives is emitted as incomplete after this long without new spans."""
    late_horizon_hours: float = Field(24.0, ge=0)
    """A late span updates its run if the run was emitted less than this long ago; a later one is
    stored but leaves the run as it is."""
    max_open_runs: int = Field(100_000, ge=10)
    """Open runs held in memory; above it the longest-idle run is emitted early."""
    max_spans_per_run: int = Field(50_000, ge=10)
    """Spans one open run may hold in memory; a bigger trace is emitted in place and reopened."""
    emit_batch_runs: int = Field(5_000, ge=1)
    """Closed runs are written in batches of this many (or after ``emit_interval_seconds``):
    every insert through the rollup views has a large fixed cost."""
    emit_interval_seconds: float = Field(1.0, ge=0)
    """Longest a closed run waits for its batch before it is written."""
    closed_cache_runs: int = Field(20_000, ge=0)
    """Recently emitted runs kept in memory so late spans need no store lookup."""
    retry_loop_threshold: int = Field(3, ge=1)
    """A run with at least this many retries is flagged as a retry loop."""
    repeat_call_threshold: int = Field(10, ge=2)
    """A run calling the same model and operation under the same parent this many times is
    flagged as a retry loop too (an agent stuck re-asking)."""


class WebhookSink(Section):
    """One webhook that receives alert events."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    url: SecretUrl
    secret: SecretStr | None = None
    format: Literal["json", "slack"] = "json"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretUrl) -> SecretUrl:
        _check_webhook_url(value)
        return value


def _check_webhook_url(value: SecretStr | None) -> None:
    if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")


class AlertsSettings(Section):
    webhooks: list[WebhookSink] = []
    """Webhook sinks: ``name``, ``url`` (secret: may carry a token), ``secret`` (HMAC key), ``format``
    (``json`` or ``slack``). Env form: a JSON list."""
    webhook_url: SecretUrl | None = None
    """One more JSON sink, named ``default`` (the short form of ``webhooks``)."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 signing secret of the ``default`` sink."""
    public_url: str | None = Field(None, pattern=r"^https?://")
    """Base of the dashboard and API links in alerts. Default ``http://<api.address>``."""
    cooldown_seconds: float = Field(3600.0, ge=0)
    """After an incident resolves, the same incident key raises no new alert for this long."""
    resolve_after_seconds: float = Field(900.0, gt=0)
    """A retry loop or policy incident with no new detection for this long is resolved."""
    timeout_seconds: float = Field(5.0, gt=0, le=120)
    """A webhook answering slower than this counts as failed (retried)."""
    retry_initial_seconds: float = Field(1.0, gt=0)
    """First retry delay after a failed delivery; doubled per attempt, with jitter."""
    retry_max_seconds: float = Field(300.0, gt=0)
    """Longest delay between two delivery attempts (a ``Retry-After`` answer is honoured up to it)."""
    give_up_after_hours: float = Field(24.0, gt=0)
    """A delivery still failing this long after the alert is marked failed (kept in /v1/alerts)."""
    outbox_max_events: int = Field(10_000, ge=10)
    """Undelivered alerts kept in the outbox; beyond it the oldest are marked failed (counted)."""

    @field_validator("webhooks", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except ValueError:
                raise ValueError('expected a JSON list such as [{"name": "ops", "url": "https://..."}]') from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: SecretUrl | None) -> SecretUrl | None:
        _check_webhook_url(value)
        return value

    @field_validator("webhooks")
    @classmethod
    def _unique_names(cls, value: list[WebhookSink]) -> list[WebhookSink]:
        names = [sink.name for sink in value]
        if len(set(names)) != len(names):
            raise ValueError("webhook names must be unique")
        return value


class BudgetsSettings(Section):
    path: Path | None = None
    """YAML budgets (reloaded on change); more are created over ``/v1/budgets``."""
    forecast_min_elapsed: float = Field(0.1, ge=0, le=1)
    """Share of a period that must have passed before "on pace to exceed" can fire."""
    evaluate_interval_seconds: float = Field(5.0, gt=0, le=3600)
    """How often budgets are re-evaluated without new spend (pace, period rollover)."""

    @field_validator("path")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("expected a readable YAML file; none exists at that path")
        return value


class ControlsSettings(Section):
    enabled: bool = True
    """Run the spend controls (budgets, retry loops, model policy, anomalies, alerts)."""
    policy: Path | None = None
    """YAML model routing policy (reloaded on change)."""
    retry_loop_max_retries: int = Field(2, ge=0)
    """A run with more retries than this within the window raises run.retry_loop."""
    retry_loop_max_step_calls: int = Field(9, ge=1)
    """A run calling one step (model and operation, or tool, under one parent) more often than
    this within the window raises run.retry_loop too."""
    retry_loop_window_seconds: float = Field(60.0, gt=0)
    """The window (span time) of both retry-loop rules."""
    anomaly_interval_seconds: float = Field(300.0, ge=0)
    """How often the anomaly detectors read the hourly rollups; 0 turns them off (with several replicas
    on one store, run them on one replica: each would raise the same anomalies)."""
    anomaly_weeks: int = Field(4, ge=1, le=8)
    """Weeks of the same hour of the week that make a baseline."""
    anomaly_min_weeks: int = Field(2, ge=1, le=8)
    """Fewer weeks of history than this: no baseline, no anomaly alert."""
    anomaly_z: float = Field(3.5, gt=0)
    """Modified z-score (0.6745 x (x - median) / MAD) above which a figure is out of range."""
    anomaly_factor: float = Field(2.0, ge=1)
    """A figure must also be at least this multiple of its baseline median."""
    anomaly_min_impact_usd: Decimal = Field(Decimal("1.00"), ge=0)
    """A figure must also exceed its baseline median by at least this many USD in the window (cost per
    success: the rise per run times the successful runs)."""
    anomaly_min_runs: int = Field(5, ge=1)
    """Windows whose baseline has fewer runs (successful runs for cost per success) are not judged."""
    queue_batches: int = Field(1_000, ge=10)
    """Span batches waiting for the controls thread; beyond it batches are skipped (counted), never ingest slowed."""
    max_tracked_runs: int = Field(100_000, ge=100)
    """Open runs the stream controls remember (least recently active forgotten first)."""
    flag_ttl_hours: float = Field(24.0, gt=0)
    """How long a run flagged by a retry loop answers ``stop``."""

    @field_validator("policy")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("expected a readable YAML file; none exists at that path")
        return value


class BillingSettings(Section):
    accounts: Path | None = None
    """YAML account mapping: provider projects, workspaces and API keys -> ingest tokens,
    services, teams, environments (see "Reconcile with the provider's bill")."""
    openai_admin_key: SecretStr | None = None
    """OpenAI Admin API key for ``otelspend billing pull --provider openai``. Never logged or returned."""
    anthropic_admin_key: SecretStr | None = None
    """Anthropic Admin API key (``sk-ant-admin...``) for ``billing pull --provider anthropic``. Never
    logged or returned."""
    openai_base_url: str = Field("https://api.openai.com", pattern=r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$")
    """OpenAI Admin API base URL (``/v1/organization/...`` is appended)."""
    anthropic_base_url: str = Field("https://api.anthropic.com", pattern=r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$")
    """Anthropic Admin API base URL (``/v1/organizations/...`` is appended)."""
    quantity_tolerance_pct: Decimal = Field(Decimal("0.5"), ge=0, le=100)
    """Billed and ledger token counts of a kind agree within this percentage."""
    money_tolerance_pct: Decimal = Field(Decimal("1"), ge=0, le=100)
    """Billed and calculated money agree within this percentage of the calculated amount ..."""
    money_tolerance_usd: Decimal = Field(Decimal("0.01"), ge=0)
    """... or within this many USD, whichever is larger (bills round)."""
    trueup: bool = True
    """Distribute billed money over runs (``billed_cost_usd``) when reconciling. Never changes ``cost_usd``."""
    pull_timeout_seconds: float = Field(60.0, gt=0, le=600)
    """Timeout of one admin-API request."""
    pull_max_attempts: int = Field(6, ge=1, le=50)
    """Attempts per admin-API page (429 and 5xx are retried, honouring Retry-After)."""
    pull_max_wait_seconds: float = Field(300.0, ge=0, le=3600)
    """Longest total wait for retries of one page; past it the pull stops and says where to resume."""
    max_upload_bytes: int = Field(512 * MIB, ge=MIB, le=16 * 1024 * MIB)
    """Largest billing export accepted by ``POST /v1/billing/imports``."""

    @field_validator("accounts")
    @classmethod
    def _accounts_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("expected a readable YAML file; none exists at that path")
        return value


class AllocationSettings(Section):
    interval_seconds: float = Field(300.0, ge=1, le=86_400)
    """How often the allocation job looks for pool periods to (re)allocate: new periods, periods
    with runs written since its last look (late runs, outcomes, re-prices), rules changed."""
    lookback_days: int = Field(35, ge=1, le=3660)
    """Periods ending less than this many days ago are kept in step by the job; older ones change
    only through ``otelspend allocate --from --to`` (or ``POST /v1/admin/allocate``)."""
    max_upload_bytes: int = Field(16 * MIB, ge=1024, le=1024 * MIB)
    """Largest revenue CSV accepted by ``POST /v1/revenue``."""


class ExportSettings(Section):
    sub_account: Literal["team", "tenant"] = "team"
    """Which run attribution is the FOCUS SubAccount of exported rows (team or tenant)."""
    billing_account: str = Field("default", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@\- ]+$")
    """FOCUS BillingAccountId of exported rows that no billing account mapping places elsewhere."""
    schedule_dir: Path | None = None
    """Write a FOCUS export of every completed UTC day into this directory (one file per day, named
    after it; an existing file is left as it is). Default: no scheduled export."""
    schedule_format: Literal["csv", "parquet"] = "csv"
    """File format of scheduled exports."""
    schedule_granularity: Literal["hour", "day"] = "day"
    """Charge period of scheduled exports' rows: hour or day."""
    schedule_days: int = Field(3, ge=1, le=400)
    """Completed days the scheduled export keeps written (missing ones are written on the next pass)."""
    schedule_delay_hours: float = Field(2.0, ge=0, le=168)
    """A day is exported this long after it ends, so late spans and open runs have settled."""
    schedule_interval_seconds: float = Field(300.0, ge=1, le=86_400)
    """How often the scheduled export looks for days to write."""


class Settings(Section):
    """Everything one otelspend process is configured with (``load_settings`` builds it; README "Configuration")."""

    data_dir: Path = Path("./data")
    """Where the WAL (and the default embedded chDB) live."""
    node_id: str = Field(default_factory=socket.gethostname, min_length=1)
    """Identifies this replica in stored rows (crash recovery only rebuilds its own runs)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log verbosity. Start and stop are logged once; nothing is logged per span."""
    rate_card: Path | None = None
    """YAML rate card overriding / extending genai-prices."""
    ownership: Path | None = None
    """YAML ownership rules (team, cost center, product, feature, owner)."""
    cost_pools: Path | None = None
    """YAML shared-cost pools (and units of value), allocated to runs by declared rules;
    reloaded on change like the rate card."""
    otlp: OtlpSettings = OtlpSettings()
    api: ApiSettings = ApiSettings()
    sql: SqlSettings = SqlSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    wal: WalSettings = WalSettings()
    pipeline: PipelineSettings = PipelineSettings()
    runs: RunsSettings = RunsSettings()
    billing: BillingSettings = BillingSettings()
    allocation: AllocationSettings = AllocationSettings()
    alerts: AlertsSettings = AlertsSettings()
    budgets: BudgetsSettings = BudgetsSettings()
    controls: ControlsSettings = ControlsSettings()
    export: ExportSettings = ExportSettings()

    @property
    def wal_dir(self) -> Path:
        """The write-ahead log's directory (``wal.dir``, else ``<data_dir>/wal``)."""
        return self.wal.dir or self.data_dir / "wal"

    @field_validator("rate_card", "ownership", "cost_pools")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("expected a readable YAML file; none exists at that path")
        return value


def env_names() -> dict[str, tuple[str, ...]]:
    """Every accepted ``OTELSPEND_*`` variable and the settings path it sets."""
    names: dict[str, tuple[str, ...]] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            for sub in annotation.model_fields:
                names[f"{ENV_PREFIX}{name}_{sub}".upper()] = (name, sub)
        else:
            names[f"{ENV_PREFIX}{name}".upper()] = (name,)
    return names


def secret_file_env_names() -> dict[str, tuple[str, ...]]:
    """``OTELSPEND_<...>_FILE`` for every secret setting: the file holding its value."""
    return {f"{name}_FILE": path for name, path in env_names().items() if is_secret_path(Settings, path)}


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from file, environment and ``overrides`` (nested dict, e.g. flags).

    Raises ConfigError listing every invalid or unknown key with its source.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    sources: dict[tuple[str, ...], str] = {}
    raw: dict[str, Any] = {}
    config_file = config_file or environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file:
        raw = _from_config_file(Path(config_file), sources, problems)
    _from_environment(environ, raw, sources, problems)
    if overrides:
        raw = _deep_merge(raw, overrides)
        _record_sources(overrides, (), "flag", sources)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(str(part) for part in error["loc"])
            problems.append(_describe(loc, error, sources))
        settings = None
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    assert settings is not None
    return settings


def _from_config_file(path: Path, sources: dict[tuple[str, ...], str], problems: list[str]) -> dict[str, Any]:
    """The settings tree of a YAML file, secret files read in; a file that cannot be used stops here."""
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: {yaml_problem(exc)}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping of settings at the top level")
    _record_sources(loaded, (), f"config file {path}", sources)
    return _read_secret_files(loaded, Settings, (), f"config file {path}", sources, problems)


def _from_environment(
    environ: Mapping[str, str], raw: dict[str, Any], sources: dict[tuple[str, ...], str], problems: list[str]
) -> None:
    """Set every ``OTELSPEND_*`` variable (and ``*_FILE`` secret file) into ``raw``; unknown ones are problems."""
    known = env_names()
    from_files = secret_file_env_names()
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        path_, source = known.get(name), f"env {name}"
        if path_ is None and name in from_files:
            path_, source = from_files[name], f"env {name}, file {value}"
            if name.removesuffix("_FILE") in environ:
                problems.append(f"{name}: set either {name.removesuffix('_FILE')} or {name}, not both")
                continue
            try:
                value = read_secret_file(Path(value))
            except SecretFileError as exc:
                problems.append(f"{'.'.join(path_)} ({source}): {exc}")
                continue
        if path_ is None:
            hint = difflib.get_close_matches(name, [*known, *from_files], n=1)
            problems.append(f"{name}: unknown setting" + (f" (did you mean {hint[0]}?)" if hint else ""))
            continue
        _set_path(raw, path_, value)
        sources[path_] = source


def _read_secret_files(
    tree: Mapping[str, Any],
    model: type[BaseModel],
    prefix: tuple[str, ...],
    label: str,
    sources: dict[tuple[str, ...], str],
    problems: list[str],
) -> dict[str, Any]:
    """``tree`` with every ``<secret>_file: PATH`` key of the YAML replaced by ``<secret>: content``."""
    resolved: dict[str, Any] = {}
    for key, value in tree.items():
        key = str(key)
        stem = key.removesuffix("_file")
        field = model.model_fields.get(key)
        if field is None and stem != key and stem in model.model_fields:
            if not holds_secret(model.model_fields[stem].annotation):
                resolved[key] = value  # rejected as an unknown key: only secrets come from files
            elif stem in tree:
                problems.append(f"{'.'.join((*prefix, key))} ({label}): set either {stem} or {key}, not both")
            else:
                source = f"{label}, file {value}"
                try:
                    resolved[stem] = read_secret_file(Path(str(value)))
                    sources[(*prefix, stem)] = source
                except SecretFileError as exc:
                    problems.append(f"{'.'.join((*prefix, stem))} ({source}): {exc}")
            continue
        annotation = bare(field.annotation) if field is not None else None
        if isinstance(value, Mapping) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            value = _read_secret_files(value, annotation, (*prefix, key), label, sources, problems)
        elif isinstance(value, list) and annotation is not None and holds_secret(annotation):
            item_type = bare(annotation_at(model, (key, 0)))
            if isinstance(item_type, type) and issubclass(item_type, BaseModel):
                value = [
                    _read_secret_files(item, item_type, (*prefix, key, str(i)), label, sources, problems)
                    if isinstance(item, Mapping)
                    else item
                    for i, item in enumerate(value)
                ]
        resolved[key] = value
    return resolved


def _record_sources(
    tree: Mapping[str, Any], prefix: tuple[str, ...], label: str, sources: dict[tuple[str, ...], str]
) -> None:
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            _record_sources(value, path, label, sources)
        else:
            sources[path] = label


def _describe(loc: tuple[str, ...], error: Mapping[str, Any], sources: dict[tuple[str, ...], str]) -> str:
    key = ".".join(loc)
    source = next((sources[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in sources), "default")
    if error["type"] == "extra_forbidden":
        parent: type[Section] = Settings
        for part in loc[:-1]:
            field = parent.model_fields.get(part)
            annotation = field.annotation if field else None
            if not (isinstance(annotation, type) and issubclass(annotation, Section)):
                break
            parent = annotation
        hint = difflib.get_close_matches(loc[-1], parent.model_fields, n=1)
        return f"{key} ({source}): unknown key" + (f" (did you mean {hint[0]}?)" if hint else "")
    message = str(error["msg"]).removeprefix("Value error, ")
    if is_secret_path(Settings, loc):
        value = shown(error.get("input"), annotation_at(Settings, loc))
    else:
        value = repr(error.get("input"))
    return f"{key} ({source}) = {value}: {message}"


def reference_markdown() -> str:
    """The configuration reference table (README), generated from the model."""
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    docs = _field_docs(Settings)
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            section_docs = _field_docs(annotation)
            for sub, sub_field in annotation.model_fields.items():
                rows.append(_reference_row(f"{name}.{sub}", f"{name}_{sub}", sub_field, section_docs.get(sub, "")))
        else:
            rows.append(_reference_row(name, name, field, docs.get(name, "")))
    return "\n".join(rows)


def _reference_row(key: str, env: str, field: Any, doc: str) -> str:
    if field.default_factory is not None:
        default = "host name"
    elif field.default is None or field.default == []:
        default = ""
    else:
        default = str(field.default)  # a secret's str() is its redacted form
    default_cell = f"`{default}`" if default else ""
    doc = " ".join(doc.split()).replace("|", "\\|")
    env_cell = f"`{ENV_PREFIX}{env.upper()}`"
    if holds_secret(field.annotation):
        env_cell += f" or `{ENV_PREFIX}{env.upper()}_FILE`"
        doc = f"**Secret** (redacted wherever shown, see [Secrets](#secrets)). {doc}"
    return f"| `{key}` | {env_cell} | {default_cell} | {doc} |"


def _field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Attribute docstrings (the string literal after each field) of a model class."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for previous, node in itertools.pairwise(body):
        if (
            isinstance(previous, ast.AnnAssign)
            and isinstance(previous.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[previous.target.id] = node.value.value
    return docs
