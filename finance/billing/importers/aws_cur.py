"""AWS CUR 2.0 Bedrock lines (CSV, gzip CSV or Parquet).

Bedrock bills one line per token type, told apart by ``line_item_usage_type``:
``USE1-Claude4.6Sonnet-input-tokens``, ``...-output-tokens``,
``...-cache-read-input-token-count``, ``...-cache-write-input-token-count`` (the prefix
carries the region; tier and cross-region routing appear as words in between). AWS warns
that summing only input and output tokens will not match the bill: every token type is
read. Rows of ``line_item_product_code`` ``AmazonBedrock``, or whose usage type is a Bedrock
token type (some Anthropic models bill under a separate marketplace-style product code),
are imported; other AWS services are counted as skipped.

Billed amount: ``line_item_net_unblended_cost`` when the export has it (after discounts),
else ``line_item_unblended_cost``; list amount ``pricing_public_on_demand_cost``. The payer
account is the account, the usage account the project, ``line_item_iam_principal`` the
key (IAM principal cost attribution).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from otelspend.finance.billing.importers.base import Counters, Head, Source, Table, check_period, located, parse_time
from otelspend.finance.billing.lines import (
    BillingImportError,
    BillingLine,
    Charge,
    Identities,
    RecordError,
    UsageKind,
    currency,
    money,
    quantity,
    unit,
)
from otelspend.finance.billing.names import model_key, parse_usage_type

REQUIRED = (
    "line_item_usage_type",
    "line_item_unblended_cost",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
)
COLUMNS = (
    *REQUIRED,
    "line_item_product_code",
    "line_item_line_item_type",
    "line_item_usage_amount",
    "line_item_net_unblended_cost",
    "line_item_currency_code",
    "line_item_usage_account_id",
    "line_item_iam_principal",
    "line_item_resource_id",
    "line_item_operation",
    "bill_payer_account_id",
    "pricing_unit",
    "pricing_public_on_demand_cost",
    "resource_tags",
)
BEDROCK_PRODUCT = "amazonbedrock"
LINE_ITEM_TYPES: dict[str, Charge] = {
    "usage": Charge.USAGE,
    "discountedusage": Charge.USAGE,
    "savingsplancoveredusage": Charge.USAGE,
    "tax": Charge.TAX,
    "credit": Charge.CREDIT,
    "refund": Charge.CREDIT,
    "fee": Charge.PURCHASE,
    "rifee": Charge.PURCHASE,
    "savingsplanrecurringfee": Charge.PURCHASE,
    "savingsplanupfrontfee": Charge.PURCHASE,
    "savingsplannegation": Charge.ADJUSTMENT,
    "bundleddiscount": Charge.ADJUSTMENT,
    "discount": Charge.ADJUSTMENT,
    "edpdiscount": Charge.ADJUSTMENT,
    "privateratediscount": Charge.ADJUSTMENT,
    "distributordiscount": Charge.ADJUSTMENT,
}


class AwsCur:
    """AWS Cost and Usage Report 2.0 (CSV or Parquet): the Amazon Bedrock lines."""

    format = "aws_cur"
    description = "AWS CUR 2.0 lines of Amazon Bedrock (CSV, gzip CSV or Parquet)"

    def identify(self, head: Head) -> bool:
        """A CUR 2.0 header (``line_item_usage_type`` and ``line_item_unblended_cost``)."""
        return head.kind in ("csv", "parquet") and all(column in head.columns for column in REQUIRED)

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """Billing lines of the Bedrock usage rows (model and token kind from the usage type)."""
        table = Table(source, COLUMNS)
        missing = [c for c in REQUIRED if c not in table.index]
        if missing:
            raise BillingImportError(
                source.name, "header", "columns", missing, "the CUR 2.0 columns " + ", ".join(REQUIRED)
            )
        at = {name: table.index.get(name, -1) for name in COLUMNS}
        identities = Identities()
        for number, row in table.rows():
            record = f"row {number}"
            try:
                line = _line(source, row, at, record, counters)
            except RecordError as error:
                raise located(source, record, error) from None
            if line is not None:
                extra = tuple(
                    _text(row, at, n) for n in ("line_item_resource_id", "line_item_operation", "resource_tags")
                )
                yield identities.assign(line, extra)


def _get(row: list[Any], at: dict[str, int], name: str) -> Any:
    position = at[name]
    if position < 0:
        return None
    value = row[position]
    return None if value == "" else value


def _text(row: list[Any], at: dict[str, int], name: str) -> str:
    value = _get(row, at, name)
    return "" if value is None else str(value).strip()


def _line(source: Source, row: list[Any], at: dict[str, int], record: str, counters: Counters) -> BillingLine | None:
    usage_type = _text(row, at, "line_item_usage_type")
    product = _text(row, at, "line_item_product_code")
    parsed = parse_usage_type(usage_type)
    if parsed is None and product.lower() != BEDROCK_PRODUCT:
        counters.skip("not Amazon Bedrock")
        return None
    model, kind, tier = parsed if parsed is not None else (usage_type, UsageKind.OTHER, "")
    charge = _charge(_text(row, at, "line_item_line_item_type") or "Usage")
    if charge is not Charge.USAGE:
        model, kind = "", UsageKind.OTHER
    start = parse_time("line_item_usage_start_date", _get(row, at, "line_item_usage_start_date"))
    end = parse_time("line_item_usage_end_date", _get(row, at, "line_item_usage_end_date"))
    check_period(start, end, "line_item_usage_end_date")
    net = _get(row, at, "line_item_net_unblended_cost")
    field = "line_item_net_unblended_cost" if net is not None else "line_item_unblended_cost"
    amount = money(field, net if net is not None else _get(row, at, "line_item_unblended_cost"))
    code = _currency(_text(row, at, "line_item_currency_code") or "USD")
    raw_quantity = _get(row, at, "line_item_usage_amount")
    count, base = None, ""
    if raw_quantity is not None:
        unit_name = _text(row, at, "pricing_unit") or ("tokens" if parsed is not None else "")
        base, factor = _unit(unit_name)
        number = quantity("line_item_usage_amount", raw_quantity)
        assert number is not None
        count = number * factor
    return BillingLine(
        format=AwsCur.format,
        provider="aws.bedrock",
        account_id=_text(row, at, "bill_payer_account_id") or source.account,
        project_id=_text(row, at, "line_item_usage_account_id"),
        workspace_id="",
        api_key_id=_text(row, at, "line_item_iam_principal"),
        model_billed=model,
        model=model_key(model),
        kind=kind,
        charge=charge,
        period_start=start,
        period_end=end,
        quantity=count,
        unit=base,
        amount=amount,
        currency=code,
        list_amount=money(
            "pricing_public_on_demand_cost", _get(row, at, "pricing_public_on_demand_cost"), allow_none=True
        ),
        service_tier=tier,
        description=usage_type,
        record=record,
    )


@functools.lru_cache(maxsize=64)
def _charge(value: str) -> Charge:
    found = LINE_ITEM_TYPES.get(value.lower())
    if found is None:
        raise RecordError(
            "line_item_line_item_type", value, "a CUR line item type: " + ", ".join(sorted(LINE_ITEM_TYPES))
        )
    return found


@functools.lru_cache(maxsize=64)
def _currency(value: str) -> str:
    return currency("line_item_currency_code", value)


@functools.lru_cache(maxsize=64)
def _unit(value: str) -> tuple[str, int]:
    return unit("pricing_unit", value)
