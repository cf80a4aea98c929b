"""Shared helpers for the billing tests: fixture paths, lines as plain dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otelspend.finance.billing.importers import Counters, Source, choose
from otelspend.finance.billing.lines import BillingLine

TESTDATA = Path(__file__).resolve().parent / "testdata"


def line_dict(line: BillingLine) -> dict[str, Any]:
    """Every field, money and quantities as exact decimal strings."""
    out: dict[str, Any] = {}
    for name in BillingLine.__dataclass_fields__:
        value = getattr(line, name)
        if value is None:
            out[name] = None
        elif hasattr(value, "value"):  # enums
            out[name] = value.value
        elif isinstance(value, int | str):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def extract(path: Path, format: str = "auto", account: str = "") -> tuple[list[BillingLine], Counters]:
    importer = choose(path, path.name, format)
    counters = Counters()
    return list(importer.extract(Source(path, path.name, account), counters)), counters
