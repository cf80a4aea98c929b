"""Build ledger rows and bill lines for reconciliation tests, priced like real rate cards."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from otelspend.finance.billing.lines import BillingLine, Charge, Identities, UsageKind
from otelspend.finance.billing.names import model_key
from otelspend.finance.billing.reconcile import LedgerRow

DAY0 = 1_748_736_000  # 2025-06-01T00:00:00Z
FEMTO = 10**15
GPT4O = {  # USD per million tokens
    UsageKind.UNCACHED_INPUT: Decimal("2.5"),
    UsageKind.CACHED_INPUT: Decimal("1.25"),
    UsageKind.CACHE_WRITE_5M: Decimal("2.5"),
    UsageKind.CACHE_WRITE_1H: Decimal("2.5"),
    UsageKind.OUTPUT: Decimal("10"),
}
GROUP = {
    UsageKind.UNCACHED_INPUT: "uncached_input",
    UsageKind.CACHED_INPUT: "cached_input",
    UsageKind.CACHE_WRITE_5M: "cache_write",
    UsageKind.CACHE_WRITE_1H: "cache_write",
    UsageKind.OUTPUT: "output",
}


def femto(tokens: int, per_mtok: Decimal) -> int:
    value = Fraction(tokens) * Fraction(per_mtok) * FEMTO / 1_000_000
    assert value.denominator == 1, "choose token counts that price to whole femto-USD"
    return int(value)


def row(
    tokens: dict[UsageKind, int],
    *,
    run: str = "r1",
    calls: int = 1,
    model: str = "gpt-4o-2024-08-06",
    provider: str = "openai",
    owner: dict[str, str] | None = None,
    prices: dict[UsageKind, Decimal] | None = None,
    unpriced: bool = False,
    hour: int = DAY0 + 3600,
    tiers: frozenset[str] = frozenset(),
) -> LedgerRow:
    """A run's calls priced at ``prices`` (default GPT-4o list prices), or unpriced."""
    prices = prices or GPT4O
    cost_by: dict[str, int] = {g: 0 for g in ("uncached_input", "cached_input", "cache_write", "output", "request")}
    unpriced_tokens: dict[str, int] = {}
    for kind, count in tokens.items():
        if unpriced:
            unpriced_tokens[GROUP[kind]] = unpriced_tokens.get(GROUP[kind], 0) + count
        else:
            cost_by[GROUP[kind]] += femto(count, prices[kind])
    return LedgerRow(
        hour=hour,
        provider=provider,
        model=model,
        owner=owner or {},
        run_id=run,
        calls=calls,
        unpriced_calls=calls if unpriced else 0,
        tokens=dict(tokens),
        unpriced_tokens=unpriced_tokens,
        cost=sum(cost_by.values()),
        cost_by=cost_by,
        tiers=tiers,
    )


_identities = Identities()


def line(
    kind: UsageKind,
    *,
    quantity: int | None = None,
    amount: Decimal | None = None,
    model: str = "gpt-4o-2024-08-06",
    provider: str = "openai",
    project: str = "",
    tier: str = "",
    charge: Charge = Charge.USAGE,
    start: int = DAY0,
    end: int = DAY0 + 86_400,
    format: str = "test",
) -> BillingLine:
    built = BillingLine(
        format=format,
        provider=provider,
        account_id="",
        project_id=project,
        workspace_id="",
        api_key_id="",
        model_billed=model,
        model=model_key(model),
        kind=kind,
        charge=charge,
        period_start=start,
        period_end=end,
        quantity=None if quantity is None else Decimal(quantity),
        unit="" if quantity is None else "tokens",
        amount=amount,
        currency="USD" if amount is not None else "",
        list_amount=None,
        service_tier=tier,
        description=f"{kind.value} {quantity} {amount}",
        record="test",
    )
    return _identities.assign(built)


def bill_for(tokens: dict[UsageKind, int], prices: dict[UsageKind, Decimal] | None = None, **kw) -> list[BillingLine]:
    """A usage line (quantity) and a cost line (money) per kind, priced at ``prices``."""
    prices = prices or GPT4O
    out = []
    for kind, count in tokens.items():
        out.append(line(kind, quantity=count, **kw))
        out.append(line(kind, amount=Decimal(femto(count, prices[kind])) / FEMTO, **kw))
    return out
