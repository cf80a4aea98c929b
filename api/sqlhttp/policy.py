"""What the SQL endpoint lets a client do: read, format, and lower its limits.

Pure. Two layers stand behind each other (the engine's own ``readonly = 1`` is the third,
applied by ``otelspend.clickhouse.readonly``):

* Statements: only SELECT / WITH / SHOW / DESCRIBE / EXISTS / EXPLAIN run; SET and USE are
  kept in the HTTP session; everything else (INSERT, ALTER, DROP, CREATE, SYSTEM, KILL,
  OPTIMIZE, GRANT, ...) is refused. ``INTO OUTFILE`` is refused. Calls to functions that reach
  outside the store (``file``, ``url``, ``s3``, ``remote``, ``mysql``, ``executable``, ...) and
  to any table function not in ``ALLOWED_TABLE_FUNCTIONS`` are refused. Measured on chDB
  with ``readonly = 1`` (tests/sqlhttp/test_engine_readonly.py): the engine refuses writes,
  DDL, SYSTEM and the file/url/remote table functions by itself, but still runs ``KILL QUERY``
  (every chDB query runs as one user, ingest included), the scalar ``file()`` function and
  ``INTO OUTFILE``, so those three have to be refused here.
* Settings: clients may set output and formatting settings (``ALLOWED_SETTINGS`` and
  ``output_format_*``) and may lower the limits; nothing else. A limit asked above the
  configured ceiling (or 0, unlimited) is lowered to the ceiling when it comes in the URL
  (clients send their own defaults there, e.g. Grafana's ``max_execution_time``) and refused
  when it is written in the SQL (``SET``, ``SETTINGS``): the engine cannot be told to ignore it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from otelspend.api.sqlhttp import errors
from otelspend.api.sqlhttp.errors import ClickHouseError
from otelspend.api.sqlhttp.statement import Statement

READ_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
SESSION_KINDS = frozenset({"SET", "USE"})
OTHER_KINDS = frozenset(
    {"INSERT", "ALTER", "DROP", "CREATE", "SYSTEM", "KILL", "OPTIMIZE", "TRUNCATE", "RENAME", "DETACH", "ATTACH",
     "GRANT", "REVOKE", "DELETE", "UPDATE", "BACKUP", "RESTORE", "CHECK", "EXCHANGE", "UNDROP", "MOVE", "WATCH",
     "BEGIN", "COMMIT", "ROLLBACK", "REPLACE", "EXECUTE", "UPSERT"}
)  # fmt: skip
"""ClickHouse statements that write, change the schema or administer: refused as READONLY.
Any other first word is not a statement ClickHouse knows: a SYNTAX_ERROR, as it would answer."""

ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values",
     "generaterandom", "view", "viewifpermitted", "merge", "null", "format"}
)  # fmt: skip
"""Table functions that only read the store or generate rows (lower case). ``format`` is
also a string function; its table-function form is refused by the engine in readonly mode."""

OUTWARD_FUNCTIONS = frozenset(
    {"file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn", "hdfs", "hdfscluster",
     "azureblobstorage", "azureblobstoragecluster", "remote", "remotesecure", "cluster", "clusterallreplicas",
     "mysql", "postgresql", "sqlite", "mongodb", "redis", "jdbc", "odbc", "executable", "input", "python",
     "arrowstream", "filesystem", "iceberg", "icebergs3", "icebergazure", "icebergHDFS".lower(), "iceberglocal",
     "icebergcluster", "deltalake", "deltalakelocal", "deltalakes3", "deltalakeazure", "hudi", "paimon",
     "paimonlocal", "bigquery", "ytsaurus", "prometheusquery", "prometheusqueryrange", "arrowflight",
     "catboostevaluate", "dictionary"}
)  # fmt: skip
"""Functions and table functions that read files, URLs, other servers or processes, or
Python objects of this process (lower case). A floor: every other table function the engine
knows and ``ALLOWED_TABLE_FUNCTIONS`` does not list is refused too."""

ALLOWED_SETTINGS = frozenset(
    {"date_time_output_format", "date_time_input_format", "interval_output_format", "session_timezone",
     "bool_true_representation", "bool_false_representation", "join_use_nulls", "aggregate_functions_null_for_empty",
     "transform_null_in", "cast_keep_nullable", "cast_string_to_dynamic_use_inference", "final", "extremes",
     "prefer_column_name_to_alias", "joined_subquery_requires_alias", "union_default_mode", "enable_analyzer",
     "allow_experimental_analyzer", "precise_float_parsing", "decimal_check_overflow", "log_comment",
     "max_block_size", "limit", "offset", "format_csv_delimiter", "format_csv_allow_single_quotes",
     "format_csv_allow_double_quotes", "format_csv_null_representation", "format_tsv_null_representation",
     "date_time_overflow_behavior", "use_client_time_zone"}
)  # fmt: skip
"""Settings that change how results are computed or printed, never what may be read."""

ALLOWED_PREFIXES = ("output_format_",)
REFUSED_NAMES = frozenset({"output_format_schema"})  # writes the inferred schema to a file
FORCED = {"result_overflow_mode": "throw", "timeout_overflow_mode": "throw"}
"""A limit cuts the query with an error, never silently truncates it."""

_RAW_NET = re.compile(r"\bfile\s*\(|\binto\s+outfile\b|^\W*kill\b", re.IGNORECASE)
"""Belt and braces over the raw text for the three things chDB runs even in readonly mode,
in case a statement is tokenized differently here and in the engine."""


@dataclass(frozen=True)
class Limits:
    """Ceilings applied to every query (ClickHouse settings of the same meaning)."""

    max_execution_time: float
    max_memory_usage: int
    max_result_rows: int
    max_result_bytes: int
    max_threads: int

    def ceiling(self, name: str) -> float:
        """The limit named ``name`` (a ClickHouse setting)."""
        value: float = getattr(self, name)
        return value


LIMIT_NAMES = frozenset(Limits.__dataclass_fields__)


class Policy:
    """What a query may do: read-only statements only, no outward table functions, known settings
    within the endpoint's limits (``check`` refuses the rest with ClickHouse's error).
    """

    def __init__(
        self, limits: Limits, engine_table_functions: Iterable[str] = (), engine_settings: Iterable[str] = ()
    ) -> None:
        self.limits = limits
        known = {name.lower() for name in engine_table_functions}
        self.refused_functions = (known - ALLOWED_TABLE_FUNCTIONS) | OUTWARD_FUNCTIONS
        self.known_settings = frozenset(engine_settings)

    # -- statements ------------------------------------------------------------------------

    def check(self, statement: Statement, sql: str) -> None:
        """Raise ClickHouseError unless ``statement`` may run (or be kept in the session)."""
        kind = statement.kind
        if kind not in READ_KINDS | SESSION_KINDS | OTHER_KINDS:
            raise ClickHouseError.of(
                errors.SYNTAX_ERROR,
                f"Syntax error: {kind or 'a statement without a verb'} is not a statement ClickHouse knows "
                "(expected SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN, SET or USE)",
            )
        if kind not in READ_KINDS | SESSION_KINDS or (kind == "SET" and not statement.settings):
            shown = kind or "this statement"
            if kind == "SET":
                shown = " ".join(t.text.upper() for t in statement.tokens[:2])
            raise ClickHouseError.of(
                errors.READONLY,
                f"Cannot execute query in readonly mode: otelspend's SQL endpoint only reads ({shown} refused; "
                "allowed: SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN, SET of a permitted setting, USE)",
            )
        if statement.into_outfile:
            raise ClickHouseError.of(errors.INTO_OUTFILE_NOT_ALLOWED, "INTO OUTFILE is not allowed")
        for name in statement.calls:
            self._check_call(name)
        if _RAW_NET.search(sql):
            raise ClickHouseError.of(
                errors.READONLY,
                "Cannot execute query in readonly mode: the query text calls file(), writes INTO OUTFILE or KILLs "
                "a query (refused even inside what looks like a string or a comment)",
            )

    def _check_call(self, name: str) -> None:
        lowered = name.lower()
        if lowered in OUTWARD_FUNCTIONS:
            raise ClickHouseError.of(
                errors.READONLY,
                f"Cannot execute query in readonly mode: {name}() reaches outside the store (files, URLs, other "
                "servers, processes) and is refused by otelspend's SQL endpoint",
            )
        if lowered in self.refused_functions:
            allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS))
            raise ClickHouseError.of(
                errors.READONLY,
                f"Cannot execute query in readonly mode: table function {name}() is not available on otelspend's "
                f"SQL endpoint (allowed: {allowed})",
            )

    # -- settings --------------------------------------------------------------------------

    def setting(self, name: str, value: str, *, from_url: bool) -> str:
        """The value to apply for a client's ``name = value``; raises ClickHouseError if refused."""
        if self.known_settings and name not in self.known_settings:
            raise ClickHouseError.of(errors.UNKNOWN_SETTING, f"Unknown setting '{name}'")
        if name in LIMIT_NAMES:
            return self._limit(name, value, from_url=from_url)
        if name in FORCED:
            if value.strip().strip("'").lower() != FORCED[name]:
                raise _refused(name, f"it stays {FORCED[name]!r}: a query over a limit fails, it is never cut short")
            return FORCED[name]
        if name == "readonly":
            if value.strip() not in ("1", "true"):
                raise _refused(name, "every query runs with readonly = 1")
            return "1"
        if name in ALLOWED_SETTINGS or (name.startswith(ALLOWED_PREFIXES) and name not in REFUSED_NAMES):
            return value
        raise _refused(
            name,
            "clients may set output and formatting settings (output_format_*, date_time_output_format, "
            "session_timezone, ...) and lower the limits (max_execution_time, max_memory_usage, max_result_rows, "
            "max_result_bytes, max_threads)",
        )

    def _limit(self, name: str, value: str, *, from_url: bool) -> str:
        ceiling = self.limits.ceiling(name)
        text = value.strip().strip("'").lower()
        if name == "max_threads" and text.startswith("auto"):
            asked = 0.0
        else:
            try:
                asked = float(text)
            except ValueError:
                raise _refused(name, f"expected a number, got {value!r}") from None
        if asked < 0:
            raise _refused(name, f"expected a number of at least 0, got {value!r}")
        if asked == 0 or asked > ceiling:
            if not from_url:
                shown = _number(asked) if asked else "0 (unlimited)"
                raise _refused(
                    name, f"{shown} is above this endpoint's ceiling of {_number(ceiling)} (sql settings); ask for less"
                )
            asked = ceiling
        return _number(asked)

    def engine_settings(self, chosen: Mapping[str, str]) -> list[tuple[str, str]]:
        """The settings for one query: the client's (vetted), then every limit (the client's
        if lower), then the forced overflow modes."""
        ordered = [(k, v) for k, v in chosen.items() if k not in LIMIT_NAMES and k not in FORCED and k != "readonly"]
        for name in sorted(LIMIT_NAMES):
            ordered.append((name, chosen.get(name, _number(self.limits.ceiling(name)))))
        ordered.extend(FORCED.items())
        return ordered


def _refused(name: str, why: str) -> ClickHouseError:
    return ClickHouseError.of(errors.READONLY, f"Cannot modify '{name}' setting in readonly mode: {why}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
