"""Anthropic cost report pages (``GET /v1/organizations/cost_report``), JSON.

Each result is money for one day: ``amount`` is in the **lowest currency unit (cents) as a
decimal string** — ``"123.45"`` in ``"USD"`` is $1.2345, divided exactly (reading cents as
dollars makes costs 100x: a known failure elsewhere; a JSON number is refused rather than
guessed). ``cost_type`` (tokens, web_search, code_execution, session_usage) and
``token_type`` give the usage kind; ``model``, ``service_tier``, ``context_window`` and
``description`` are set when the report is grouped by description. A null ``workspace_id``
is the default workspace.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from otelspend.finance.billing.importers.base import Counters, Head, Source, admin_lines, text
from otelspend.finance.billing.lines import (
    DEFAULT_WORKSPACE,
    MONEY_PLACES,
    BillingLine,
    Charge,
    RecordError,
    UsageKind,
    currency,
    parse_decimal,
)
from otelspend.finance.billing.names import model_key

TOKEN_TYPES: dict[str, UsageKind] = {
    "uncached_input_tokens": UsageKind.UNCACHED_INPUT,
    "cache_read_input_tokens": UsageKind.CACHED_INPUT,
    "cache_creation.ephemeral_5m_input_tokens": UsageKind.CACHE_WRITE_5M,
    "cache_creation.ephemeral_1h_input_tokens": UsageKind.CACHE_WRITE_1H,
    "output_tokens": UsageKind.OUTPUT,
}
COST_TYPES = ("tokens", "web_search", "code_execution", "session_usage")


class AnthropicCost:
    """Anthropic Admin API cost report (``/v1/organizations/cost_report``): amounts in cents as decimal strings."""

    format = "anthropic_cost"
    description = "Anthropic cost report pages (GET /v1/organizations/cost_report), JSON"

    def identify(self, head: Head) -> bool:
        """A page of cost buckets whose results carry ``currency`` and ``cost_type`` or ``amount``."""
        return (
            head.kind == "json"
            and '"starting_at"' in head.text
            and '"amount"' in head.text
            and ('"cost_type"' in head.text or '"currency"' in head.text)
        )

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """Billing lines of every result of every bucket, amounts converted from cents to USD."""
        return admin_lines(source, "starting_at", "ending_at", _line)


def cents_to_usd(value: Any) -> Decimal:
    """``"123.45"`` (cents, a decimal string) -> Decimal('1.2345') dollars, exact."""
    if not isinstance(value, str):
        raise RecordError("amount", value, 'the amount in cents as a decimal string, e.g. "123.45" (= $1.2345)')
    cents = parse_decimal("amount", value)
    assert cents is not None
    if abs(cents) >= Decimal(10) ** 25:
        raise RecordError("amount", value, "an amount below 10^23 USD (Decimal(38, 15))")
    return (cents / 100).quantize(MONEY_PLACES)


def kind_of(cost_type: str, token_type: str) -> UsageKind:
    """The usage kind of a cost result (``cost_type`` ``tokens`` with its ``token_type``, ``web_search``, ...)."""
    if cost_type and cost_type not in COST_TYPES:
        raise RecordError("cost_type", cost_type, "one of " + ", ".join(COST_TYPES) + " (or null)")
    if cost_type == "web_search":
        return UsageKind.WEB_SEARCH
    if cost_type in ("code_execution", "session_usage"):
        return UsageKind.OTHER
    if token_type:
        kind = TOKEN_TYPES.get(token_type)
        if kind is None:
            raise RecordError("token_type", token_type, "one of " + ", ".join(TOKEN_TYPES) + " (or null)")
        return kind
    return UsageKind.OTHER


def _line(source: Source, result: Any, start: int, end: int, record: str) -> BillingLine:
    if not isinstance(result, dict):
        raise RecordError("result", result, "a cost result object")
    amount = cents_to_usd(result.get("amount"))
    code = currency("currency", result.get("currency", "USD"))
    cost_type = text(result.get("cost_type"))
    kind = kind_of(cost_type, text(result.get("token_type")))
    model = text(result.get("model"))
    window = text(result.get("context_window"))
    description = text(result.get("description"))
    if window:
        description = f"{description} (context {window})" if description else f"context {window}"
    if cost_type and cost_type != "tokens":
        description = f"{description} [{cost_type}]" if description else cost_type
    return BillingLine(
        format=AnthropicCost.format,
        provider="anthropic",
        account_id=source.account,
        project_id="",
        workspace_id=text(result.get("workspace_id")) or DEFAULT_WORKSPACE,
        api_key_id="",
        model_billed=model,
        model=model_key(model),
        kind=kind,
        charge=Charge.USAGE,
        period_start=start,
        period_end=end,
        quantity=None,
        unit="",
        amount=amount,
        currency=code,
        list_amount=None,
        service_tier=text(result.get("service_tier")),
        description=description,
        record=record,
    )
