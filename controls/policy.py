"""Model routing policy: which models (globs) and what price per million tokens each
workflow type, feature or environment may use.

YAML, validated whole at load (errors name the file, the rule, the field, the value and
what was expected), hot-reloaded; an invalid edit keeps the previous policy::

    version: 1
    rules:
      - id: support-small-models
        match: {workflow_type: "support_*", environment: production}   # globs; all must match
        models: ["claude-haiku-*", "gpt-4o-mini*"]                       # allowed (optional)
        deny_models: ["*-preview"]                                       # never (optional)
        max_usd_per_mtok: {input: "1.00", output: "5.00"}                # list prices (optional)
        action: deny                                                     # what /v1/controls/check answers

A call breaks a rule when the rule applies to its run (every ``match`` key matches; no
``match`` applies to everything) and its model is not among ``models`` (when given),
matches ``deny_models``, or is priced above a cap. Caps compare the rate card's list
price in force for the call (user card, else genai-prices, discounts applied; the tier
its input tokens select): a model no rate card prices breaks a cap (its price is unknown,
never taken as $0). Model globs are case-insensitive and see the model that answered
(else the one asked for); a dated snapshot such as ``gpt-4o-mini-2024-07-18`` matches
``gpt-4o-mini*``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from otelspend.controls.validation import ControlsConfigError, Problem, problems_of, read_yaml
from otelspend.enrich.compiled import C_INPUT, C_OUTPUT, CompiledPrice
from otelspend.record import FEMTO_PER_USD

MATCH_KEYS: tuple[str, ...] = ("workflow_type", "feature", "environment", "tenant", "customer", "service")
"""Run attributes a rule may match on."""
Action = Literal["deny", "warn"]


class _Caps(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Decimal | None = Field(None, ge=0, le=1_000_000)
    output: Decimal | None = Field(None, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _some(self) -> _Caps:
        if self.input is None and self.output is None:
            raise ValueError("expected an input and/or output price cap in USD per million tokens")
        return self


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    description: str = ""
    match: dict[str, str] = {}
    models: list[str] | None = Field(None, min_length=1)
    deny_models: list[str] = []
    max_usd_per_mtok: _Caps | None = None
    action: Action = "deny"

    @field_validator("match")
    @classmethod
    def _known_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MATCH_KEYS))
        if unknown:
            raise ValueError(f"cannot match on {', '.join(unknown)}; expected keys among {', '.join(MATCH_KEYS)}")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> _Rule:
        if self.models is None and not self.deny_models and self.max_usd_per_mtok is None:
            raise ValueError("a rule needs models, deny_models or max_usd_per_mtok")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: list[_Rule]

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: list[_Rule]) -> list[_Rule]:
        seen: dict[str, int] = {}
        for index, rule in enumerate(value, 1):
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r} (rules {seen[rule.id]} and {index})")
            seen[rule.id] = index
        return value


@dataclass(frozen=True)
class UnitPrices:
    """List prices in USD per million tokens (None: that kind is not priced per token)."""

    input: Fraction | None
    output: Fraction | None


_PER_MTOK = Fraction(10**6, FEMTO_PER_USD)


def unit_prices(compiled: CompiledPrice, input_tokens: int = 0) -> UnitPrices:
    """The input and output token prices of a compiled price, per million tokens, with its
    discount multiplier and the tier ``input_tokens`` selects."""
    found: dict[int, Fraction] = {}
    for unit in compiled.units:
        if unit.per_request or unit.component not in (C_INPUT, C_OUTPUT) or unit.component in found:
            continue
        price = unit.femto_per_unit
        for threshold, tier_price in reversed(unit.tiers):
            if input_tokens > threshold:
                price = tier_price
                break
        found[unit.component] = Fraction(price) * compiled.multiplier * _PER_MTOK
    return UnitPrices(found.get(C_INPUT), found.get(C_OUTPUT))


class UnitPriceCache:
    """``unit_prices`` for the hot path: each compiled price is turned once into its per-MTok
    input and output prices per tier, so a call only picks its tier (no fraction arithmetic)."""

    def __init__(self) -> None:
        self._tables: dict[int, tuple[CompiledPrice, list[tuple[tuple[int, ...], list[UnitPrices]]]]] = {}

    def prices(self, compiled: CompiledPrice, input_tokens: int) -> UnitPrices:
        """The unit prices in force for a call with ``input_tokens``."""
        entry = self._tables.get(id(compiled))
        if entry is None or entry[0] is not compiled:  # ids are recycled: keep and compare the object
            if len(self._tables) >= 10_000:
                self._tables.clear()
            entry = self._tables[id(compiled)] = (compiled, _tier_table(compiled))
        for thresholds, by_tier in entry[1]:
            tier = 0
            for threshold in thresholds:
                if input_tokens > threshold:
                    tier += 1
            return by_tier[tier]
        return UnitPrices(None, None)


def _tier_table(compiled: CompiledPrice) -> list[tuple[tuple[int, ...], list[UnitPrices]]]:
    """The thresholds where any input or output price changes, and the unit prices between them."""
    thresholds = sorted({t for unit in compiled.units if unit.component in (C_INPUT, C_OUTPUT) for t, _ in unit.tiers})
    points = [0] + [t + 1 for t in thresholds]
    return [(tuple(thresholds), [unit_prices(compiled, tokens) for tokens in points])]


@dataclass(frozen=True)
class Violation:
    """A call (or a checked model) outside one rule."""

    rule: str
    action: Action
    reason: str


@dataclass(frozen=True)
class PolicyRule:
    """A validated rule."""

    id: str
    match: tuple[tuple[str, str], ...]
    allow: tuple[str, ...] | None
    deny: tuple[str, ...]
    max_input: Fraction | None
    max_output: Fraction | None
    action: Action
    description: str = ""

    def applies(self, context: Mapping[str, str], *, final: bool) -> bool | None:
        """Whether the rule covers a run with ``context``; None while a key it matches on is
        not known yet (``final`` False: the run's root, which carries it, has not arrived)."""
        for key, pattern in self.match:
            value = context.get(key, "")
            if not value and not final:
                return None
            if not fnmatch.fnmatchcase(value, pattern):
                return False
        return True

    @property
    def prices_needed(self) -> bool:
        """Whether checking a model needs its price."""
        return self.max_input is not None or self.max_output is not None

    def check(self, model: str, prices: UnitPrices | str | None) -> Violation | None:
        """``model`` against the rule; ``prices`` are its unit prices, or why it is unpriced."""
        name = model.lower()
        if self.allow is not None and not any(fnmatch.fnmatchcase(name, p) for p in self.allow):
            return Violation(self.id, self.action, f"model {model!r} is not among the allowed {list(self.allow)}")
        denied = next((p for p in self.deny if fnmatch.fnmatchcase(name, p)), None)
        if denied is not None:
            return Violation(self.id, self.action, f"model {model!r} matches the denied {denied!r}")
        if not self.prices_needed:
            return None
        if not isinstance(prices, UnitPrices):
            why = f" ({prices})" if prices else ""
            return Violation(
                self.id, self.action, f"model {model!r} has no known price{why}, so a price cap cannot clear it"
            )
        for kind, cap, price in (("input", self.max_input, prices.input), ("output", self.max_output, prices.output)):
            if cap is not None and price is not None and price > cap:
                return Violation(
                    self.id,
                    self.action,
                    f"model {model!r} costs {_usd(price)} USD per million {kind} tokens, above the cap of {_usd(cap)}",
                )
        return None


def _usd(value: Fraction) -> str:
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0").rstrip(".") or "0"


class Policy:
    """The rules in force (empty: nothing is outside policy)."""

    def __init__(self, rules: tuple[PolicyRule, ...] = (), path: Path | None = None) -> None:
        self.rules = rules
        self.path = path

    def __bool__(self) -> bool:
        return bool(self.rules)


def load_policy(path: Path | None) -> Policy:
    """Read and validate a policy file (None: no policy); ControlsConfigError names each problem."""
    if path is None:
        return Policy()
    label = f"policy file {path}"
    return parse_policy(read_yaml(path, label), label, path)


def parse_policy(doc: object, label: str, path: Path | None = None) -> Policy:
    """Validate a parsed policy document."""
    if not isinstance(doc, dict):
        raise ControlsConfigError(label, [Problem("", "", None, "expected a mapping with a 'rules' list", False)])
    try:
        parsed = _File.model_validate(doc)
    except ValidationError as exc:
        raise ControlsConfigError(label, problems_of(exc, doc, "rules", "rule")) from None
    return Policy(tuple(_compile(rule) for rule in parsed.rules), path)


def _compile(rule: _Rule) -> PolicyRule:
    caps = rule.max_usd_per_mtok
    return PolicyRule(
        id=rule.id,
        match=tuple(sorted(rule.match.items())),
        allow=tuple(p.lower() for p in rule.models) if rule.models is not None else None,
        deny=tuple(p.lower() for p in rule.deny_models),
        max_input=Fraction(caps.input) if caps and caps.input is not None else None,
        max_output=Fraction(caps.output) if caps and caps.output is not None else None,
        action=rule.action,
        description=rule.description,
    )
