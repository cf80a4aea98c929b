"""The policy, without an engine: which statements, calls and settings pass."""

from __future__ import annotations

import pytest

from otelspend.api.sqlhttp.errors import ClickHouseError
from otelspend.api.sqlhttp.policy import Limits, Policy
from otelspend.api.sqlhttp.statement import analyze

LIMITS = Limits(
    max_execution_time=30, max_memory_usage=512 << 20, max_result_rows=1000, max_result_bytes=1 << 20, max_threads=1
)
# The engine's own list is passed in production (system.table_functions); a few suffice here.
POLICY = Policy(LIMITS, ["numbers", "values", "format", "merge", "loop", "fuzzJSON", "mergeTreeIndex", "file", "url"])


def refusal(sql: str) -> ClickHouseError:
    with pytest.raises(ClickHouseError) as caught:
        POLICY.check(analyze(sql), sql)
    return caught.value


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1", id="select"),
        pytest.param("  (SELECT 1) UNION ALL (SELECT 2);", id="parenthesised-with-semicolon"),
        pytest.param("WITH x AS (SELECT 1) SELECT * FROM x", id="with"),
        pytest.param("SHOW TABLES", id="show"),
        pytest.param("DESCRIBE TABLE runs", id="describe"),
        pytest.param("DESC runs", id="desc"),
        pytest.param("EXISTS TABLE runs", id="exists"),
        pytest.param("EXPLAIN SELECT 1", id="explain"),
        pytest.param("SELECT * FROM numbers(10)", id="numbers"),
        pytest.param("SELECT * FROM values('a UInt8', 1)", id="values"),
        pytest.param("SELECT format('{} {}', 'a', 'b')", id="format-string-function"),
        pytest.param("SELECT profile(1)", id="name-ending-in-file"),
        pytest.param("SELECT settings FROM t", id="column-named-settings"),
        pytest.param("SELECT 1 FORMAT JSON", id="format-clause"),
        pytest.param("SET max_result_rows = 10", id="lower-a-limit"),
        pytest.param("USE otelspend", id="use"),
    ],
)
def test_reads_pass(sql):
    POLICY.check(analyze(sql), sql)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        pytest.param("INSERT INTO spans VALUES (1)", "INSERT", id="insert"),
        pytest.param("ALTER TABLE spans DELETE WHERE 1", "ALTER", id="alter"),
        pytest.param("DROP TABLE spans", "DROP", id="drop"),
        pytest.param("CREATE TABLE x (a UInt8) ENGINE = Memory", "CREATE", id="create"),
        pytest.param("SYSTEM FLUSH LOGS", "SYSTEM", id="system"),
        pytest.param("KILL QUERY WHERE 1", "KILL", id="kill"),
        pytest.param("OPTIMIZE TABLE spans FINAL", "OPTIMIZE", id="optimize"),
        pytest.param("TRUNCATE TABLE spans", "TRUNCATE", id="truncate"),
        pytest.param("RENAME TABLE a TO b", "RENAME", id="rename"),
        pytest.param("DETACH TABLE spans", "DETACH", id="detach"),
        pytest.param("ATTACH TABLE spans", "ATTACH", id="attach"),
        pytest.param("GRANT SELECT ON *.* TO x", "GRANT", id="grant"),
        pytest.param("REVOKE SELECT ON *.* FROM x", "REVOKE", id="revoke"),
        pytest.param("DELETE FROM spans WHERE 1", "DELETE", id="lightweight-delete"),
        pytest.param("UPDATE spans SET a = 1 WHERE 1", "UPDATE", id="update"),
        pytest.param("BACKUP TABLE spans TO Disk('d', 'x')", "BACKUP", id="backup"),
        pytest.param("CHECK TABLE spans", "CHECK", id="check"),
        pytest.param("EXCHANGE TABLES a AND b", "EXCHANGE", id="exchange"),
        pytest.param("SET ROLE admin", "SET ROLE", id="set-role"),
        pytest.param("/* comment */ -- x\n  insert into spans values (1)", "INSERT", id="insert-after-comments"),
    ],
)
def test_writes_and_admin_are_refused(sql, kind):
    error = refusal(sql)
    assert (error.code, error.name) == (164, "READONLY")
    assert f"({kind} refused" in error.message and "only reads" in error.message


OUTWARD = ["file", "url", "s3", "remote", "remoteSecure", "cluster", "clusterAllReplicas", "mysql", "postgresql",
           "executable", "hdfs", "jdbc", "odbc", "azureBlobStorage", "input", "sqlite", "mongodb", "redis", "gcs",
           "s3Cluster", "urlCluster", "fileCluster", "python", "iceberg", "deltaLake", "filesystem"]  # fmt: skip


@pytest.mark.parametrize("name", OUTWARD)
@pytest.mark.parametrize(
    "template",
    [
        pytest.param("SELECT * FROM {f}('x')", id="from"),
        pytest.param("SELECT * FROM runs JOIN {f}('x') USING (run_id)", id="join"),
        pytest.param("SELECT (SELECT count() FROM {f}('x'))", id="subquery"),
        pytest.param("SELECT `{f}`('x')", id="backquoted-name"),
        pytest.param("SELECT {upper}('x')", id="upper-case"),
        pytest.param("SELECT {f} /* c */ ('x')", id="comment-before-paren"),
        pytest.param("DESCRIBE TABLE {f}('x')", id="describe"),
        pytest.param("EXPLAIN SELECT * FROM {f}('x')", id="explain"),
    ],
)
def test_functions_reaching_outside_are_refused(name, template):
    error = refusal(template.format(f=name, upper=name.upper()))
    assert error.name == "READONLY" and f"{name.upper() if 'upper' in template else name}()" in error.message


@pytest.mark.parametrize("name", ["loop", "fuzzJSON", "mergeTreeIndex"])
def test_table_functions_not_listed_are_refused(name):
    error = refusal(f"SELECT * FROM {name}(numbers(1))")
    assert error.name == "READONLY" and "not available" in error.message
    assert "allowed: format, generate_series" in error.message


@pytest.mark.parametrize("sql", ["1 + 1", "SELEC 1", "file('/etc/passwd')"])
def test_what_is_not_a_statement_is_a_syntax_error(sql):
    error = refusal(sql)
    assert (error.code, error.name) == (62, "SYNTAX_ERROR") and "is not a statement ClickHouse knows" in error.message


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1 INTO OUTFILE '/tmp/x'", id="into-outfile"),
        pytest.param("SELECT * FROM runs into   outfile '/tmp/x' TRUNCATE", id="lower-case"),
    ],
)
def test_into_outfile_is_refused(sql):
    error = refusal(sql)
    assert (error.code, error.name, error.message) == (358, "INTO_OUTFILE_NOT_ALLOWED", "INTO OUTFILE is not allowed")


def test_raw_text_net_catches_what_a_different_tokenization_could_hide():
    # Both read as harmless to the lexer (a string, a comment); the net refuses them anyway.
    for sql in ("SELECT 'x' -- file('/etc/passwd')", "SELECT $$ into outfile $$", "SELECT 'file(x)'"):
        assert refusal(sql).name == "READONLY"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param("", "Empty query", id="empty"),
        pytest.param(" -- only a comment\n", "Empty query", id="comment-only"),
        pytest.param("SELECT 1; SELECT 2", "Multi-statements are not allowed", id="multi"),
        pytest.param("SELECT 'open", "unrecognized token", id="unclosed"),
        pytest.param("SELECT 1 SETTINGS max_threads = (1)", "must be set to a literal", id="setting-expression"),
    ],
)
def test_syntax_errors(sql, message):
    with pytest.raises(ClickHouseError) as caught:
        analyze(sql)
    assert caught.value.name == "SYNTAX_ERROR" and message in caught.value.message


@pytest.mark.parametrize(
    ("sql", "fmt"),
    [
        pytest.param("SELECT 1 FORMAT JSON", "JSON", id="clause"),
        pytest.param("SELECT 1 FORMAT JSON SETTINGS max_threads = 1", "JSON", id="clause-then-settings"),
        pytest.param("SELECT format FROM t", None, id="column-named-format"),
        pytest.param("SELECT x AS format FROM t WHERE 1", None, id="alias-named-format"),
        pytest.param("SELECT format('{}', 1)", None, id="string-function"),
        pytest.param("SELECT * FROM (SELECT 1 FORMAT CSV)", None, id="inside-a-subquery"),
    ],
)
def test_format_clause(sql, fmt):
    assert analyze(sql).format == fmt


def test_statement_reads_format_and_settings():
    st = analyze(
        "SELECT format('{}', x) FROM (SELECT 1 AS x FORMAT CSV) "
        "SETTINGS max_threads = 1, output_format_json_quote_decimals='1' FORMAT JSONEachRow"
    )
    assert st.kind == "SELECT" and st.format == "JSONEachRow"
    assert st.settings == (("max_threads", "1"), ("output_format_json_quote_decimals", "1"))
    assert st.calls == ("format", "FROM")  # keywords before a parenthesis count too: harmless, never a refused name
    pairs = analyze("SET a = -1, b = 'x\\'y', c = true, d").settings
    assert pairs == (("a", "-1"), ("b", "x'y"), ("c", "true"), ("d", "1"))


@pytest.mark.parametrize(
    ("name", "value", "from_url", "applied"),
    [
        pytest.param("max_execution_time", "10", False, "10", id="lower-time"),
        pytest.param("max_execution_time", "60", True, "30", id="url-time-clamped"),
        pytest.param("max_execution_time", "0", True, "30", id="url-unlimited-clamped"),
        pytest.param("max_result_rows", "1000", False, "1000", id="at-ceiling"),
        pytest.param("max_threads", "auto", True, "1", id="url-auto-threads"),
        pytest.param("max_execution_time", "2.5", False, "2.5", id="fractional-seconds"),
        pytest.param("result_overflow_mode", "throw", False, "throw", id="overflow-throw"),
        pytest.param("readonly", "1", True, "1", id="readonly-1"),
        pytest.param("output_format_json_quote_64bit_integers", "1", False, "1", id="output-format"),
        pytest.param("date_time_output_format", "iso", True, "iso", id="date-time-output"),
        pytest.param("session_timezone", "Europe/Paris", False, "Europe/Paris", id="session-timezone"),
    ],
)
def test_settings_clients_may_set(name, value, from_url, applied):
    assert POLICY.setting(name, value, from_url=from_url) == applied


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        pytest.param("max_result_rows", "0", "0 (unlimited) is above", id="unlimited-rows"),
        pytest.param("max_result_rows", "1000000", "ceiling of 1000", id="more-rows"),
        pytest.param("max_memory_usage", "0", "above", id="unlimited-memory"),
        pytest.param("max_result_bytes", "99999999999", "above", id="more-bytes"),
        pytest.param("max_threads", "8", "above", id="more-threads"),
        pytest.param("max_execution_time", "soon", "expected a number", id="not-a-number"),
        pytest.param("result_overflow_mode", "break", "stays 'throw'", id="break-results"),
        pytest.param("timeout_overflow_mode", "break", "stays 'throw'", id="break-time"),
        pytest.param("readonly", "0", "readonly = 1", id="readonly-0"),
        pytest.param("readonly", "2", "readonly = 1", id="readonly-2"),
        pytest.param("allow_ddl", "1", "output and formatting settings", id="allow-ddl"),
        pytest.param("max_rows_to_read", "0", "output and formatting", id="other-limit"),
        pytest.param("output_format_schema", "/tmp/schema", "output and formatting", id="schema-file"),
        pytest.param("format_schema", "/etc/passwd", "output and formatting", id="format-schema-file"),
        pytest.param("allow_introspection_functions", "1", "output and formatting", id="introspection"),
        pytest.param("implicit_select", "1", "output and formatting", id="implicit-select"),
    ],
)
def test_protected_settings_are_refused_in_sql(name, value, why):
    with pytest.raises(ClickHouseError) as caught:
        POLICY.setting(name, value, from_url=False)
    assert caught.value.name == "READONLY"
    assert f"Cannot modify '{name}' setting in readonly mode" in caught.value.message
    assert why in caught.value.message


def test_engine_settings_keep_every_limit_and_the_client_choice_when_lower():
    chosen = {"output_format_json_quote_decimals": "1", "max_result_rows": "10"}
    applied = dict(POLICY.engine_settings(chosen))
    assert applied == {
        "output_format_json_quote_decimals": "1",
        "max_execution_time": "30",
        "max_memory_usage": str(512 << 20),
        "max_result_rows": "10",
        "max_result_bytes": str(1 << 20),
        "max_threads": "1",
        "result_overflow_mode": "throw",
        "timeout_overflow_mode": "throw",
    }
