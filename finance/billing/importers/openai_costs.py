"""OpenAI Costs API pages (``GET /v1/organization/costs``), JSON as returned.

Each result is money for one day: ``{"object": "organization.costs.result", "amount":
{"value": 0.06, "currency": "usd"}, "line_item": ..., "project_id": ...}``. The amount is a
JSON number in dollars (read as an exact decimal), the currency lower case (stored upper
case). ``line_item`` is seen both as a model (``"gpt-4o"``) and as a model with a usage kind
(``"gpt-4o-2024-08-06, input"``): both readings are accepted. OpenAI says this endpoint
reconciles to the invoice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from otelspend.finance.billing.importers.base import Counters, Head, Source, admin_lines, text
from otelspend.finance.billing.lines import (
    BillingLine,
    Charge,
    RecordError,
    UsageKind,
    currency,
    money,
)
from otelspend.finance.billing.names import model_key

RESULT_OBJECT = "organization.costs.result"
_KIND_WORDS: tuple[tuple[str, UsageKind], ...] = (
    ("cached input", UsageKind.CACHED_INPUT),
    ("cache read", UsageKind.CACHED_INPUT),
    ("cache write", UsageKind.CACHE_WRITE_5M),
    ("input", UsageKind.UNCACHED_INPUT),
    ("output", UsageKind.OUTPUT),
    ("web search", UsageKind.WEB_SEARCH),
)
_TIERS = ("batch", "priority", "flex", "scale")


def parse_line_item(line_item: str) -> tuple[str, UsageKind, str]:
    """``"gpt-4o-2024-08-06, input"`` -> (model, kind, tier); a bare ``"gpt-4o"`` -> (model, other, '')."""
    model, sep, rest = line_item.partition(",")
    if not sep:
        return model.strip(), UsageKind.OTHER, ""
    words = rest.strip().lower()
    kind = next((k for needle, k in _KIND_WORDS if needle in words), UsageKind.OTHER)
    tier = next((t for t in _TIERS if t in words.split()), "")
    return model.strip(), kind, tier


class OpenAICosts:
    """OpenAI Admin API costs (``/v1/organization/costs``): money per day, project and line item."""

    format = "openai_costs"
    description = "OpenAI Costs API pages (GET /v1/organization/costs), JSON"

    def identify(self, head: Head) -> bool:
        """A page (or JSONL of pages) of ``organization.costs.result`` objects."""
        return head.kind == "json" and RESULT_OBJECT in head.text

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """Billing lines of every result of every bucket (kind and model from the line item)."""
        return admin_lines(source, "start_time", "end_time", _line)


def _line(source: Source, result: Any, start: int, end: int, record: str) -> BillingLine:
    if not isinstance(result, dict):
        raise RecordError("result", result, "an organization.costs.result object")
    amount = result.get("amount")
    if not isinstance(amount, dict):
        raise RecordError("amount", amount, 'an object {"value": <number>, "currency": "usd"}')
    value = money("amount.value", amount.get("value"))
    code = currency("amount.currency", amount.get("currency"))
    line_item = text(result.get("line_item"))
    model, kind, tier = parse_line_item(line_item)
    return BillingLine(
        format=OpenAICosts.format,
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
        quantity=None,
        unit="",
        amount=value,
        currency=code,
        list_amount=None,
        service_tier=tier,
        description=line_item,
        record=record,
    )
