"""Quantities and unit prices that multiply back to the cost exactly. Pure.

FOCUS requires ``ListUnitPrice x PricingQuantity = ListCost`` on every usage row. A row here
aggregates calls that were charged the *same* rate: ``rate = cost / quantity`` as an exact
fraction of femto-USD per base unit (one token, one request, one GPU-microsecond), so the row's
cost is the rate times its quantity with no rounding at all.

The unit shown is the one providers price in: a million tokens ("1000000 Tokens", the way rate
cards and genai-prices publish token prices), a request, a GPU-second. When that unit would give
a unit price with more decimals than a decimal column holds (a sub-femto rate left by rounding a
discount), the unit becomes ``"<N> Tokens"`` with N the rate's denominator: a whole number of
femto-USD per N tokens, still exact, still a valid FOCUS unit ("<unit-quantity> <plural-units>").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from otelspend.record import FEMTO_PER_USD

MAX_DECIMALS = 18
"""Decimal places a unit price or quantity may need (Parquet columns are decimal(38, 18))."""


@dataclass(frozen=True, eq=False)
class BaseUnit:
    """What one unit of a charge kind's quantity is, and how it is shown (one constant per unit:
    compared and hashed by identity, cheap as a cache key)."""

    plural: str
    """The base unit's FOCUS name (plural): "Tokens", "Requests", "GPU-Microseconds"."""
    display_scale: int
    """Base units per displayed unit (1000000 tokens, 1 request, 1000000 GPU-microseconds)."""
    display: str
    """The displayed unit: "1000000 Tokens", "Requests", "GPU-Seconds"."""
    consumed_scale: int
    """Base units per ConsumedUnit (1 token, 1 request, 1000000 GPU-microseconds)."""
    consumed: str
    """ConsumedUnit: "Tokens", "Requests", "GPU-Seconds"."""


TOKENS = BaseUnit("Tokens", 1_000_000, "1000000 Tokens", 1, "Tokens")
REQUESTS = BaseUnit("Requests", 1, "Requests", 1, "Requests")
GPU_MICROSECONDS = BaseUnit("GPU-Microseconds", 1_000_000, "GPU-Seconds", 1_000_000, "GPU-Seconds")
SHARES = BaseUnit("Units", 1, "Units", 1, "Units")
"""Allocated shares: the allocation's signal quantity in whole units."""


@dataclass(frozen=True)
class Priced:
    """A row's pricing columns."""

    pricing_unit: str
    pricing_quantity: Decimal
    unit_price: Decimal
    consumed_unit: str
    consumed_quantity: Decimal


def exact_decimal(value: Fraction, max_places: int = MAX_DECIMALS) -> Decimal | None:
    """``value`` as a terminating decimal with at most ``max_places`` places, else None."""
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    places = max(twos, fives)
    if den != 1 or places > max_places:
        return None
    scaled = value.numerator * 10**places // value.denominator
    return Decimal(scaled).scaleb(-places)


@dataclass(frozen=True)
class RateForm:
    """How one rate is shown, whatever the quantity (computed once per distinct rate)."""

    pricing_unit: str
    unit_price: Decimal
    per: int
    """Base units per displayed unit (the quantity shown is the base quantity / per)."""
    consumed_unit: str
    consumed_scale: int


@functools.lru_cache(maxsize=65_536)
def rate_form(numerator: int, denominator: int, unit: BaseUnit) -> RateForm:
    """The unit and unit price the rate ``numerator / denominator`` (reduced) is shown with (see
    ``price``); keyed by integers, which hash faster than a Fraction."""
    rate = Fraction(numerator, denominator)
    shown_price = exact_decimal(rate * unit.display_scale / FEMTO_PER_USD)
    if shown_price is not None and exact_decimal(Fraction(1, unit.display_scale)) is not None:
        return RateForm(unit.display, shown_price, unit.display_scale, unit.consumed, unit.consumed_scale)
    name = unit.plural if denominator == 1 else f"{denominator} {unit.plural}"
    return RateForm(name, Decimal(numerator).scaleb(-15), denominator, unit.consumed, unit.consumed_scale)


def _scaled(quantity: int, scale: int) -> Decimal:
    """``quantity / scale`` exactly, for a power-of-ten scale (or any scale dividing it)."""
    if scale == 1:
        return Decimal(quantity)
    places = len(str(scale)) - 1
    if 10**places == scale:
        return Decimal(quantity).scaleb(-places)
    return Decimal(quantity // scale)


def price(cost_femto: int, quantity: int, rate: Fraction, unit: BaseUnit) -> Priced:
    """Pricing columns for ``quantity`` base units charged ``rate`` femto-USD each.

    Raises ValueError when the cost is not the rate times the quantity (the caller grouped
    calls with different rates) or when the quantity is not positive.
    """
    if quantity <= 0:
        raise ValueError(f"a priced row needs a positive quantity, got {quantity}")
    numerator, denominator = rate.numerator, rate.denominator
    if numerator * quantity != cost_femto * denominator:
        raise ValueError(f"cost {cost_femto} femto-USD is not {rate} x {quantity}")
    form = rate_form(numerator, denominator, unit)
    # When the displayed unit is a block of N base units (N the rate's denominator), N divides
    # every call's quantity (each call's cost is whole femto-USD), so the division is exact.
    return Priced(
        form.pricing_unit,
        _scaled(quantity, form.per),
        form.unit_price,
        form.consumed_unit,
        _scaled(quantity, form.consumed_scale),
    )


def render_decimal(value: Decimal) -> str:
    """Plain decimal notation (no exponent), trailing zeros dropped: ``0.000003``, ``12``, ``-1.5``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
