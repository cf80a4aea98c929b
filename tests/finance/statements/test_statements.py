"""Chargeback statements: figures equal the rollups API's for the same month and owner, owners add
up to the month (the unattributed bucket explicit), the printable page in Chromium, PDFs printed
by the CLI rendered back to text and pixels."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from otelspend.cli import main
from otelspend.finance.statements.model import month_window
from tests import canary
from tests.finance.conftest import Ledger

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def _month() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


def _window(month: str) -> dict[str, str]:
    start, end = month_window(month)
    iso = lambda s: dt.datetime.fromtimestamp(s, tz=dt.UTC).isoformat()  # noqa: E731
    return {"from": iso(start), "to": iso(end)}


@pytest.mark.parametrize("by", ["team", "cost_center", "tenant"])
def test_statement_figures_equal_the_rollups_api(ledger: Ledger, by: str) -> None:
    month = _month()
    with ledger.api() as api:
        answer = api.get("/v1/statements", params={"month": month, "by": by}).json()
        rollups = api.get(
            "/v1/rollups", params={**_window(month), "group_by": by, "metrics": "cost_usd,runs,calls", "limit": 1000}
        ).json()["rows"]
        total = api.get("/v1/rollups", params={**_window(month), "metrics": "cost_usd"}).json()["rows"][0]
    expected = {r[by]: (Decimal(r["cost_usd"]), r["runs"], r["calls"]) for r in rollups if r["runs"]}
    found = {s["owner"]: (Decimal(s["direct_cost_usd"]), s["runs"], s["calls"]) for s in answer["statements"]}
    assert found == expected
    assert sum(v[0] for v in found.values()) == Decimal(answer["month_cost_usd"]) == Decimal(total["cost_usd"])
    if by != "tenant":  # the run without a team (or cost center) is the explicit unattributed bucket
        assert answer["statements"][-1]["owner"] == "" and answer["statements"][-1]["label"] == "(unattributed)"
    first = answer["statements"][0]
    assert first["top_workflows"] and first["top_features"] and first["billed_cost_usd"] is None
    assert first["previous_month_cost_usd"] == "0.000000000000000" and first["change_pct"] is None


def test_one_owner_and_csv(ledger: Ledger) -> None:
    with ledger.api() as api:
        one = api.get("/v1/statements", params={"month": _month(), "by": "team", "owner": "support"}).json()
        text = api.get("/v1/statements", params={"month": _month(), "by": "team", "format": "csv"}).text
        missing = api.get("/v1/statements", params={"month": _month(), "by": "team", "owner": "nobody"})
        bad = api.get("/v1/statements", params={"month": "2026-13"})
    assert [s["owner"] for s in one["statements"]] == ["support"]
    lines = text.strip().splitlines()
    assert lines[0].startswith("month,by,owner,direct_cost_usd") and len(lines) == 1 + 3  # search, support, ''
    assert any(line.startswith(f"{_month()},team,support,{one['statements'][0]['direct_cost_usd']},") for line in lines)
    assert missing.status_code == 422 and bad.status_code == 422


def test_the_printable_page_in_chromium(ledger: Ledger, tmp_path: Path) -> None:
    url = ledger.server.api_url
    with ledger.api() as api:
        answer = api.get("/v1/statements", params={"month": _month(), "by": "team"}).json()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.add_cookies([{"name": "otelspend_token", "value": canary.API_TOKEN, "url": url, "httpOnly": True}])
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        response = page.goto(f"{url}/statements?month={_month()}&by=team")
        assert response is not None and response.status == 200
        canary.check_text(page.content(), "statements page")
        articles = page.locator("article.statement")
        assert articles.count() == len(answer["statements"])
        assert page.locator("article.statement h1 .owner").all_inner_texts() == [
            s["label"] for s in answer["statements"]
        ]
        assert page.locator(".toolbar").is_visible()
        if os.environ.get("OTELSPEND_UPDATE_SCREENSHOT"):  # `make screenshot` refreshes the README's image
            page.set_viewport_size({"width": 1100, "height": 640})
            page.screenshot(path=str(REPO / "docs" / "img" / "statement.png"))
        page.emulate_media(media="print")
        assert not page.locator(".toolbar").is_visible(), "the toolbar is for the screen only"
        pdf = page.pdf(format="A4")
        assert problems == []
        browser.close()
    path = tmp_path / "page.pdf"
    path.write_bytes(pdf)
    pages = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    count = next(int(line.split()[-1]) for line in pages.splitlines() if line.startswith("Pages:"))
    assert count == len(answer["statements"]), "one printed page per owner"


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def _pixels(pdf: Path, tmp_path: Path) -> tuple[int, int, bytes]:
    """The PDF's first page as raw RGB (pdftoppm's binary PPM): width, height, pixels."""
    prefix = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(prefix)], check=True)
    (image,) = tmp_path.glob("page*.ppm")
    data = image.read_bytes()
    magic, width, height, depth, rest = data.split(maxsplit=4)
    assert magic == b"P6" and depth == b"255"
    return int(width), int(height), rest


def test_cli_prints_one_pdf_per_owner(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "pdf"
    csv_path = tmp_path / "statements.csv"
    code, output = _cli("statements", "--month", _month(), "--by", "team", "--pdf", str(out), "--csv", str(csv_path),
                        "--api", ledger.server.api_url, "--token", canary.API_TOKEN)  # fmt: skip
    assert code == 0, output
    with ledger.api() as api:
        answer = api.get("/v1/statements", params={"month": _month(), "by": "team"}).json()
    files = sorted(p.name for p in out.glob("*.pdf"))
    assert files == sorted(
        f"statement-{_month()}-team-{s['owner'] or '_unattributed'}.pdf" for s in answer["statements"]
    )
    support = next(s for s in answer["statements"] if s["owner"] == "support")
    pdf = out / f"statement-{_month()}-team-support.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    cost = Decimal(support["direct_cost_usd"])
    shown = f"${cost.quantize(Decimal('0.000001') if cost < 1 else Decimal('0.01')):,}"
    assert "Statement for team support" in " ".join(text.split()) and shown in text, text
    assert "top workflows" in text.lower() and support["top_workflows"][0]["name"] in text
    width, height, pixels = _pixels(pdf, tmp_path)
    assert (width, height) == (331, 468), "A4 at 40 dpi"
    dark = sum(1 for i in range(0, len(pixels), 3) if pixels[i] + pixels[i + 1] + pixels[i + 2] < 200)
    accent = sum(
        1 for i in range(0, len(pixels), 3) if pixels[i + 2] > 150 and pixels[i] < 90 and pixels[i + 1] < 140
    )  # the blue rule under the header and the owner's name
    assert 0.002 < dark / (width * height) < 0.3 and accent > 50
    assert csv_path.read_text().startswith("month,by,owner")


def test_cli_reads_the_same_statements_offline_and_through_the_server(ledger: Ledger, tmp_path: Path) -> None:
    served, offline = tmp_path / "served.csv", tmp_path / "offline.csv"
    server = ["--api", ledger.server.api_url, "--token", canary.API_TOKEN]
    code, output = _cli("statements", "--month", _month(), "--by", "cost_center", "--csv", str(served), *server)
    assert code == 0, output
    settings = ledger.server.app.settings
    store = ["--clickhouse-dsn", settings.clickhouse.dsn.get_secret_value(), "--database",
             settings.clickhouse.database, "--data-dir", str(tmp_path)]  # fmt: skip
    code, output = _cli("statements", "--month", _month(), "--by", "cost_center", "--csv", str(offline), "--offline",
                        *store)  # fmt: skip
    assert code == 0, output
    assert served.read_text() == offline.read_text() and served.read_text().count("\n") == 1 + 3  # cc-100, cc-200, ''
    code, output = _cli("statements", "--month", _month(), "--by", "team", "--owner", "support", "--offline", *store)
    assert code == 0 and "support" in output and "search" not in output, output
    code, output = _cli("statements", "--month", _month(), "--by", "team", "--owner", "nobody", "--offline", *store)
    assert code == 1 and "no statement for team 'nobody'" in output, output
