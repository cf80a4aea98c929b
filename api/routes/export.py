"""``GET /v1/export/focus``: the ledger as a FOCUS file (CSV or Parquet), streamed."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from otelspend.api.deps import Authorized, Context
from otelspend.api.params import strict_query
from otelspend.api.window import DAY_NS, parse_window
from otelspend.finance.export.service import export, file_name, request_from_settings, unpriced_calls
from otelspend.finance.export.writers import MEDIA_TYPES

router = APIRouter(prefix="/v1/export", tags=["export"], dependencies=[Authorized, Depends(strict_query)])

DESCRIPTION = """\
FinOps FOCUS 1.3 rows (every FOCUS 1.2 mandatory column, plus ServiceProviderName,
HostProviderName and the Allocated* columns) for the runs that **started** in `[from, to)`: one
row per charge period (`granularity`: hour or day, UTC) x provider x model x billing account x
sub-account x run attribution (Tags) x charge kind (uncached input, cached input, cache write,
output, reasoning, request fee, compute, unitemized) x unit price; a charge period the window
holds only part of is cut to the window. Token quantities are ConsumedQuantity ("Tokens") and
PricingQuantity ("1000000 Tokens"); ListUnitPrice x PricingQuantity = ListCost
exactly. Custom columns (`x_ChargeKind`, `x_RunCount`, `x_CallCount`, `x_CostSource`, ...) come
after the FOCUS columns.

The body is streamed (one UTC day at a time, bounded memory). Calls the rate card could not price
have no cost and are not rows: `X-Otelspend-Unpriced-Calls` and `X-Otelspend-Unpriced-Tokens`
say how many there were in the window. Default window: the last UTC day.
"""


@router.get(
    "/focus",
    summary="The ledger as a FOCUS file (CSV or Parquet), streamed",
    description=DESCRIPTION,
    response_class=StreamingResponse,
    responses={200: {"content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["parquet"]: {}}}},
)
def focus(
    ctx: Context,
    start: Annotated[dt.datetime | None, Query(alias="from", description="Window start (RFC 3339; UTC).")] = None,
    to: Annotated[dt.datetime | None, Query(description="Window end, exclusive (RFC 3339; UTC).")] = None,
    granularity: Annotated[Literal["hour", "day"], Query(description="Charge period of the rows.")] = "day",
    format: Annotated[Literal["csv", "parquet"], Query(description="File format.")] = "csv",
) -> StreamingResponse:
    """The FOCUS file of the runs that started in the window, streamed (see DESCRIPTION)."""
    now_ns = time.time_ns()
    window = parse_window(start, to, now_ns=now_ns // DAY_NS * DAY_NS, default_span_ns=DAY_NS)
    missing = unpriced_calls(ctx.store, window.start_ns, window.end_ns)
    request = request_from_settings(
        ctx.settings.export, window.start_ns, window.end_ns, granularity,
        store=ctx.store, billing_settings=ctx.settings.billing,
    )  # fmt: skip
    name = file_name(window.start_ns, window.end_ns, granularity, format)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Otelspend-Unpriced-Calls": str(missing.get("calls", 0)),
        "X-Otelspend-Unpriced-Tokens": str(missing.get("input_tokens", 0) + missing.get("output_tokens", 0)),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(export(ctx.store, request, format), media_type=MEDIA_TYPES[format], headers=headers)
