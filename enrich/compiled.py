"""A price compiled into integer arithmetic: what one call costs, component by component.

genai-prices prices a call by decomposing usage into "leaf" units (input tokens minus
cache reads and writes, output tokens minus separately priced reasoning, ...), choosing
each unit's tier by the call's total input tokens, and summing price x leaf / per. That
decomposition is linear in the usage we carry, so it compiles once per (model, price
period, request context) into: per priced unit, a component name, integer coefficients
over our usage vector, and the price as femto-USD per unit (exact integer, or an exact
Fraction for the rare price with more than nine decimals per million).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from otelspend.record import FEMTO_PER_USD

# Our usage vector, in this order. genai-prices usage keys for each slot.
USAGE_KEYS: tuple[str, ...] = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "output_reasoning_tokens",
)
U_INPUT, U_CACHE_READ, U_CACHE_WRITE, U_CACHE_WRITE_1H, U_OUTPUT, U_REASONING = range(len(USAGE_KEYS))

COMPONENTS: tuple[str, ...] = ("input", "output", "cache_read", "cache_write", "reasoning", "request", "compute")
C_INPUT, C_OUTPUT, C_CACHE_READ, C_CACHE_WRITE, C_REASONING, C_REQUEST, C_COMPUTE = range(len(COMPONENTS))


class UsageInconsistent(ValueError):
    """Usage that no decomposition can price (e.g. more cache reads than input tokens)."""


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """One priced unit of a compiled price: which cost component it feeds, how its count derives
    from the usage vector, its price in femto-USD per unit (exact), and input-token tiers.
    """

    component: int
    coefficients: tuple[tuple[int, int], ...]
    """(usage slot, coefficient): the unit's leaf count is the sum of coefficient x usage."""
    femto_per_unit: int | Fraction
    tiers: tuple[tuple[int, int | Fraction], ...] = ()
    """(input-token threshold, femto per unit): above the threshold the tier price applies to all units."""
    per_request: bool = False


@dataclass(frozen=True)
class CompiledPrice:
    """Everything needed to price a call and say where the price came from."""

    source: str
    entry: str
    effective_from: str
    units: tuple[UnitPrice, ...]
    multiplier: Fraction = Fraction(1)
    """Discounts and tier multipliers (user rate cards), applied to every component."""
    gpu_second_femto: int | Fraction | None = None
    default_gpus: float = 1.0
    description: str = ""
    rates_usd_per_mtok: dict[str, str] = field(default_factory=dict)
    kind: str = "model"
    """The ``cost_kind`` of calls priced by it (a card entry's ``kind``; model otherwise)."""
    scaled: bool = field(init=False, repr=False, compare=False)
    """multiplier != 1, computed once (a Fraction comparison per unit is measurable per span)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scaled", self.multiplier != 1)

    def cost(self, usage: Sequence[int], *, compute_seconds: Fraction | float | None = None) -> list[int]:
        """Femto-USD per component (``COMPONENTS`` order), each rounded half-even to a whole
        femto-USD. Raises UsageInconsistent."""
        out = [0] * len(COMPONENTS)
        total_input = usage[U_INPUT]
        multiplier = self.multiplier
        scaled = self.scaled
        for unit in self.units:
            if unit.per_request:
                count = 1
            else:
                count = 0
                for slot, coefficient in unit.coefficients:
                    count += coefficient * usage[slot]
                if count < 0:
                    raise UsageInconsistent(
                        "usage decomposes to a negative count (e.g. cached tokens above input tokens)"
                    )
                if not count:
                    continue
            price = unit.femto_per_unit
            if unit.tiers:
                for threshold, tier_price in reversed(unit.tiers):
                    if total_input > threshold:
                        price = tier_price
                        break
            value = price * count
            if scaled:
                value = value * multiplier
            out[unit.component] += value if isinstance(value, int) else _round(value)
        if self.gpu_second_femto is not None and compute_seconds:
            value = Fraction(self.gpu_second_femto) * Fraction(compute_seconds) * multiplier
            out[C_COMPUTE] += _round(value)
        return out


def _round(value: int | Fraction) -> int:
    """Round half to even to whole femto-USD (1e-15 USD)."""
    return value if isinstance(value, int) else round(value)


def femto_per_unit(price: Fraction, per: int) -> int | Fraction:
    """USD per ``per`` units -> femto-USD per unit, an int whenever that is exact."""
    value = price * FEMTO_PER_USD / per
    return value.numerator if value.denominator == 1 else value
