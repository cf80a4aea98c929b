"""Normalised billing lines: one shape for every provider export.

Every importer turns its format into ``BillingLine`` values: who was billed (provider,
account, project, workspace, API key), for what (model as billed and its match key, usage
kind), when (a period of an hour or a day), how much (quantity in a base unit, billed
amount as an exact ``Decimal`` with its currency, list amount where the export gives one)
and where the line came from (format, record). Amounts are never floats: JSON numbers are
parsed as ``Decimal`` and cents are divided exactly.

A line's **identity** is a digest of its natural key (format, account, scope ids, model,
kind, charge, tier, description, period): the same line in a re-imported file, or in an
export of an overlapping period, has the same identity, so the newer import replaces it
instead of adding to it. Two lines of one file with the same natural key (legitimate in
FOCUS and CUR files, e.g. two resources of one SKU) get ordinals (``#2``, ``#3``) in file
order, so a re-import still maps each to itself.
"""

from __future__ import annotations

import contextlib
import hashlib
from array import array
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class UsageKind(StrEnum):
    """What a line bills. Input kinds partition the input tokens (uncached + cached + writes)."""

    UNCACHED_INPUT = "uncached_input"
    CACHED_INPUT = "cached_input"
    CACHE_WRITE_5M = "cache_write_5m"
    CACHE_WRITE_1H = "cache_write_1h"
    OUTPUT = "output"
    REQUEST = "request"
    WEB_SEARCH = "web_search"
    OTHER = "other"


INPUT_KINDS: tuple[UsageKind, ...] = (
    UsageKind.UNCACHED_INPUT,
    UsageKind.CACHED_INPUT,
    UsageKind.CACHE_WRITE_5M,
    UsageKind.CACHE_WRITE_1H,
)
TOKEN_KINDS: tuple[UsageKind, ...] = (*INPUT_KINDS, UsageKind.OUTPUT)


class Charge(StrEnum):
    """FOCUS ChargeCategory, lower case. Only ``usage`` lines are reconciled with the ledger;
    the others (tax, credits, purchases, adjustments) are kept and reported beside it."""

    USAGE = "usage"
    PURCHASE = "purchase"
    TAX = "tax"
    CREDIT = "credit"
    ADJUSTMENT = "adjustment"


DEFAULT_WORKSPACE = "default"
"""Anthropic reports the default workspace as ``workspace_id: null``."""

LEDGER_CURRENCY = "USD"
MONEY_PLACES = Decimal("1e-15")
"""Amounts are stored as ``Decimal(38, 15)``: finer digits (float noise in JSON numbers such as
``0.060000000000000005``) are rounded half-even to 1e-15."""

# ISO 4217 codes in current use that an export might plausibly carry. Any of them other than
# USD is refused as "not converted"; anything else as an unknown currency.
# fmt: off
KNOWN_CURRENCIES = frozenset({
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK",
    "EGP", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KRW", "KWD",
    "MXN", "MYR", "NGN", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "RUB",
    "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
})
# fmt: on

UNITS: dict[str, tuple[str, int]] = {
    "token": ("tokens", 1),
    "tokens": ("tokens", 1),
    "1k tokens": ("tokens", 1_000),
    "1000 tokens": ("tokens", 1_000),
    "1,000 tokens": ("tokens", 1_000),
    "thousand tokens": ("tokens", 1_000),
    "1m tokens": ("tokens", 1_000_000),
    "1000000 tokens": ("tokens", 1_000_000),
    "1,000,000 tokens": ("tokens", 1_000_000),
    "million tokens": ("tokens", 1_000_000),
    "request": ("requests", 1),
    "requests": ("requests", 1),
    "1000 requests": ("requests", 1_000),
    "1k requests": ("requests", 1_000),
    "search": ("requests", 1),
    "searches": ("requests", 1),
    "1000 searches": ("requests", 1_000),
    "image": ("images", 1),
    "images": ("images", 1),
    "hour": ("hours", 1),
    "hours": ("hours", 1),
    "hrs": ("hours", 1),
    "second": ("seconds", 1),
    "seconds": ("seconds", 1),
    "character": ("characters", 1),
    "characters": ("characters", 1),
    "1000 characters": ("characters", 1_000),
    "1m characters": ("characters", 1_000_000),
    "gb": ("gigabytes", 1),
    "gb-month": ("gigabyte-months", 1),
}
"""Accepted units (case-insensitive) -> (base unit, multiplier). FOCUS names count units
"Token" / "Request" and allows forms such as "1000 Tokens"; CUR writes "tokens". Anything
else is refused: a quantity in an unknown unit cannot be compared with anything."""


KNOWN_UNITS = (
    "Tokens, 1000 Tokens, 1M Tokens, Requests, 1000 Requests, Searches, Images, Hours, Seconds, Characters, GB"
)


class RecordError(ValueError):
    """One field of one record is wrong: ``field`` = ``value``, ``expected`` says what is accepted."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field} = {_shown(value)}: expected {expected}")


class BillingImportError(ValueError):
    """A file was refused; the message names file, record, field, value and expectation.
    Nothing of a refused file is stored."""

    def __init__(self, file: str, record: str, field: str = "", value: object = None, expected: str = "") -> None:
        self.file = file
        self.record = record
        self.field = field
        self.value = value
        self.expected = expected
        where = f"{file}: {record}" if record else file
        detail = f"{field} = {_shown(value)}: expected {expected}" if field else f"expected {expected}"
        super().__init__(f"{where}: {detail}")

    def as_dict(self) -> dict[str, object]:
        """The error as JSON fields (the API's 422 detail)."""
        return {
            "file": self.file,
            "record": self.record,
            "field": self.field,
            "value": None if self.value is None else _shown(self.value),
            "expected": self.expected,
            "message": str(self),
        }


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True, slots=True)
class BillingLine:
    """One normalised line of a provider bill or usage report."""

    format: str
    """Importer that read it: openai_costs, openai_usage, anthropic_cost, anthropic_usage, focus, aws_cur."""
    provider: str
    """The ledger's provider name (semconv): openai, anthropic, aws.bedrock, azure.ai.openai, gcp.vertex_ai, ..."""
    account_id: str
    project_id: str
    workspace_id: str
    api_key_id: str
    model_billed: str
    """The model as the bill names it."""
    model: str
    """The match key against the ledger's model names (``names.model_key``)."""
    kind: UsageKind
    charge: Charge
    period_start: int
    """Unix seconds, UTC, inclusive."""
    period_end: int
    """Unix seconds, UTC, exclusive."""
    quantity: Decimal | None
    """In ``unit`` (a base unit: tokens, requests, ...); None when the line states no quantity."""
    unit: str
    amount: Decimal | None
    """Billed amount in ``currency``; None for usage reports, which state no money."""
    currency: str
    list_amount: Decimal | None
    service_tier: str
    """standard, batch, priority, flex, ... ('' when not stated)."""
    description: str
    """The export's own label: line item, cost description, usage type, SKU meter."""
    record: str
    """Where in the file (``page 2, bucket 1, result 3`` / ``row 17``)."""
    identity: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """The natural key: everything that says *which* line this is, nothing that says how much."""
        return (
            self.format,
            self.provider,
            self.account_id,
            self.project_id,
            self.workspace_id,
            self.api_key_id,
            self.model_billed,
            self.kind.value,
            self.charge.value,
            self.service_tier,
            self.description,
            str(self.period_start),
            str(self.period_end),
            self.unit,
        )


class _KeySet:
    """A set of non-zero 64-bit keys in an open-addressing table (``array('Q')``, linear
    probing, at most half full): 16 bytes a key where a Python ``set`` of ints takes ~70, which
    is most of an import's memory on a million-line file."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.table = array("Q", bytes(8 * size))
        self.mask = size - 1
        self.count = 0

    def add(self, key: int) -> bool:
        """Insert ``key``; True if it was there already."""
        table, mask = self.table, self.mask
        i = key & mask
        while True:
            found = table[i]
            if found == key:
                return True
            if not found:
                table[i] = key
                self.count += 1
                if self.count * 2 > mask:
                    self._grow()
                return False
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self.table
        self.table = array("Q", bytes(16 * len(old)))
        self.mask = len(self.table) - 1
        self.count = 0
        for key in old:
            if key:
                self.add(key)


class Identities:
    """Assigns identities in file order: the digest of the natural key, ``#n`` from the
    second line with the same key. Memory: one 8-byte key per distinct line, in a table."""

    def __init__(self) -> None:
        self._seen = _KeySet()
        self._repeats: dict[int, int] = {}

    def assign(self, line: BillingLine, extra: tuple[str, ...] = ()) -> BillingLine:
        """The line with its identity: its natural key plus an ordinal among equal keys of the same file."""
        digest = hashlib.blake2b("\x1f".join((*line.key, *extra)).encode(), digest_size=16).digest()
        short = int.from_bytes(digest[:8], "big") or 1
        identity = digest.hex()
        if self._seen.add(short):
            count = self._repeats.get(short, 1) + 1
            self._repeats[short] = count
            identity = f"{identity}#{count}"
        return _replace_identity(line, identity)


def _replace_identity(line: BillingLine, identity: str) -> BillingLine:
    object.__setattr__(line, "identity", identity)  # frozen dataclass, fresh object from the importer
    return line


def parse_decimal(field: str, value: object, *, allow_none: bool = False) -> Decimal | None:
    """An exact decimal from a string, int or ``Decimal`` (JSON read with ``parse_float=Decimal``)."""
    if value is None or value == "":
        if allow_none:
            return None
        raise RecordError(field, value, "a decimal number")
    if isinstance(value, (bool, float)):
        # A float here means the JSON was parsed lossily: refuse rather than guess digits.
        raise RecordError(field, value, "a decimal number read exactly (not a binary float)")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(field, value, "a decimal number") from None
    if not number.is_finite():
        raise RecordError(field, value, "a finite decimal number")
    return number


def money(field: str, value: object, *, allow_none: bool = False) -> Decimal | None:
    """An amount rounded half-even to 1e-15 (the stored precision); refuses what cannot be stored."""
    number: Decimal | None = None
    if value.__class__ is str and value:
        with contextlib.suppress(InvalidOperation):  # the common case: a clean decimal string
            number = Decimal(value)  # type: ignore[arg-type,unused-ignore]
    if number is None or not number.is_finite():
        number = parse_decimal(field, value, allow_none=allow_none)
    if number is None:
        return None
    rounded = number.quantize(MONEY_PLACES)
    if abs(rounded) >= Decimal(10) ** 23:
        raise RecordError(field, value, "an amount below 10^23 (Decimal(38, 15))")
    return rounded


QUANTITY_PLACES = Decimal("1e-12")


def quantity(field: str, value: object, *, allow_none: bool = False) -> Decimal | None:
    """A quantity, stored to 1e-12 of its unit (``Decimal(38, 12)``)."""
    number = parse_decimal(field, value, allow_none=allow_none)
    if number is None:
        return None
    if abs(number) >= Decimal(10) ** 23:
        raise RecordError(field, value, "a quantity below 10^23")
    exponent = number.as_tuple().exponent
    return number.quantize(QUANTITY_PLACES) if isinstance(exponent, int) and exponent < -12 else number


def token_count(field: str, value: object) -> int:
    """A non-negative whole number of tokens or requests (usage reports); missing = 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise RecordError(field, value, "a whole number of tokens")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RecordError(field, value, "a whole number of tokens") from None
    if not number.is_finite() or number != number.to_integral_value() or number < 0 or number >= 2**63:
        raise RecordError(field, value, "a whole number of tokens from 0 to 2^63")
    return int(number)


def currency(field: str, value: object) -> str:
    """The currency code, upper-cased (OpenAI writes ``usd``); only USD is accepted."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(field, value, "an ISO 4217 currency code (USD)")
    code = value.strip().upper()
    if code == LEDGER_CURRENCY:
        return code
    if code in KNOWN_CURRENCIES:
        raise RecordError(field, value, "USD: the ledger is in USD and otelspend never converts currencies")
    raise RecordError(field, value, "an ISO 4217 currency code (USD); this one is unknown")


def unit(field: str, value: object) -> tuple[str, int]:
    """A unit name -> (base unit, multiplier), or RecordError listing what is accepted."""
    text = " ".join(str(value or "").strip().lower().split())
    found = UNITS.get(text)
    if found is None:
        raise RecordError(field, value, f"a known unit ({KNOWN_UNITS})")
    return found
