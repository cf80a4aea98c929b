"""Reconciliation: the ledger against the bill, cell by cell, every difference explained. Pure.

A **cell** is a period (a UTC day, or an hour when every line of that provider and day is
hourly) x provider x model (``names.model_key``) x mapped account (``accounts``). Only the
(day, provider) pairs the bill covers are reconciled. In a cell, the ledger's counted calls
(tokens by kind, calculated cost by component, unpriced calls) stand beside the bill's
usage lines (quantities by kind, billed money by kind); taxes, credits and other non-usage
charges are reported apart, never as a variance.

The **variance** is billed minus calculated, in femto-USD. It is split into causes whose
amounts add up to it exactly:

* ``missing_telemetry`` — billed usage the ledger never saw: bill quantities above the
  ledger's, valued at the bill's own unit price (a kind the ledger has none of at all, such
  as web searches, is all of its billed money);
* ``not_in_bill`` — usage the ledger saw and the bill does not have (a mapping or window
  problem): ledger quantities above the bill's at the ledger's price, or a ledger cell with
  no bill line;
* ``discount`` — the gap explained by cache, batch or priority rates: input tokens the bill
  counts as cached or cache writes that the ledger counted (and priced) as plain input, a
  cache rate the rate card ignored, or a batch / flex / priority tier on the bill that the
  ledger's calls did not declare;
* ``unpriced_in_ledger`` — usage the ledger saw but could not price, at the bill's price;
* ``untagged`` — billed money the account mapping assigns to no owner (with a mapping);
* ``price_mismatch`` — what remains: quantities agree, money does not. The cell shows the
  implied unit price next to the rate card's.

A cell whose bill lines state no money (a usage report imported without its cost report)
is compared on quantities only: no variance, no causes, confidence ``low``.

**Confidence**: ``high`` when quantities (where the bill states them) and money agree within
the tolerances; ``medium`` when the cell's money does not agree but the period x provider x
model summed across accounts does (an account-mapping problem); ``low`` otherwise (money
agreeing while quantities do not included), and for cells with one side only or whose
money was allocated (bill lines without a model, split over the models of their
account in proportion to calculated cost).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from otelspend.finance.billing.accounts import UNMAPPED, AccountMap
from otelspend.finance.billing.lines import BillingLine, Charge, UsageKind
from otelspend.finance.billing.names import model_key
from otelspend.money import split_largest_remainder, usd_to_femto

DAY = 86_400
HOUR = 3_600
Confidence = Literal["high", "medium", "low"]
CONFIDENCE_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
CAUSES: tuple[str, ...] = (
    "missing_telemetry",
    "not_in_bill",
    "price_mismatch",
    "discount",
    "unpriced_in_ledger",
    "untagged",
)
GROUPS: tuple[str, ...] = ("uncached_input", "cached_input", "cache_write", "output", "request", "web_search", "other")
"""Money and quantities are compared per group; cache writes of both TTLs are one group (the
ledger's cost components do not split them), the token columns keep them apart."""
INPUT_GROUPS = ("uncached_input", "cached_input", "cache_write")
TOKEN_GROUPS = (*INPUT_GROUPS, "output")
GROUP_OF: dict[UsageKind, str] = {
    UsageKind.UNCACHED_INPUT: "uncached_input",
    UsageKind.CACHED_INPUT: "cached_input",
    UsageKind.CACHE_WRITE_5M: "cache_write",
    UsageKind.CACHE_WRITE_1H: "cache_write",
    UsageKind.OUTPUT: "output",
    UsageKind.REQUEST: "request",
    UsageKind.WEB_SEARCH: "web_search",
    UsageKind.OTHER: "other",
}
TOKEN_COLUMNS: tuple[UsageKind, ...] = (
    UsageKind.UNCACHED_INPUT,
    UsageKind.CACHED_INPUT,
    UsageKind.CACHE_WRITE_5M,
    UsageKind.CACHE_WRITE_1H,
    UsageKind.OUTPUT,
    UsageKind.REQUEST,
    UsageKind.WEB_SEARCH,
)
DISCOUNT_TIERS = frozenset({"batch", "flex", "priority", "scale"})


@dataclass(frozen=True)
class Tolerances:
    """When a cell agrees: quantity within ``quantity_pct``, money within the larger of ``money_pct`` and
    ``money_usd``."""

    quantity_pct: Decimal = Decimal("0.5")
    money_pct: Decimal = Decimal("1")
    money_usd: Decimal = Decimal("0.01")

    def money_ok(self, variance: int, calculated: int) -> bool:
        """Whether a money variance is within tolerance of the calculated amount."""
        bound = max(Fraction(usd_to_femto(self.money_usd)), Fraction(abs(calculated)) * Fraction(self.money_pct) / 100)
        return abs(variance) <= bound

    def quantity_ok(self, billed: Fraction, ledger: int) -> bool:
        """Whether a billed quantity is within tolerance of the ledger's."""
        return abs(billed - ledger) <= Fraction(ledger) * Fraction(self.quantity_pct) / 100


@dataclass(frozen=True)
class LedgerRow:
    """Counted calls of one run in one hour for one provider, model and owner."""

    hour: int
    provider: str
    model: str
    owner: Mapping[str, str]
    run_id: str
    calls: int
    unpriced_calls: int
    tokens: Mapping[UsageKind, int]
    """uncached_input, cached_input, cache_write_5m, cache_write_1h, output."""
    unpriced_tokens: Mapping[str, int]
    """By group (uncached_input, cached_input, cache_write, output): tokens of unpriced calls."""
    cost: int
    """Calculated cost of the priced calls, femto-USD."""
    cost_by: Mapping[str, int]
    """By group, femto-USD."""
    tiers: frozenset[str] = frozenset()


CellKey = tuple[int, int, str, str, str]
"""(period start, period end, provider, model key, account)."""


@dataclass
class _Side:
    quantities: dict[str, Fraction] = field(default_factory=dict)
    money: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tokens: dict[UsageKind, Fraction] = field(default_factory=dict)


@dataclass
class Cell:
    """One reconciled cell: both sides, the variance by cause, the confidence."""

    period_start: int
    period_end: int
    provider: str
    model: str
    account: str
    mapped: bool
    model_name: str = ""
    allocated: bool = False
    ledger_calls: int = 0
    unpriced_calls: int = 0
    ledger_tokens: dict[UsageKind, int] = field(default_factory=lambda: defaultdict(int))
    ledger_money: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ledger_unpriced: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calculated: int = 0
    ledger_tiers: set[str] = field(default_factory=set)
    billed_tokens: dict[UsageKind, Fraction] = field(default_factory=dict)
    billed_money: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    billed: int = 0
    listed: int | None = None
    bill_tiers: set[str] = field(default_factory=set)
    bill_lines: int = 0
    money_lines: int = 0
    """Bill lines stating money. A cell whose lines state none (a usage report alone) is
    compared on quantities only: no variance, no causes, confidence low."""
    line_ids: list[str] = field(default_factory=list)
    runs: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """(run_id, the ledger's model name) -> calculated femto-USD in this cell (true-up weights)."""
    run_tokens: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    causes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))
    confidence: Confidence = "low"
    money_ok: bool = False
    quantity_ok: bool = False
    prices: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def key(self) -> CellKey:
        """The cell's identity: period, provider, model key, account."""
        return (self.period_start, self.period_end, self.provider, self.model, self.account)

    @property
    def variance(self) -> int:
        """Billed minus calculated, femto-USD."""
        return self.billed - self.calculated

    @property
    def compared(self) -> bool:
        """Money is compared: the bill states money here, or has no line here at all."""
        return self.money_lines > 0 or self.bill_lines == 0

    def billed_quantity(self, group: str) -> Fraction | None:
        """Billed tokens of a price group (None when the bill states none)."""
        kinds = [k for k in TOKEN_COLUMNS if GROUP_OF[k] == group]
        found = [self.billed_tokens[k] for k in kinds if k in self.billed_tokens]
        return sum(found, Fraction(0)) if found else None

    def ledger_quantity(self, group: str) -> int:
        """Ledger tokens of a price group (calls for ``request``)."""
        if group == "request":
            return self.ledger_calls
        return sum(self.ledger_tokens.get(k, 0) for k in TOKEN_COLUMNS if GROUP_OF[k] == group)


@dataclass(frozen=True)
class OtherCharge:
    """Billed money that is not model usage (support, credits, tax, ...): shown, not reconciled."""

    period_start: int
    provider: str
    charge: str
    billed: int
    line_ids: tuple[str, ...]


@dataclass
class Reconciliation:
    """The cells of a period and its other charges."""

    cells: list[Cell]
    other: list[OtherCharge]


# -- building the cells ---------------------------------------------------------------------------


def _grains(lines: Sequence[BillingLine]) -> dict[tuple[int, str], int]:
    """(day, provider) -> cell length: an hour when every line there is hourly, else a day."""
    hourly: dict[tuple[int, str], bool] = {}
    for line in lines:
        key = (line.period_start - line.period_start % DAY, line.provider)
        is_hour = line.period_end - line.period_start == HOUR
        hourly[key] = hourly.get(key, True) and is_hour
    return {key: HOUR if flag else DAY for key, flag in hourly.items()}


def _period(start: int, grain: int) -> tuple[int, int]:
    first = start - start % grain
    return first, first + grain


def reconcile(
    lines: Iterable[BillingLine],
    ledger: Iterable[LedgerRow],
    accounts: AccountMap,
    tolerances: Tolerances,
) -> Reconciliation:
    """Reconcile the bill's lines with the ledger's rows (both for the same days)."""
    usage: list[BillingLine] = []
    other: dict[tuple[int, str, str], list[BillingLine]] = defaultdict(list)
    for line in lines:
        if line.charge is Charge.USAGE:
            usage.append(line)
        else:
            other[(line.period_start - line.period_start % DAY, line.provider, line.charge.value)].append(line)
    grains = _grains([*usage, *(line for group in other.values() for line in group)])
    cells: dict[CellKey, Cell] = {}
    unmodelled: list[tuple[BillingLine, str, tuple[int, int]]] = []

    def cell(period: tuple[int, int], provider: str, model: str, account: str) -> Cell:
        key = (period[0], period[1], provider, model, account)
        found = cells.get(key)
        if found is None:
            mapped = account != UNMAPPED or not accounts.configured
            found = cells[key] = Cell(period[0], period[1], provider, model, account, mapped)
        return found

    for line in usage:
        account = accounts.for_line(line.provider, _ids(line))
        period = _period(line.period_start, grains[(line.period_start - line.period_start % DAY, line.provider)])
        if not line.model:
            unmodelled.append((line, account if account is not None else UNMAPPED, period))
            continue
        _add_line(cell(period, line.provider, line.model, account if account is not None else UNMAPPED), line)

    for row in ledger:
        day = row.hour - row.hour % DAY
        row_grain = grains.get((day, row.provider))
        if row_grain is None:
            continue  # the bill does not cover this provider on this day
        account = accounts.for_call(row.provider, row.owner)
        _add_row(cell(_period(row.hour, row_grain), row.provider, model_key(row.model), account), row)

    for line, account, period in unmodelled:
        _allocate(cells, line, account, period, cell)

    results = sorted(cells.values(), key=lambda c: c.key)
    for result in results:
        _explain(result, accounts.configured, tolerances)
    _grade(results, tolerances)
    others = [
        OtherCharge(day, provider, charge, sum(_femto(line.amount) for line in group), tuple(_ids_of(group)))
        for (day, provider, charge), group in sorted(other.items())
    ]
    return Reconciliation(results, others)


def _ids(line: BillingLine) -> dict[str, str]:
    return {
        "account_id": line.account_id,
        "project_id": line.project_id,
        "workspace_id": line.workspace_id,
        "api_key_id": line.api_key_id,
    }


def _ids_of(lines: Iterable[BillingLine]) -> list[str]:
    return [line.identity for line in lines]


def _femto(amount: Decimal | None) -> int:
    return 0 if amount is None else usd_to_femto(amount)


def _add_line(cell: Cell, line: BillingLine) -> None:
    group = GROUP_OF[line.kind]
    cell.bill_lines += 1
    cell.line_ids.append(line.identity)
    if line.service_tier:
        cell.bill_tiers.add(line.service_tier.lower())
    if not cell.model_name:
        cell.model_name = line.model_billed
    if line.quantity is not None and line.kind in TOKEN_COLUMNS:
        cell.billed_tokens[line.kind] = cell.billed_tokens.get(line.kind, Fraction(0)) + Fraction(line.quantity)
    if line.amount is not None:
        amount = _femto(line.amount)
        cell.billed_money[group] += amount
        cell.billed += amount
        cell.money_lines += 1
    if line.list_amount is not None:
        cell.listed = (cell.listed or 0) + _femto(line.list_amount)


def _add_row(cell: Cell, row: LedgerRow) -> None:
    cell.model_name = row.model  # the ledger's name wins for display
    cell.ledger_calls += row.calls
    cell.unpriced_calls += row.unpriced_calls
    for kind, count in row.tokens.items():
        cell.ledger_tokens[kind] += count
    for group, count in row.unpriced_tokens.items():
        cell.ledger_unpriced[group] += count
    for group, amount in row.cost_by.items():
        cell.ledger_money[group] += amount
    cell.calculated += row.cost
    cell.ledger_tiers |= {tier.lower() for tier in row.tiers if tier}
    cell.runs[(row.run_id, row.model)] += row.cost
    cell.run_tokens[(row.run_id, row.model)] += sum(row.tokens.values())


def _allocate(
    cells: dict[CellKey, Cell],
    line: BillingLine,
    account: str,
    period: tuple[int, int],
    cell: Callable[[tuple[int, int], str, str, str], Cell],
) -> None:
    """A line without a model: its money over the models of its account and period, in
    proportion to their calculated cost; nowhere to go = a cell of its own (model '')."""
    targets = [
        c
        for c in cells.values()
        if (c.period_start, c.period_end, c.provider, c.account) == (period[0], period[1], line.provider, account)
        and c.model
        and c.calculated > 0
    ]
    if line.amount is None:  # quantities alone cannot be split over models: a cell of their own
        targets = []
    amount = _femto(line.amount)
    split = split_largest_remainder(amount, [c.calculated for c in targets])
    for target, share in zip(targets, split.shares, strict=True):
        target.billed_money["other"] += share
        target.billed += share
        target.allocated = True
        target.line_ids.append(line.identity)
        target.bill_lines += 1
        target.money_lines += 1
    if split.unallocated or not targets:
        rest = cell(period, line.provider, "", account)
        rest.allocated = True
        rest.billed_money[GROUP_OF[line.kind]] += split.unallocated
        rest.billed += split.unallocated
        rest.line_ids.append(line.identity)
        rest.bill_lines += 1
        rest.money_lines += line.amount is not None
        if line.quantity is not None and line.kind in TOKEN_COLUMNS:
            rest.billed_tokens[line.kind] = rest.billed_tokens.get(line.kind, Fraction(0)) + Fraction(line.quantity)


# -- explaining a cell --------------------------------------------------------------------------------


def _price(money: int, quantity: Fraction | int) -> Fraction | None:
    return Fraction(money) / Fraction(quantity) if quantity else None


def _explain(cell: Cell, mapping_configured: bool, tolerances: Tolerances) -> None:
    """Split the cell's variance into causes that add up to it exactly (femto-USD)."""
    variance = cell.variance
    causes = dict.fromkeys(CAUSES, Fraction(0))
    untagged = mapping_configured and not cell.mapped
    has_ledger = cell.ledger_calls > 0
    if not cell.compared:
        cell.prices = _shown_prices(_prices(cell))
        cell.quantity_ok = _quantities_agree(cell, tolerances)
        return  # quantities only: the bill states no money to compare
    if not cell.bill_lines:
        causes["not_in_bill"] = Fraction(variance)
    elif not has_ledger:
        causes["untagged" if untagged else "missing_telemetry"] = Fraction(variance)
    else:
        prices = _prices(cell)
        _quantity_effects(cell, prices, causes)
        _unpriced_effect(cell, prices, causes)
        if untagged:
            causes["untagged"] += causes["missing_telemetry"]
            causes["missing_telemetry"] = Fraction(0)
        residual = Fraction(variance) - sum(causes.values())
        discount = _discount_share(cell, prices, residual)
        causes["discount"] += discount
        causes["price_mismatch"] += residual - discount
        cell.prices = _shown_prices(prices)
    cell.causes = _integral(causes, variance)
    cell.money_ok = tolerances.money_ok(variance, cell.calculated)
    cell.quantity_ok = _quantities_agree(cell, tolerances)


def _quantities_agree(cell: Cell, tolerances: Tolerances) -> bool:
    return all(
        tolerances.quantity_ok(billed, cell.ledger_quantity(group))
        for group in (*TOKEN_GROUPS, "request")
        if (billed := cell.billed_quantity(group)) is not None
    )


@dataclass(frozen=True)
class _Prices:
    bill: dict[str, Fraction]
    ledger: dict[str, Fraction]

    def missing(self, group: str) -> Fraction:
        """Unit price of usage the ledger did not see: what the bill charged for it."""
        return self.bill.get(group, self.ledger.get(group, Fraction(0)))

    def excess(self, group: str) -> Fraction:
        """Unit price of usage the bill does not have: what the ledger charged for it."""
        return self.ledger.get(group, self.bill.get(group, Fraction(0)))


def _prices(cell: Cell) -> _Prices:
    bill: dict[str, Fraction] = {}
    ledger: dict[str, Fraction] = {}
    for group in (*TOKEN_GROUPS, "request", "web_search"):
        quantity = cell.billed_quantity(group)
        if quantity and group in cell.billed_money:
            bill[group] = Fraction(cell.billed_money[group]) / quantity
        priced = cell.ledger_quantity(group) - cell.ledger_unpriced.get(group, 0)
        if priced > 0 and group in cell.ledger_money:
            ledger[group] = Fraction(cell.ledger_money[group], priced)
    return _Prices(bill, ledger)


def _quantity_effects(cell: Cell, prices: _Prices, causes: dict[str, Fraction]) -> None:
    """Money of quantities the two sides disagree on: usage one side saw and the other did not."""
    _input_effects(cell, prices, causes)
    for group in ("output", "request", "web_search"):
        billed = cell.billed_quantity(group)
        if billed is None:
            continue
        delta = billed - cell.ledger_quantity(group)
        if delta > 0:
            causes["missing_telemetry"] += delta * prices.missing(group)
        elif delta < 0:
            causes["not_in_bill"] += delta * prices.excess(group)
    for group in (*TOKEN_GROUPS, "request", "web_search"):
        # Money for a kind the ledger saw none of, with no quantity on the bill (a cost report
        # without its usage report): all of it is usage the ledger never saw.
        if cell.billed_quantity(group) is None and cell.ledger_quantity(group) == 0 and cell.billed_money.get(group):
            causes["missing_telemetry"] += cell.billed_money[group]


def _input_effects(cell: Cell, prices: _Prices, causes: dict[str, Fraction]) -> None:
    """Input tokens: a surplus on one side matched by a deficit in another input kind moved
    between kinds (cache reads or writes priced differently: ``discount``); the rest is missing
    telemetry (bill has more) or not in the bill (ledger has more)."""
    positive: dict[str, Fraction] = {}
    negative: dict[str, Fraction] = {}
    for group in INPUT_GROUPS:
        billed = cell.billed_quantity(group)
        if billed is None:
            continue
        delta = billed - cell.ledger_quantity(group)
        if delta > 0:
            positive[group] = delta
        elif delta < 0:
            negative[group] = -delta
    gained, lost = sum(positive.values(), Fraction(0)), sum(negative.values(), Fraction(0))
    gained_usd = sum((q * prices.missing(g) for g, q in positive.items()), Fraction(0))
    lost_usd = sum((q * prices.excess(g) for g, q in negative.items()), Fraction(0))
    moved = min(gained, lost)  # input tokens the two sides put in different kinds
    if gained:
        causes["missing_telemetry"] += gained_usd * (gained - moved) / gained
        causes["discount"] += gained_usd * moved / gained
    if lost:
        causes["not_in_bill"] -= lost_usd * (lost - moved) / lost
        causes["discount"] -= lost_usd * moved / lost


def _unpriced_effect(cell: Cell, prices: _Prices, causes: dict[str, Fraction]) -> None:
    if not cell.unpriced_calls:
        return
    total_tokens = sum(cell.ledger_quantity(g) for g in TOKEN_GROUPS)
    average = Fraction(cell.billed_money.get("other", 0), total_tokens) if total_tokens else Fraction(0)
    for group, count in cell.ledger_unpriced.items():
        # The bill's price for those tokens; a bill that does not split money by kind: its
        # average price per ledger token.
        causes["unpriced_in_ledger"] += count * prices.bill.get(group, average)


def _discount_share(cell: Cell, prices: _Prices, residual: Fraction) -> Fraction:
    """The part of the price effect that cache or tier rates explain (same sign as it, at most it)."""
    if not residual:
        return Fraction(0)
    if cell.bill_tiers & DISCOUNT_TIERS and not cell.ledger_tiers & DISCOUNT_TIERS:
        return residual
    share = Fraction(0)
    base = prices.ledger.get("uncached_input")
    for group in ("cached_input", "cache_write"):
        ledger_price, bill_price = prices.ledger.get(group), prices.bill.get(group)
        if ledger_price is None or bill_price is None or base is None:
            continue
        if group == "cached_input" and ledger_price >= base and bill_price < ledger_price:
            matched = min(cell.billed_quantity(group) or 0, cell.ledger_quantity(group))
            share += matched * (bill_price - ledger_price)  # the cache discount the rate card ignored
    if share and (share > 0) == (residual > 0):
        return share if abs(share) <= abs(residual) else residual
    return Fraction(0)


def _integral(causes: dict[str, Fraction], variance: int) -> dict[str, int]:
    """Whole femto-USD per cause adding up to the variance exactly: each cause floored, the
    units left over to the largest fractional parts (largest remainder; ties in CAUSES order)."""
    floors = {name: math.floor(value) for name, value in causes.items()}
    left = variance - sum(floors.values())
    order = sorted(CAUSES, key=lambda n: (-(causes[n] - floors[n]), CAUSES.index(n)))
    for name in order[:left]:
        floors[name] += 1
    return floors


def _shown_prices(prices: _Prices) -> dict[str, dict[str, str]]:
    """USD per million tokens (per request for requests): implied by the bill, in the rate card."""
    shown: dict[str, dict[str, str]] = {}
    for group in sorted(set(prices.bill) | set(prices.ledger)):
        scale = 1 if group in ("request", "web_search") else 1_000_000
        unit = "per_request" if scale == 1 else "per_mtok"
        entry = {}
        for side, table in (("billed", prices.bill), ("rate_card", prices.ledger)):
            if group in table:
                entry[f"{side}_usd_{unit}"] = _decimal(table[group] * scale / 10**15)
        shown[group] = entry
    return shown


def _decimal(value: Fraction) -> str:
    quantized = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("1e-9"))
    return f"{quantized.normalize():f}"


def _grade(cells: Sequence[Cell], tolerances: Tolerances) -> None:
    totals: dict[tuple[int, int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for cell in cells:
        if cell.compared:
            total = totals[(cell.period_start, cell.period_end, cell.provider, cell.model)]
            total[0] += cell.billed
            total[1] += cell.calculated
    for cell in cells:
        if not cell.bill_lines or not cell.ledger_calls or cell.allocated or not cell.money_lines:
            cell.confidence = "low"
        elif cell.money_ok:
            # Money agrees; quantities must too, else something was reclassified or lost.
            cell.confidence = "high" if cell.quantity_ok else "low"
        else:
            # Money off for the account, right for the model across accounts: a mapping problem.
            billed, calculated = totals[(cell.period_start, cell.period_end, cell.provider, cell.model)]
            cell.confidence = "medium" if tolerances.money_ok(billed - calculated, calculated) else "low"


def prices_json(cell: Cell) -> str:
    """The prices a cell implies, per group (billed, ledger; USD per million tokens), as JSON."""
    return json.dumps(cell.prices, sort_keys=True, separators=(",", ":"))
