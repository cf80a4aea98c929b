"""OpenAI Usage API pages for completions (``GET /v1/organization/usage/completions``), JSON.

Each result counts tokens and requests for one bucket (a minute, hour or day) and one
grouping (project, user, API key, model, batch, service tier). ``input_tokens`` *includes*
cached and cache-write tokens; newer results also carry ``input_uncached_tokens`` and
``input_cache_write_tokens``. One result becomes one line per usage kind (uncached input,
cached input, cache writes, output, requests), zeros included: a restated zero must
replace an earlier non-zero line. Usage states no money.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from otelspend.finance.billing.importers.base import Counters, Head, Source, admin_lines, text
from otelspend.finance.billing.lines import BillingLine, Charge, RecordError, UsageKind, token_count
from otelspend.finance.billing.names import model_key

RESULT_OBJECT = "organization.usage.completions.result"


class OpenAIUsage:
    """OpenAI Admin API completions usage (``/v1/organization/usage/completions``): token counts, no money."""

    format = "openai_usage"
    description = "OpenAI Usage API pages for completions (GET /v1/organization/usage/completions), JSON"

    def identify(self, head: Head) -> bool:
        """A page of ``organization.usage.completions.result`` objects."""
        return head.kind == "json" and RESULT_OBJECT in head.text

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """Quantity lines per token kind (cached input apart from uncached) and the request count."""
        return admin_lines(source, "start_time", "end_time", _lines)


def usage_quantities(result: dict[str, Any]) -> dict[UsageKind, int]:
    """Tokens and requests by kind; ``input_tokens`` includes cached and cache-write tokens."""
    total_input = token_count("input_tokens", result.get("input_tokens"))
    cached = token_count("input_cached_tokens", result.get("input_cached_tokens"))
    written = token_count("input_cache_write_tokens", result.get("input_cache_write_tokens"))
    if "input_uncached_tokens" in result and result["input_uncached_tokens"] is not None:
        uncached = token_count("input_uncached_tokens", result["input_uncached_tokens"])
        if uncached + cached + written != total_input:
            raise RecordError(
                "input_uncached_tokens",
                result["input_uncached_tokens"],
                f"input_tokens ({total_input}) - input_cached_tokens ({cached}) - input_cache_write_tokens ({written})",
            )
    else:
        uncached = total_input - cached - written
        if uncached < 0:
            raise RecordError(
                "input_cached_tokens",
                result.get("input_cached_tokens"),
                f"at most input_tokens ({total_input}) minus cache writes ({written}): input_tokens includes them",
            )
    return {
        UsageKind.UNCACHED_INPUT: uncached,
        UsageKind.CACHED_INPUT: cached,
        UsageKind.CACHE_WRITE_5M: written,
        UsageKind.OUTPUT: token_count("output_tokens", result.get("output_tokens")),
        UsageKind.REQUEST: token_count("num_model_requests", result.get("num_model_requests")),
    }


def _lines(source: Source, result: Any, start: int, end: int, record: str) -> list[BillingLine]:
    if not isinstance(result, dict):
        raise RecordError("result", result, "an organization.usage.completions.result object")
    quantities = usage_quantities(result)
    model = text(result.get("model"))
    tier = text(result.get("service_tier"))
    batch = result.get("batch")
    if batch not in (None, True, False):
        raise RecordError("batch", batch, "true, false or null")
    if batch is True and not tier:
        tier = "batch"
    lines = []
    for kind, count in quantities.items():
        lines.append(
            BillingLine(
                format=OpenAIUsage.format,
                provider="openai",
                account_id=source.account,
                project_id=text(result.get("project_id")),
                workspace_id="",
                api_key_id=text(result.get("api_key_id")),
                model_billed=model,
                model=model_key(model),
                kind=kind,
                charge=Charge.USAGE,
                period_start=start,
                period_end=end,
                quantity=Decimal(count),
                unit="requests" if kind is UsageKind.REQUEST else "tokens",
                amount=None,
                currency="",
                list_amount=None,
                service_tier=tier,
                description=text(result.get("user_id")) and f"user {text(result.get('user_id'))}",
                record=record,
            )
        )
    return lines
