"""The "Cost to serve" page in headless Chromium: per tenant (and customer) direct cost, allocated
cost by pool, loaded cost, revenue and margin equal the REST API's; the margin-dilutive list, the
pools and the unit costs too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from tests.dashboard.conftest import Loaded, Tab
from tests.dashboard.test_pages import money_cells, rollup, window_of

LOADED = "direct_cost_usd,allocated_cost_usd,loaded_cost_usd,revenue_usd,margin_usd,margin_pct,runs"


def data_value(tab: Tab, selector: str) -> str | None:
    found = tab.page.locator(f"{selector} data, data{selector}")
    return found.first.get_attribute("value") if found.count() else None


def test_cost_to_serve_equals_the_api(tab: Tab, loaded: Loaded) -> None:
    tab.open("/cost-to-serve")
    page = tab.page
    window = window_of(page)
    with loaded.api() as api:
        (total,) = rollup(api, window, metrics=LOADED)
        rows = rollup(api, window, group_by="tenant", metrics=LOADED, order_by="loaded_cost_usd")
        per_pool = rollup(api, window, group_by="tenant,pool", metrics="allocated_cost_usd")
    assert Decimal(total["allocated_cost_usd"]) > 0 and Decimal(total["revenue_usd"]) > 0
    for card, metric in (("#total-direct", "direct_cost_usd"), ("#total-allocated", "allocated_cost_usd"),
                         ("#total-loaded", "loaded_cost_usd"), ("#total-revenue", "revenue_usd"),
                         ("#total-margin", "margin_usd")):  # fmt: skip
        assert page.get_attribute(card, "value") == total[metric], card
    assert Decimal(total["loaded_cost_usd"]) == Decimal(total["direct_cost_usd"]) + Decimal(total["allocated_cost_usd"])

    columns = {name: i for i, name in enumerate(page.locator("#serve-table thead th").all_text_contents())}
    expected: dict[str, dict[str, Any]] = {row["tenant"]: row for row in rows}
    for label, metric in (("Direct cost", "direct_cost_usd"), ("Allocated", "allocated_cost_usd"),
                          ("Loaded cost", "loaded_cost_usd"), ("Margin", "margin_usd")):  # fmt: skip
        shown = money_cells(page, "#serve-table", columns[label])
        assert shown == {tenant: row[metric] if row[metric] is not None else "—" for tenant, row in expected.items()}
    for pool in ("vector-db", "gpu-cluster"):
        shown = money_cells(page, "#serve-table", columns[f"Allocated: {pool}"])
        want = {r["tenant"]: r["allocated_cost_usd"] for r in per_pool if r["pool"] == pool}
        assert {k: v for k, v in shown.items() if v != "—"} == want
    assert "(unallocated)" not in expected or expected["(unallocated)"]["direct_cost_usd"] == "0.000000000000000"

    # Margin-dilutive: globex (almost no revenue) and the tenants with cost but no revenue, not acme.
    with loaded.api() as api:
        dilutive = api.get("/v1/margins", params={**window, "by": "tenant", "dilutive_only": "true"}).json()["rows"]
    keys = page.locator("#dilutive-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == [row["tenant"] for row in dilutive]
    assert "globex" in keys and "acme" not in keys
    assert page.locator("#serve-table tr[data-key=globex] .badge").inner_text() == "dilutive"


def test_pools_and_unit_costs_equal_the_api(tab: Tab, loaded: Loaded) -> None:
    tab.open("/cost-to-serve")
    page = tab.page
    window = window_of(page)
    with loaded.api() as api:
        listing = api.get("/v1/allocations", params=window).json()
        units = api.get("/v1/unit-costs", params=window).json()["units"]
        pools = api.get("/v1/cost-pools").json()
    allocated: dict[str, Decimal] = {}
    for row in listing["rows"]:
        if not row["unallocated"]:
            allocated[row["pool"]] = allocated.get(row["pool"], Decimal(0)) + Decimal(row["amount_usd"])
    shown = money_cells(page, "#pools-table", 5)
    assert {k: Decimal(v) for k, v in shown.items()} == {
        p["id"]: allocated.get(p["id"], Decimal(0)) for p in pools["pools"]
    }
    due = page.locator("#pools-table tr[data-key=gpu-cluster] .badge").inner_text()
    assert due == "review due"  # reviewed 2025-01-01: overdue
    assert pools["allocation"]["running"] is True and pools["allocation"]["problem"] is None
    (triage,) = units
    group = triage["groups"][0]
    assert group["units"] > 0
    assert money_cells(page, "#units-table", 4) == {"triage": group["loaded_cost_per_unit_usd"]}


def test_by_customer(tab: Tab, loaded: Loaded) -> None:
    tab.open("/cost-to-serve")
    tab.page.click("#by-other")
    assert "by=customer" in tab.page.url
    window = window_of(tab.page)
    with loaded.api() as api:
        rows = rollup(api, window, group_by="customer", metrics=LOADED, order_by="loaded_cost_usd")
    shown = money_cells(tab.page, "#serve-table", 1)
    assert shown == {row["customer"]: row["direct_cost_usd"] for row in rows}
    assert tab.page.locator("#by-other").inner_text() == "tenant"


def test_bad_by_is_a_400_page(loaded: Loaded) -> None:
    response = httpx.get(
        f"{loaded.url}/cost-to-serve?by=planet", headers={"Authorization": f"Bearer {loaded_token()}"}, timeout=30
    )
    assert response.status_code == 400 and "by: unknown value" in response.text


def loaded_token() -> str:
    from tests.dashboard.conftest import TOKEN

    return TOKEN
