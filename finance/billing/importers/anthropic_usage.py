"""Anthropic usage report pages (``GET /v1/organizations/usage_report/messages``), JSON.

Each result counts tokens for one bucket and one grouping (API key, workspace, model,
service tier, context window): ``uncached_input_tokens``, ``cache_read_input_tokens``,
``cache_creation`` **nested** as ``{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``
(read as zero by tools that expect a flat number: a known failure), ``output_tokens`` and
``server_tool_use.web_search_requests``. A flat ``cache_creation_5m_input_tokens`` /
``cache_creation_1h_input_tokens`` (seen in derived schemas) is read too. A null
``workspace_id`` is the default workspace.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from otelspend.finance.billing.importers.base import Counters, Head, Source, admin_lines, text
from otelspend.finance.billing.lines import (
    DEFAULT_WORKSPACE,
    BillingLine,
    Charge,
    RecordError,
    UsageKind,
    token_count,
)
from otelspend.finance.billing.names import model_key


class AnthropicUsage:
    """Anthropic Admin API messages usage report (``/v1/organizations/usage_report/messages``): token counts, no
    money."""

    format = "anthropic_usage"
    description = "Anthropic usage report pages (GET /v1/organizations/usage_report/messages), JSON"

    def identify(self, head: Head) -> bool:
        """A page of usage buckets whose results carry ``uncached_input_tokens``."""
        return (
            head.kind == "json"
            and '"starting_at"' in head.text
            and "uncached_input_tokens" in head.text
            and ('"cost_type"' not in head.text)
        )

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """Quantity lines per token kind, cache writes split 5 min / 1 h from the nested ``cache_creation``."""
        return admin_lines(source, "starting_at", "ending_at", _lines)


def cache_writes(result: dict[str, Any]) -> tuple[int, int]:
    """(5 minute, 1 hour) cache-creation tokens: nested ``cache_creation`` first, flat names else."""
    nested = result.get("cache_creation")
    if nested is not None:
        if not isinstance(nested, dict):
            raise RecordError(
                "cache_creation", nested, "an object {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}"
            )
        return (
            token_count("cache_creation.ephemeral_5m_input_tokens", nested.get("ephemeral_5m_input_tokens")),
            token_count("cache_creation.ephemeral_1h_input_tokens", nested.get("ephemeral_1h_input_tokens")),
        )
    five = token_count("cache_creation_5m_input_tokens", result.get("cache_creation_5m_input_tokens"))
    hour = token_count("cache_creation_1h_input_tokens", result.get("cache_creation_1h_input_tokens"))
    if not five and not hour:
        five = token_count("cache_creation_input_tokens", result.get("cache_creation_input_tokens"))
    return five, hour


def _lines(source: Source, result: Any, start: int, end: int, record: str) -> list[BillingLine]:
    if not isinstance(result, dict):
        raise RecordError("result", result, "a usage result object")
    five, hour = cache_writes(result)
    tools = result.get("server_tool_use")
    if tools is not None and not isinstance(tools, dict):
        raise RecordError("server_tool_use", tools, "an object {web_search_requests}")
    quantities = {
        UsageKind.UNCACHED_INPUT: token_count("uncached_input_tokens", result.get("uncached_input_tokens")),
        UsageKind.CACHED_INPUT: token_count("cache_read_input_tokens", result.get("cache_read_input_tokens")),
        UsageKind.CACHE_WRITE_5M: five,
        UsageKind.CACHE_WRITE_1H: hour,
        UsageKind.OUTPUT: token_count("output_tokens", result.get("output_tokens")),
        UsageKind.WEB_SEARCH: token_count(
            "server_tool_use.web_search_requests", (tools or {}).get("web_search_requests")
        ),
    }
    model = text(result.get("model"))
    window = text(result.get("context_window"))
    geo = text(result.get("inference_geo"))
    description = " ".join(part for part in (window and f"context {window}", geo and f"geo {geo}") if part)
    return [
        BillingLine(
            format=AnthropicUsage.format,
            provider="anthropic",
            account_id=source.account,
            project_id="",
            workspace_id=text(result.get("workspace_id")) or DEFAULT_WORKSPACE,
            api_key_id=text(result.get("api_key_id")),
            model_billed=model,
            model=model_key(model),
            kind=kind,
            charge=Charge.USAGE,
            period_start=start,
            period_end=end,
            quantity=Decimal(count),
            unit="requests" if kind is UsageKind.WEB_SEARCH else "tokens",
            amount=None,
            currency="",
            list_amount=None,
            service_tier=text(result.get("service_tier")),
            description=description,
            record=record,
        )
        for kind, count in quantities.items()
    ]
