"""A large synthetic ledger, generated fast and consistently into spans, runs and run_calls.

Runs are instances of a few hundred *templates*: a template is a span tree (root, agents,
model calls, tool executions, failures, retries) priced with the real rate card and
computed with the real ``compute_run``, so its run row, breakdown rows (run_mask included)
and span roles are exactly what the pipeline would store. Each run then gets its own ids,
start time, attribution (workflow type, tenant, customer, feature, user, environment,
prompt version, service) and outcome in SQL: ``INSERT ... SELECT FROM numbers(...) JOIN
template`` writes spans, runs and run_calls, and the materialized views fill the rollups.

    python -m bench.synth --spans 1000000 --path /tmp/ledger
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.enrich.pricing import PriceBook, Unpriced
from otelspend.enrich.runs import compute_run, initial_role
from otelspend.record import FEMTO_PER_USD, LITE_FIELDS

MODELS = (
    ("openai", "gpt-4o", 0.2),
    ("openai", "gpt-4o-mini", 0.3),
    ("anthropic", "claude-sonnet-4-5", 0.25),
    ("anthropic", "claude-haiku-4-5", 0.1),
    ("gcp.gemini", "gemini-2.5-flash", 0.13),
    ("acme", "acme-llm-1", 0.02),  # unknown provider: unpriced
)
AGENTS = ("planner", "researcher", "writer", "critic", "router", "support-agent")
TOOLS = ("search", "fetch_url", "sql_query", "calculator", "send_email", "crm_lookup", "code_exec", "vector_search")
WORKFLOW_TYPES = (
    "support_triage", "report_generation", "code_review", "lead_enrichment",
    "invoice_extraction", "chat_assistant", "data_cleanup", "translation",
)  # fmt: skip
OWNERS = {  # workflow type -> (team, cost_center, product)
    "support_triage": ("support", "cc-100", "helpdesk"),
    "report_generation": ("analytics", "cc-200", "insights"),
    "code_review": ("platform", "cc-300", "devtools"),
    "lead_enrichment": ("growth", "cc-400", "crm"),
    "invoice_extraction": ("finance", "cc-500", "back-office"),
    "chat_assistant": ("support", "cc-100", "helpdesk"),
    "data_cleanup": ("analytics", "cc-200", "insights"),
    "translation": ("localization", "cc-600", "content"),
}
MS = 1_000_000
COST_PARTS = ("input", "output", "cache_read", "cache_write", "reasoning", "request", "compute")
"""Cost components in ``enrich.compiled.COMPONENTS`` order (the spans' cost_<part>_usd columns)."""


@dataclass
class Template:
    """A run shape: its spans (as dicts), computed run record and breakdown rows."""

    spans: list[dict[str, Any]]
    run: dict[str, Any]
    calls: list[dict[str, Any]]


def _span(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(LITE_FIELDS)
    base.update(
        trace_id="t" * 32, parent_span_id="", name="", start_time=0, end_time=0, duration_ns=0, status_code="OK",
        status_message="", service_name="svc", span_class="other", operation="", provider="", model="",
        agent_name="", tool_name="", response_id="", error_type="", resend_count=0, retry_count=0, http_method="",
        outcome="", outcome_label="", outcome_time=0, workflow_id="", workflow_type="", tenant="", customer="",
        feature="", user="", environment="", prompt_version="", payload_bytes=0, ingest_token="",
        unpriced_reason="", call_role="other", version=1, resource_id=0, attributes=None, scope_name="",
    )  # fmt: skip
    base.update(values)
    return base


def make_template(rng: random.Random, book: PriceBook, now_ns: int) -> Template:
    """A random run shape (root, agents, priced calls, failures, retries, tools), computed with the real compute_run."""
    spans: list[dict[str, Any]] = []
    root_id = f"{len(spans):016x}"
    root_ms = rng.randint(800, 40_000)
    failed_run = rng.random() < 0.08
    spans.append(
        _span(span_id=root_id, name="workflow", duration_ns=root_ms * MS, status_code="ERROR" if failed_run else "OK")
    )
    clock = 5
    for _ in range(rng.choice((1, 1, 2))):
        agent = rng.choice(AGENTS)
        agent_id = f"{len(spans):016x}"
        agent_ms = max(10, root_ms // 2)
        spans.append(
            _span(
                span_id=agent_id, parent_span_id=root_id, name=f"invoke_agent {agent}", span_class="agent",
                operation="invoke_agent", agent_name=agent, start_time=clock * MS, duration_ns=agent_ms * MS,
            )
        )  # fmt: skip
        for _ in range(rng.choice((1, 2, 2, 3, 4))):
            provider, model = rng.choices([(p, m) for p, m, _ in MODELS], [w for _, _, w in MODELS])[0]
            inp = int(rng.lognormvariate(7.5, 1.0)) + 50
            cached = inp * rng.choice((0, 0, 0, 5, 8)) // 10
            out = int(rng.lognormvariate(5.0, 0.8)) + 5
            resend = rng.choice((0,) * 12 + (1, 2))
            ms = rng.randint(300, 9_000)
            cost: int | None
            parts: list[int | None] = [None] * 7
            reason = entry = ""
            try:
                quote = book.quote(provider, model, model, now_ns)
                parts = list(quote.compiled.cost((inp, cached, 0, 0, out, 0)))
                cost, entry = sum(parts), quote.compiled.entry
            except Unpriced as exc:
                cost, reason = None, exc.reason
            spans.append(
                _span(
                    span_id=f"{len(spans):016x}", parent_span_id=agent_id, name=f"chat {model}", span_class="llm",
                    operation="chat", provider=provider, model=model, start_time=clock * MS, duration_ns=ms * MS,
                    input_tokens=inp, output_tokens=out, cache_read_tokens=cached, cache_write_tokens=0,
                    reasoning_tokens=0, resend_count=resend, payload_bytes=inp * 4, cost_usd=cost,
                    unpriced_reason=reason, call_role="call", cost_parts=parts, price_entry=entry,
                )
            )  # fmt: skip
            clock += ms // 3
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            tool = rng.choice(TOOLS)
            ms = rng.randint(20, 2_500)
            spans.append(
                _span(
                    span_id=f"{len(spans):016x}", parent_span_id=agent_id, name=f"execute_tool {tool}",
                    span_class="tool", operation="execute_tool", tool_name=tool, start_time=clock * MS,
                    duration_ns=ms * MS, status_code="ERROR" if rng.random() < 0.06 else "OK", call_role="tool",
                )
            )  # fmt: skip
            clock += ms // 3
    for span in spans:
        span["end_time"] = span["start_time"] + span["duration_ns"]
        if span["call_role"] == "other":
            span["call_role"] = initial_role(span["span_class"])
    result = compute_run([tuple(s[f] for f in LITE_FIELDS) for s in spans])
    for span in spans:
        span["call_role"] = result.roles.get(span["span_id"], span["call_role"])
    return Template(spans, result.run._asdict(), [call._asdict() for call in result.calls])


# -- storage ------------------------------------------------------------------------------------

_SPAN_TEMPLATE_COLUMNS = (
    ("idx", "UInt32"), ("span_id", "String"), ("parent_span_id", "String"), ("name", "String"),
    ("offset_ns", "UInt64"), ("duration_ns", "UInt64"), ("status_code", "String"), ("span_class", "String"),
    ("operation", "String"), ("provider", "String"), ("model", "String"), ("input_tokens", "Nullable(UInt64)"),
    ("output_tokens", "Nullable(UInt64)"), ("cache_read_tokens", "Nullable(UInt64)"), ("agent_name", "String"),
    ("tool_name", "String"), ("resend_count", "UInt32"), ("payload_bytes", "UInt64"),
    ("cost_usd", "Nullable(Decimal(38, 15))"), ("unpriced_reason", "String"), ("call_role", "String"),
    *((f"cost_{part}_usd", "Nullable(Decimal(38, 15))") for part in COST_PARTS), ("price_entry", "String"),
)  # fmt: skip
_RUN_TEMPLATE_COLUMNS = (
    ("duration_ms", "UInt64"), ("end_offset_ns", "UInt64"), ("status", "String"), ("spans", "UInt32"),
    ("llm_calls", "UInt32"), ("tool_calls", "UInt32"), ("tool_failures", "UInt32"), ("agent_invocations", "UInt32"),
    ("errors", "UInt32"), ("retries", "UInt32"), ("retry_loop", "UInt8"), ("input_tokens", "UInt64"),
    ("output_tokens", "UInt64"), ("cache_read_tokens", "UInt64"), ("payload_bytes", "UInt64"),
    ("cost_usd", "Nullable(Decimal(38, 15))"), ("priced_calls", "UInt32"), ("unpriced_calls", "UInt32"),
    ("models", "Array(String)"), ("providers", "Array(String)"), ("agents", "Array(String)"),
    ("tools", "Array(String)"),
)  # fmt: skip
_CALL_TEMPLATE_COLUMNS = (
    ("model", "String"), ("provider", "String"), ("agent", "String"), ("tool", "String"), ("operation", "String"),
    ("payload_band", "String"), ("run_mask", "UInt64"), ("calls", "UInt32"), ("errors", "UInt32"),
    ("retries", "UInt32"), ("tool_calls", "UInt32"), ("tool_failures", "UInt32"), ("unpriced_calls", "UInt32"),
    ("input_tokens", "UInt64"), ("output_tokens", "UInt64"), ("cache_read_tokens", "UInt64"),
    ("payload_bytes", "UInt64"), ("cost_usd", "Decimal(38, 15)"), ("latencies_ms", "Array(UInt32)"),
)  # fmt: skip


def _usd(femto: int | None) -> Decimal | None:
    return None if femto is None else Decimal(femto) / FEMTO_PER_USD


def _store_templates(store: Store, templates: list[Template]) -> None:
    db = store.database
    tables = {
        "synth_tspans": _SPAN_TEMPLATE_COLUMNS,
        "synth_truns": _RUN_TEMPLATE_COLUMNS,
        "synth_tcalls": _CALL_TEMPLATE_COLUMNS,
    }
    for table, columns in tables.items():
        store.command(f"DROP TABLE IF EXISTS {db}.{table}")
        body = ", ".join(f"{name} {type_}" for name, type_ in (("t", "UInt32"), *columns))
        store.command(f"CREATE TABLE {db}.{table} ({body}) ENGINE = MergeTree ORDER BY t")
    span_rows, run_rows, call_rows = [], [], []
    for t, template in enumerate(templates):
        for idx, s in enumerate(template.spans):
            span_rows.append(
                [t, idx, s["span_id"], s["parent_span_id"], s["name"], s["start_time"], s["duration_ns"],
                 s["status_code"], s["span_class"], s["operation"], s["provider"], s["model"], s["input_tokens"],
                 s["output_tokens"], s["cache_read_tokens"], s["agent_name"], s["tool_name"], s["resend_count"],
                 s["payload_bytes"], _usd(s["cost_usd"]), s["unpriced_reason"], s["call_role"],
                 *(_usd(part) for part in s.get("cost_parts") or (None,) * 7), s.get("price_entry") or ""]
            )  # fmt: skip
        r = template.run
        run_rows.append(
            [t, r["duration_ms"], r["end_time"] - r["start_time"], r["status"], r["spans"], r["llm_calls"],
             r["tool_calls"], r["tool_failures"], r["agent_invocations"], r["errors"], r["retries"], r["retry_loop"],
             r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["payload_bytes"], _usd(r["cost_usd"]),
             r["priced_calls"], r["unpriced_calls"], r["models"], r["providers"], r["agents"], r["tools"]]
        )  # fmt: skip
        for c in template.calls:
            call_rows.append(
                [t, c["model"], c["provider"], c["agent"], c["tool"], c["operation"], c["payload_band"], c["run_mask"],
                 c["calls"], c["errors"], c["retries"], c["tool_calls"], c["tool_failures"], c["unpriced_calls"],
                 c["input_tokens"], c["output_tokens"], c["cache_read_tokens"], c["payload_bytes"],
                 _usd(c["cost_usd"]), c["latencies_ms"]]
            )  # fmt: skip
    for table, rows in (("synth_tspans", span_rows), ("synth_truns", run_rows), ("synth_tcalls", call_rows)):
        names = ["t", *(name for name, _ in tables[table])]
        store.insert_rows(f"{db}.{table}", rows, names)


# Per-run attribution, all derived from the run number n (so spans, runs and run_calls agree).
# Correlated like real traffic: a workflow type runs in one service, serves two features and
# has two prompt versions live; tenants are skewed (a few big ones), most runs carry no
# outcome, few run in staging.
_RUN_CTE = """
SELECT
    number AS n,
    cityHash64(number, 'template') % {templates:UInt32} AS t,
    lower(hex(cityHash64(number, 'hi'))) || lower(hex(cityHash64(number, 'lo'))) AS run_id,
    {start:Int64} + toInt64(number * {step:Float64}) AS start_ns,
    toUInt32(floor(pow(cityHash64(number, 'wf') % 1000000 / 1e6, 2) * length({workflow_types:Array(String)})))
        AS wf_index,
    {workflow_types:Array(String)}[1 + wf_index] AS wf_type,
    {teams:Array(String)}[1 + wf_index] AS team,
    {cost_centers:Array(String)}[1 + wf_index] AS cost_center,
    {products:Array(String)}[1 + wf_index] AS product,
    'tenant-' || leftPad(toString(toUInt32(floor(pow(cityHash64(number, 'tn') % 1000000 / 1e6, 3) * 200))), 3, '0')
        AS tenant,
    'cust-' || toString(cityHash64(tenant) % 50) AS customer,
    'feature-' || toString(wf_index * 2 + cityHash64(number, 'ft') % 2) AS feature,
    'user-' || toString(cityHash64(number, 'us') % 20000) AS user,
    if(cityHash64(number, 'env') % 20 = 0, 'staging', 'production') AS environment,
    'v' || toString(1 + wf_index % 3 + cityHash64(number, 'pv') % 2) AS prompt_version,
    'svc-' || toString(wf_index % 4) AS service,
    'wf-' || toString(number) AS workflow_id,
    multiIf(cityHash64(number, 'oc') % 100 < 18, 'accepted', cityHash64(number, 'oc') % 100 < 24, 'edited',
            cityHash64(number, 'oc') % 100 < 28, 'rejected', cityHash64(number, 'oc') % 100 < 30, 'escalated', '')
        AS outcome
FROM numbers({first:UInt64}, {count:UInt64})
"""

_INSERT_SPANS = """
INSERT INTO {db}.spans (trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ns,
    status_code, service_name, span_class, operation, provider, request_model, response_model, model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, agent_name, tool_name, resend_count,
    outcome, workflow_id, workflow_type, tenant, customer, feature, user, environment, prompt_version,
    payload_bytes, cost_usd, price_source, unpriced_reason, call_role, ingested_at, ingest_node, version,
    cost_input_usd, cost_output_usd, cost_cache_read_usd, cost_cache_write_usd, cost_reasoning_usd, cost_request_usd,
    cost_compute_usd, price_entry)
SELECT r.run_id, s.span_id, s.parent_span_id, s.name, if(s.parent_span_id = '', 'SERVER', 'INTERNAL'),
    fromUnixTimestamp64Nano(r.start_ns + toInt64(s.offset_ns)),
    fromUnixTimestamp64Nano(r.start_ns + toInt64(s.offset_ns + s.duration_ns)), s.duration_ns, s.status_code,
    r.service, s.span_class, s.operation, s.provider, s.model, s.model, s.model, s.input_tokens, s.output_tokens,
    s.cache_read_tokens, if(s.input_tokens IS NULL, NULL, 0), s.agent_name, s.tool_name, s.resend_count,
    if(s.parent_span_id = '', r.outcome, ''), if(s.parent_span_id = '', r.workflow_id, ''),
    if(s.parent_span_id = '', r.wf_type, ''), if(s.parent_span_id = '', r.tenant, ''),
    if(s.parent_span_id = '', r.customer, ''), if(s.parent_span_id = '', r.feature, ''),
    if(s.parent_span_id = '', r.user, ''), if(s.parent_span_id = '', r.environment, ''),
    if(s.parent_span_id = '', r.prompt_version, ''), s.payload_bytes, s.cost_usd,
    if(s.cost_usd IS NULL, '', 'genai-prices'), s.unpriced_reason, s.call_role,
    now64(3), 'synth', 1, s.cost_input_usd, s.cost_output_usd, s.cost_cache_read_usd, s.cost_cache_write_usd,
    s.cost_reasoning_usd, s.cost_request_usd, s.cost_compute_usd, s.price_entry
FROM ({runs}) AS r INNER JOIN {db}.synth_tspans AS s ON s.t = r.t
SETTINGS min_insert_block_size_rows = 200000, min_insert_block_size_bytes = 0
"""

_INSERT_RUNS = """
INSERT INTO {db}.runs (run_id, version, sign, start_time, end_time, duration_ms, complete, status, root_span_id,
    root_name, service, workflow_id, workflow_type, tenant, customer, feature, user, environment, prompt_version,
    team, cost_center, product, owner, outcome, outcome_source, spans, llm_calls, tool_calls, tool_failures,
    agent_invocations, errors, retries, retry_loop, input_tokens, output_tokens, cache_read_tokens,
    payload_bytes, cost_usd, priced_calls, unpriced_calls, models, providers, agents, tools, written_at, node)
SELECT r.run_id, 1, 1, fromUnixTimestamp64Nano(r.start_ns),
    fromUnixTimestamp64Nano(r.start_ns + toInt64(x.end_offset_ns)),
    x.duration_ms, 1, x.status, '0000000000000000', 'workflow', r.service, r.workflow_id, r.wf_type, r.tenant,
    r.customer, r.feature, r.user, r.environment, r.prompt_version, r.team, r.cost_center, r.product, r.team,
    r.outcome, if(r.outcome = '', '', 'span'), x.spans, x.llm_calls, x.tool_calls, x.tool_failures,
    x.agent_invocations, x.errors, x.retries, x.retry_loop, x.input_tokens, x.output_tokens, x.cache_read_tokens,
    x.payload_bytes, x.cost_usd, x.priced_calls, x.unpriced_calls, x.models, x.providers, x.agents, x.tools,
    now64(3), 'synth'
FROM ({runs}) AS r INNER JOIN {db}.synth_truns AS x ON x.t = r.t
SETTINGS min_insert_block_size_rows = 100000, min_insert_block_size_bytes = 0
"""

_INSERT_CALLS = """
INSERT INTO {db}.run_calls (run_id, version, sign, start_time, model, provider, agent, tool, operation,
    payload_band, workflow_id, workflow_type, service, environment, tenant, customer, feature, user, prompt_version,
    team, cost_center, product, owner, status, outcome, run_mask, successful, accepted, calls, errors, retries,
    tool_calls, tool_failures, unpriced_calls, input_tokens, output_tokens, cache_read_tokens, payload_bytes,
    cost_usd, reported_cost_usd, latencies_ms, written_at, node)
SELECT r.run_id, 1, 1, fromUnixTimestamp64Nano(r.start_ns), c.model, c.provider, c.agent, c.tool, c.operation,
    c.payload_band, r.workflow_id, r.wf_type, r.service, r.environment, r.tenant, r.customer, r.feature, r.user,
    r.prompt_version, r.team, r.cost_center, r.product, r.team, x.status, r.outcome, c.run_mask,
    x.status = 'success', r.outcome = 'accepted', c.calls, c.errors, c.retries, c.tool_calls, c.tool_failures,
    c.unpriced_calls, c.input_tokens, c.output_tokens, c.cache_read_tokens, c.payload_bytes, c.cost_usd, 0,
    c.latencies_ms, now64(3), 'synth'
FROM ({runs}) AS r INNER JOIN {db}.synth_tcalls AS c ON c.t = r.t INNER JOIN {db}.synth_truns AS x ON x.t = r.t
SETTINGS min_insert_block_size_rows = 100000, min_insert_block_size_bytes = 0
"""


def generate(
    store: Store,
    *,
    spans: int,
    days: float = 30.0,
    end_ns: int | None = None,
    templates: int = 400,
    seed: int = 1,
    chunk_runs: int = 200_000,
    progress: Any = None,
) -> dict[str, Any]:
    """Write about ``spans`` spans (and their runs and breakdown) ending at ``end_ns``."""
    rng = random.Random(seed)
    now = end_ns or time.time_ns()
    book = PriceBook()
    made = [make_template(rng, book, now) for _ in range(templates)]
    _store_templates(store, made)
    mean_spans = sum(len(t.spans) for t in made) / len(made)
    runs = math.ceil(spans / mean_spans)
    start = now - int(days * 86_400 * 10**9)
    teams, cost_centers, products = zip(*(OWNERS[w] for w in WORKFLOW_TYPES), strict=True)
    params: dict[str, Any] = {
        "templates": templates,
        "start": start,
        "step": (now - start) / runs,
        "workflow_types": list(WORKFLOW_TYPES),
        "teams": list(teams),
        "cost_centers": list(cost_centers),
        "products": list(products),
    }
    db = store.database
    for first in range(0, runs, chunk_runs):
        chunk = {**params, "first": first, "count": min(chunk_runs, runs - first)}
        for statement in (_INSERT_SPANS, _INSERT_RUNS, _INSERT_CALLS):
            store.command(statement.format(db=db, runs=_RUN_CTE), chunk)
        if progress:
            progress(min(first + chunk_runs, runs), runs)
    counts = {table: store.scalar(f"SELECT count() FROM {db}.{table}") for table in ("spans", "runs", "run_calls")}
    return {"runs": runs, "start_ns": start, "end_ns": now, "mean_spans_per_run": mean_spans, "rows": counts}


def main() -> None:
    """Generate a ledger of ``--spans`` spans under ``--path``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--database", default="bench")
    args = parser.parse_args()
    from otelspend.clickhouse.migrate import migrate

    store = Store(f"chdb://{args.path}", args.database)
    migrate(store)
    started = time.monotonic()
    stats = generate(store, spans=args.spans, days=args.days, progress=lambda d, t: print(f"  {d}/{t} runs"))
    print(f"generated in {time.monotonic() - started:.1f}s: {stats['rows']}")
    store.close()


if __name__ == "__main__":
    main()
