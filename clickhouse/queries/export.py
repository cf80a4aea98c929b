"""SQL of the FOCUS export: the ledger's priced calls as charges, per charge kind and exact rate.

One query per export period batch (a UTC day): the runs that started in it (``runs FINAL``, the
rows in force), joined to their counted calls (the latest version of each span, ``call_role =
'call'``: views are not counted, duplicates collapse), each call split into its cost components. A component's
quantity is the leaf the rate card priced it by: cache reads, cache writes and reasoning tokens
are their own kinds only where the call paid a separate price for them (a positive component);
otherwise they were billed at the input / output rate and stay in those kinds, as on the bill.
Each (call, kind) also gets its exact rate, cost / quantity reduced by their gcd, so calls
charged different prices never share a row and a row's cost is always rate x quantity.
"""

from __future__ import annotations

from typing import Any, Literal

from otelspend.clickhouse.client import Store

Granularity = Literal["hour", "day"]
BUCKET: dict[str, str] = {"hour": "toStartOfHour", "day": "toStartOfDay"}
"""Whitelisted bucket functions (identifiers never come from a request)."""

_FEMTO = "1000000000000000"

_CHARGES = """
WITH r AS (
    SELECT run_id, start_time, end_time, team, cost_center, tenant, feature, workflow_type, environment,
           ingest_token, service
    FROM {db}.runs FINAL
    WHERE sign = 1 AND start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
)
SELECT
    toUnixTimestamp({bucket}(r.start_time)) AS period,
    k.provider AS provider, k.model AS model, k.price_source AS price_source, k.price_entry AS price_entry,
    k.price_effective_from AS price_effective_from,
    r.workflow_type, r.tenant, r.feature, r.team, r.cost_center, r.environment, {owner},
    k.kind AS kind, k.rate_num AS rate_num, k.rate_den AS rate_den,
    sum(k.q) AS quantity,
    sum(k.c) AS cost,
    uniqExact(k.trace_id) AS runs,
    count() AS calls
FROM
(
    SELECT trace_id, provider, model, price_source, price_entry, price_effective_from, kind, q, c,
        -- gcd() refuses a zero argument (every branch is evaluated): keep both sides positive in it.
        if(c = 0, greatest(q, 1), if(q = 0, c, gcd(greatest(c, 1), greatest(q, 1)))) AS g,
        intDiv(c, g) AS rate_num,
        intDiv(q, g) AS rate_den
    FROM
    (
        SELECT trace_id, provider, model, price_source, price_entry, price_effective_from,
            toInt64(ifNull(cost_input_usd, 0) * {femto}) AS c_input,
            toInt64(ifNull(cost_cache_read_usd, 0) * {femto}) AS c_cached,
            toInt64(ifNull(cost_cache_write_usd, 0) * {femto}) AS c_write,
            toInt64(ifNull(cost_output_usd, 0) * {femto}) AS c_output,
            toInt64(ifNull(cost_reasoning_usd, 0) * {femto}) AS c_reasoning,
            toInt64(ifNull(cost_request_usd, 0) * {femto}) AS c_request,
            toInt64(ifNull(cost_compute_usd, 0) * {femto}) AS c_compute,
            toInt64(if(c_cached > 0, ifNull(cache_read_tokens, 0), 0)) AS q_cached,
            toInt64(if(c_write > 0, ifNull(cache_write_tokens, 0), 0)) AS q_write,
            toInt64(if(c_reasoning > 0, ifNull(reasoning_tokens, 0), 0)) AS q_reasoning,
            toInt64(ifNull(input_tokens, 0)) - q_cached - q_write AS q_input,
            toInt64(ifNull(output_tokens, 0)) - q_reasoning AS q_output,
            toInt64(c_request > 0) AS q_request,
            toInt64(if(c_compute > 0,
                greatest(1, round(ifNull(compute_seconds, duration_ns / 1e9 * ifNull(gpu_count, 1)) * 1e6)), 0))
                AS q_compute
        FROM ({latest_spans})
        WHERE call_role = 'call' AND cost_usd IS NOT NULL
    )
    ARRAY JOIN
        [1, 2, 3, 4, 5, 6, 7] AS kind,
        [q_input, q_cached, q_write, q_output, q_reasoning, q_request, q_compute] AS q,
        [c_input, c_cached, c_write, c_output, c_reasoning, c_request, c_compute] AS c
    WHERE q != 0 OR c != 0
) AS k
INNER JOIN r ON k.trace_id = r.run_id
GROUP BY period, provider, model, price_source, price_entry, price_effective_from, r.workflow_type, r.tenant,
         r.feature, r.team, r.cost_center, r.environment, {owner_group} kind, rate_num, rate_den
ORDER BY period, provider, model, r.team, r.tenant, kind, price_entry, rate_num, rate_den
"""

# The stored version of each span of the window's runs: the highest version of every (trace_id,
# span_id), as FINAL would merge it (a re-priced or re-classified span is a newer version), found
# by a sort of the window's spans instead: FINAL on the time-filtered spans of a 10M-span ledger
# merges every part's range (measured: 2.6x slower for a day of 330k spans).
_LATEST_SPANS = """
SELECT trace_id, span_id, version, call_role, provider, model, price_source, price_entry, price_effective_from,
       cost_usd, cost_input_usd, cost_cache_read_usd, cost_cache_write_usd, cost_output_usd, cost_reasoning_usd,
       cost_request_usd, cost_compute_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, compute_seconds, duration_ns, gpu_count
FROM {db}.spans
WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time <= {span_end:DateTime64(9, 'UTC')}
  AND trace_id IN (SELECT run_id FROM {db}.runs FINAL WHERE sign = 1
                   AND start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')})
ORDER BY trace_id, span_id, version DESC
LIMIT 1 BY trace_id, span_id
"""

_LAST_END = """
SELECT max(end_time) FROM {db}.runs FINAL
WHERE sign = 1 AND start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
"""

_UNPRICED = """
SELECT count() AS calls, sum(toInt64(ifNull(input_tokens, 0))) AS input_tokens,
       sum(toInt64(ifNull(output_tokens, 0))) AS output_tokens
FROM ({latest_spans})
WHERE call_role = 'call' AND cost_usd IS NULL
"""

_RUN_DAYS = """
SELECT DISTINCT toUnixTimestamp(toStartOfDay(start_time)) AS day FROM {db}.runs
WHERE start_time >= {start:DateTime64(9, 'UTC')} AND start_time < {end:DateTime64(9, 'UTC')}
ORDER BY day
"""

CHARGE_COLUMNS: tuple[str, ...] = (
    "period", "provider", "model", "price_source", "price_entry", "price_effective_from", "workflow_type", "tenant",
    "feature", "team", "cost_center", "environment", "ingest_token", "service", "kind", "rate_num", "rate_den",
    "quantity", "cost", "runs", "calls",
)  # fmt: skip


def _ts(ns: int) -> Any:
    import datetime as dt

    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=rest // 1000)


def run_days(store: Store, start_ns: int, end_ns: int) -> list[int]:
    """UTC days (unix seconds) on which some run of the window started (others need no query)."""
    sql = _RUN_DAYS.replace("{db}", store.database)
    return [int(row[0]) for row in store.rows(sql, {"start": _ts(start_ns), "end": _ts(end_ns)})]


def last_run_end(store: Store, start_ns: int, end_ns: int) -> Any:
    """The latest end of the runs that started in the window (None when there are none)."""
    value = store.scalar(_LAST_END.replace("{db}", store.database), {"start": _ts(start_ns), "end": _ts(end_ns)})
    return value


def charges(
    store: Store, start_ns: int, end_ns: int, granularity: Granularity, *, owner_fields: bool = False
) -> list[tuple[Any, ...]]:
    """Charge rows (``CHARGE_COLUMNS``) of the runs that started in ``[start_ns, end_ns)``.

    ``owner_fields``: also split by the runs' ingest token and service (what a billing account
    mapping matches on); otherwise both columns are ''.
    """
    span_end = last_run_end(store, start_ns, end_ns)
    if span_end is None or span_end.timestamp() == 0:
        return []
    owner = "r.ingest_token, r.service" if owner_fields else "'' AS ingest_token, '' AS service"
    sql = (
        _CHARGES.replace("{latest_spans}", _LATEST_SPANS)
        .replace("{db}", store.database)
        .replace("{bucket}", BUCKET[granularity])
        .replace("{femto}", _FEMTO)
        .replace("{owner_group}", "r.ingest_token, r.service," if owner_fields else "")
        .replace("{owner}", owner)
    )
    return store.rows(sql, {"start": _ts(start_ns), "end": _ts(end_ns), "span_end": span_end})


def unpriced(store: Store, start_ns: int, end_ns: int) -> dict[str, int]:
    """Counted calls with no price (cost NULL) among the window's runs, with their tokens."""
    span_end = last_run_end(store, start_ns, end_ns)
    if span_end is None or span_end.timestamp() == 0:
        return {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    sql = _UNPRICED.replace("{latest_spans}", _LATEST_SPANS).replace("{db}", store.database)
    rows = store.dicts(sql, {"start": _ts(start_ns), "end": _ts(end_ns), "span_end": span_end})
    return {key: int(value or 0) for key, value in rows[0].items()} if rows else {}
