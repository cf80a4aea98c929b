"""Budget definitions: from a YAML file (hot-reloaded) or the REST API, validated whole.

::

    version: 1
    budgets:
      - id: acme-daily
        filter: {tenant: acme}          # any dimension; all must equal; {} = everything
        period: day                     # day | week (ISO, Monday) | month
        timezone: Europe/Paris          # calendar the period follows (default UTC)
        amount_usd: "25.00"             # or amount_tokens: 5000000 (input + output tokens)
        thresholds: [0.5, 0.8, 1.0]     # alert at each share of the amount (default)
        forecast: true                  # alert when on pace to exceed (default)
        action: deny                    # /v1/controls/check once spent: deny | warn

Spend counts the runs that **started** in the period, as every rollup does, from the run
rows the pipeline writes (each provider call counted once). A filter on a call-level
dimension (``model``, ``provider``, ``agent``, ``tool``, ``operation``) counts those calls
only. Calls no rate card prices are counted beside the spend (``unpriced_calls``), never
as $0; a token budget counts their tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from otelspend.controls.periods import PeriodKind, zone
from otelspend.controls.validation import ControlsConfigError, Problem, problems_of, read_yaml
from otelspend.money import usd_to_femto
from otelspend.record import RUN_CALL_COLUMNS, RUN_COLUMNS

RUN_DIMENSIONS: tuple[str, ...] = (
    "workflow_type", "workflow_id", "tenant", "customer", "feature", "user", "environment", "prompt_version",
    "team", "cost_center", "product", "owner", "service",
)  # fmt: skip
"""Run-level dimensions a budget may filter on (columns of both runs and run_calls)."""
CALL_DIMENSIONS: tuple[str, ...] = ("model", "provider", "agent", "tool", "operation")
"""Call-level dimensions: a budget filtering on one counts the matching calls only."""
DIMENSIONS: tuple[str, ...] = RUN_DIMENSIONS + CALL_DIMENSIONS
DEFAULT_THRESHOLDS = (Decimal("0.5"), Decimal("0.8"), Decimal("1"))
MAX_USD = Decimal(10**9)
Unit = Literal["USD", "tokens"]
Action = Literal["deny", "warn"]


class BudgetSpec(BaseModel):
    """A budget as written in the file or sent over the API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field("", max_length=200)
    filter: dict[str, str] = {}
    period: PeriodKind
    timezone: str = "UTC"
    amount_usd: Decimal | None = Field(None, gt=0, le=MAX_USD)
    amount_tokens: int | None = Field(None, gt=0, le=10**15)
    thresholds: list[Annotated[Decimal, Field(gt=0, le=10)]] = Field(
        list(DEFAULT_THRESHOLDS), min_length=1, max_length=20
    )
    forecast: bool = True
    action: Action = "deny"

    @field_validator("filter")
    @classmethod
    def _known_dimensions(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DIMENSIONS))
        if unknown:
            raise ValueError(f"unknown dimension {', '.join(unknown)}; expected among {', '.join(DIMENSIONS)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("amount_usd")
    @classmethod
    def _femto_exact(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value.as_tuple().exponent < -15:  # type: ignore[operator]
            raise ValueError("expected at most 15 decimal places (money is exact to 1e-15 USD)")
        return value

    @field_validator("thresholds")
    @classmethod
    def _shares(cls, value: list[Decimal]) -> list[Decimal]:
        if len(set(value)) != len(value):
            raise ValueError("thresholds repeat a value")
        return sorted(value)

    @model_validator(mode="after")
    def _one_amount(self) -> BudgetSpec:
        if (self.amount_usd is None) == (self.amount_tokens is None):
            raise ValueError("expected exactly one of amount_usd (a decimal string) or amount_tokens (an integer)")
        return self


@dataclass(frozen=True)
class Budget:
    """A validated budget, ready to count deltas."""

    spec: BudgetSpec
    source: str
    """``file:<path>`` or ``api``."""
    tz: ZoneInfo
    amount: int
    """femto-USD, or tokens."""
    unit: Unit
    thresholds: tuple[Fraction, ...]
    call_level: bool
    run_filter: tuple[tuple[int, str], ...]
    """(RUN_COLUMNS index, value) pairs a run row must equal."""
    call_filter: tuple[tuple[int, str], ...]
    """(RUN_CALL_COLUMNS index, value) pairs a breakdown row must equal."""

    @property
    def id(self) -> str:
        """The budget id."""
        return self.spec.id

    @property
    def version(self) -> str:
        """A short digest of the definition: incidents of a changed budget are new incidents."""
        text = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def matches_run(self, row: tuple[Any, ...]) -> bool:
        """Whether a run row counts toward the budget (run-level filters only)."""
        return all(row[index] == value for index, value in self.run_filter)

    def matches_call(self, row: tuple[Any, ...]) -> bool:
        """Whether a breakdown row counts toward the budget."""
        return all(row[index] == value for index, value in self.call_filter)

    def definition(self) -> dict[str, Any]:
        """The JSON definition (amounts as strings, thresholds as numbers)."""
        out = self.spec.model_dump(mode="json", exclude_none=True)
        out["thresholds"] = [float(t) for t in self.spec.thresholds]
        return out


_RUN_INDEX = {column.name: index for index, column in enumerate(RUN_COLUMNS)}
_CALL_INDEX = {column.name: index for index, column in enumerate(RUN_CALL_COLUMNS)}


def compile_budget(spec: BudgetSpec, source: str) -> Budget:
    """A spec made ready to count."""
    filters = sorted(spec.filter.items())
    call_level = any(key in CALL_DIMENSIONS for key, _ in filters)
    amount = usd_to_femto(spec.amount_usd) if spec.amount_usd is not None else int(spec.amount_tokens or 0)
    return Budget(
        spec=spec,
        source=source,
        tz=zone(spec.timezone),
        amount=amount,
        unit="USD" if spec.amount_usd is not None else "tokens",
        thresholds=tuple(Fraction(t) for t in spec.thresholds),
        call_level=call_level,
        run_filter=() if call_level else tuple((_RUN_INDEX[k], v) for k, v in filters),
        call_filter=tuple((_CALL_INDEX[k], v) for k, v in filters),
    )


def parse_budget(doc: object, label: str, source: str = "api") -> Budget:
    """One budget from a JSON body; ControlsConfigError naming every problem."""
    if not isinstance(doc, dict):
        raise ControlsConfigError(label, [Problem("", "", None, "expected a JSON object", False)])
    try:
        spec = BudgetSpec.model_validate(doc)
    except ValidationError as exc:
        raise ControlsConfigError(label, problems_of(exc, doc, None, "budget")) from None
    return compile_budget(spec, source)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    budgets: list[BudgetSpec]

    @field_validator("budgets")
    @classmethod
    def _unique_ids(cls, value: list[BudgetSpec]) -> list[BudgetSpec]:
        seen: dict[str, int] = {}
        for index, spec in enumerate(value, 1):
            if spec.id in seen:
                raise ValueError(f"duplicate budget id {spec.id!r} (budgets {seen[spec.id]} and {index})")
            seen[spec.id] = index
        return value


def load_budget_file(path: Path | None) -> tuple[Budget, ...]:
    """The budgets of a YAML file (None: none); ControlsConfigError names file, budget, field, value."""
    if path is None:
        return ()
    label = f"budgets file {path}"
    doc = read_yaml(path, label)
    if not isinstance(doc, dict):
        raise ControlsConfigError(label, [Problem("", "", None, "expected a mapping with a 'budgets' list", False)])
    try:
        parsed = _File.model_validate(doc)
    except ValidationError as exc:
        raise ControlsConfigError(label, problems_of(exc, doc, "budgets", "budget")) from None
    return tuple(compile_budget(spec, f"file:{path}") for spec in parsed.budgets)
