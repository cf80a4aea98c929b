"""What the "Alerts" and "Budgets" dashboard pages show, as plain data for their templates.

Alerts come from the alert history in the store (the same query as ``GET /v1/alerts``);
budgets from the running controls' memory (the same figures as ``GET /v1/budgets``), so a
page and the API always agree. A budget is drawn as one bar: the track is the amount, the
filled part what was spent, a marker the forecast for the period's end, ticks the
thresholds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

from otelspend.api import display
from otelspend.api.commands import ControlsApi
from otelspend.api.pages import Period
from otelspend.clickhouse.client import Store
from otelspend.controls.store import list_alerts

PAGE_ALERTS = 200
BAR_WIDTH = 560.0


def alerts_page(store: Store, period: Period) -> dict[str, Any]:
    """Alert events in the page's period, newest first, with their deliveries and counts."""
    events = list_alerts(store, start_ns=period.window.start_ns, end_ns=period.window.end_ns, limit=PAGE_ALERTS)
    firing = [e for e in events if e["status"] == "firing"]
    resolved_incidents = {e["incident_id"] for e in events if e["status"] == "resolved"}
    failing = [e for e in events if any(d["status"] in ("retrying", "failed") for d in e["deliveries"])]
    return {
        "alerts": [_alert_row(e, e["incident_id"] in resolved_incidents) for e in events],
        "counts": {
            "firing": len(firing),
            "open": sum(1 for e in firing if e["incident_id"] not in resolved_incidents),
            "resolved": len(resolved_incidents),
            "failing_deliveries": len(failing),
        },
        "by_type": sorted(Counter(e["type"] for e in firing).items(), key=lambda kv: (-kv[1], kv[0])),
        "truncated": len(events) >= PAGE_ALERTS,
    }


def _alert_row(event: Mapping[str, Any], resolved: bool) -> dict[str, Any]:
    return {
        **event,
        "resolved": resolved,
        "dims": ", ".join(f"{k}={v}" for k, v in event["dimensions"].items() if v),
        "observed_text": _measure(event.get("observed")),
        "against_text": _measure(event.get("threshold") or event.get("expected")),
        "against_label": "threshold" if event.get("threshold") else ("expected" if event.get("expected") else ""),
    }


def _measure(value: Mapping[str, str] | None) -> str:
    if not value:
        return display.NONE
    if value["unit"] == "USD":
        return display.usd(value["value"])
    if value["unit"].startswith("USD per"):
        return f"{display.usd(value['value'])} {value['unit'][4:]}"
    return f"{value['value']} {value['unit']}"


def budgets_page(controls: ControlsApi | None) -> dict[str, Any]:
    """Every budget with its bar (spent vs amount vs forecast); ``running`` False without the controls."""
    if controls is None:
        return {"running": False, "budgets": []}
    rows = []
    for budget in controls.budgets():
        rows.append({**budget, "bar": budget_bar(budget), "filter_text": _filter_text(budget["definition"])})
    return {"running": True, "budgets": rows}


def _filter_text(definition: Mapping[str, Any]) -> str:
    pairs = dict(definition.get("filter") or {})
    return ", ".join(f"{k}={v}" for k, v in sorted(pairs.items())) or "everything"


def _number(budget: Mapping[str, Any], key: str) -> float:
    return float(Decimal(str(budget[key])))


def amount_text(budget: Mapping[str, Any], key: str) -> str:
    """An amount as the page shows it: dollars, or tokens."""
    return display.usd(budget[key]) if budget["unit"] == "USD" else f"{int(budget[key]):,} tokens"


def budget_bar(budget: Mapping[str, Any]) -> Markup:
    """One budget as an inline SVG bar (amount = the full track)."""
    amount = _number(budget, "amount")
    spent = _number(budget, "spent")
    forecast = _number(budget, "forecast")
    scale = max(amount, spent, forecast, 1e-18)
    width = BAR_WIDTH

    def x(value: float) -> float:
        return min(value / scale, 1.0) * width

    state = budget["status"]
    bid = escape(f"bar-{budget['id']}")
    title = (
        f"{budget['id']}: spent {amount_text(budget, 'spent')} of {amount_text(budget, 'amount')}, "
        f"forecast {amount_text(budget, 'forecast')} by {budget['period']['to']}"
    )
    parts = [
        f'<svg class="budget-bar {escape(state)}" id="{bid}" width="{width + 2:.0f}" height="30" '
        f'viewBox="0 0 {width + 2:.0f} 30" role="img" aria-labelledby="{bid}-t">',
        f'<title id="{bid}-t">{escape(title)}</title>',
        f'<rect class="track" x="1" y="6" width="{x(amount):.1f}" height="16" rx="3"/>',
        f'<rect class="spent" x="1" y="6" width="{max(x(spent), 0):.1f}" height="16" rx="3"/>',
    ]
    for item in budget["thresholds"]:
        tick = x(float(Decimal(str(item["value"]))))
        parts.append(f'<line class="threshold" x1="{tick + 1:.1f}" x2="{tick + 1:.1f}" y1="3" y2="25"/>')
    marker = x(forecast)
    parts.append(f'<path class="forecast" d="M{marker + 1:.1f} 2 l5 -0 l-5 6 l-5 -6 z"/>')
    parts.append(f'<line class="forecast" x1="{marker + 1:.1f}" x2="{marker + 1:.1f}" y1="6" y2="28"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def type_counts(rows: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """(type, count) pairs for the template."""
    return [{"type": t, "count": n} for t, n in rows]
