"""Pure parts of the dashboard: money and number display, the SVG charts, the span tree rows."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from otelspend.api import display, svg
from otelspend.api.pages import flatten, period
from otelspend.api.window import DAY_NS, HOUR_NS


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(None, "unpriced", id="null-is-unpriced-never-zero"),
        pytest.param("0.000000000000000", "$0.00", id="zero"),
        pytest.param("12.344999999999999", "$12.34", id="total"),
        pytest.param("12.345000000000000", "$12.35", id="half-up"),
        pytest.param("1234.5", "$1,234.50", id="thousands"),
        pytest.param("0.004800000000000", "$0.0048", id="per-call"),
        pytest.param("0.004785000000000", "$0.00479", id="three-digits"),
        pytest.param("0.060000", "$0.06", id="trailing-zeros"),
        pytest.param("0.202109500000000", "$0.202", id="cents"),
        pytest.param("0.000000300000000", "<$0.000001", id="tiny"),
        pytest.param(Decimal("-2.5"), "-$2.50", id="negative"),
    ],
)
def test_usd(value, shown):
    assert display.usd(value) == shown


def test_other_displays():
    assert display.count(1234567) == "1,234,567" and display.count(None) == "—"
    assert display.percent(0.9393) == "93.9%" and display.percent(None) == "—"
    assert [display.duration_ms(v) for v in (240, 3_400, 125_000)] == ["240 ms", "3.4 s", "2 min 05 s"]
    assert [display.compact(v) for v in (950, 12_300, 4_500_000, 2_000)] == ["950", "12.3k", "4.5M", "2k"]
    assert display.when("2026-11-23T06:49:12.71492963Z") == "2026-11-23 06:49 UTC"
    assert display.parse_time("2026-11-23T06:49:12.71492963Z").microsecond == 714929
    assert display.change(Decimal("12"), Decimal("10")) == "+20%" and display.change(5, 0) is None


def test_period_ends_at_the_end_of_the_current_hour():
    now = 1_790_000_000 * 10**9 + 1234
    p = period("24h", now)
    assert p.window.end_ns % HOUR_NS == 0 and 0 < p.window.end_ns - now <= HOUR_NS
    assert p.window.end_ns - p.window.start_ns == DAY_NS == p.previous.end_ns - p.previous.start_ns
    assert p.previous.end_ns == p.window.start_ns
    assert period(None, now).key == "7d" and period("30d", now).bucket == "day"


def _widths(chart: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect class="fill s0" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', chart)]


def test_bar_lengths_are_proportional_and_text_is_escaped():
    chart = svg.bar_chart(
        svg.Chart("c", "Title <b>", "Desc & more"),
        [svg.Bar("<script>alert(1)</script>", 4.0, "$4.00", "/runs?a=1&b=2"), svg.Bar("b", 1.0, "$1.00"),
         svg.Bar("c", 0.0, "unpriced", note="3 unpriced calls")],
    )  # fmt: skip
    widths = _widths(chart)
    assert widths[0] == pytest.approx(4 * widths[1]) and widths[2] == 0
    assert "<script>" not in chart and "&lt;script&gt;" in chart
    assert 'href="/runs?a=1&amp;b=2"' in chart and "Title &lt;b&gt;" in chart and "Desc &amp; more" in chart
    assert "3 unpriced calls" in chart
    assert svg.bar_chart(svg.Chart("e", "t", "d"), []) == '<p class="empty">No data in this period.</p>'


def test_time_chart_has_a_tooltip_per_bucket_and_breaks_lines_at_gaps():
    labels = [f"h{i}" for i in range(6)]
    series = [
        svg.Series("a", [1.0, 2.0, None, 4.0, 5.0, 0.0], ["1", "2", "unpriced", "4", "5", "0"]),
        svg.Series("b", [0.0] * 6, ["0"] * 6),
    ]
    chart = svg.time_chart(svg.Chart("t", "T", "D"), labels, ["x", "", "", "y", "", ""], series, str)
    assert chart.count('class="hover"') == 6
    assert "h2\na: unpriced\nb: 0" in chart
    assert chart.count('<polyline class="line s0"') == 2  # the None splits series a
    assert chart.count('class="legend"') == 2
    assert re.findall(r'class="axis x"[^>]*>(\w)<', chart) == ["x", "y"]
    with pytest.raises(ValueError, match="3 values for 6 buckets"):
        svg.time_chart(svg.Chart("t", "T", "D"), labels, labels, [svg.Series("c", [1, 2, 3], ["1", "2", "3"])], str)


def test_stacked_columns_add_up():
    chart = svg.time_chart(
        svg.Chart("c", "T", "D"), ["a", "b"], ["a", "b"],
        [svg.Series("ok", [3.0, 1.0], ["3", "1"]), svg.Series("failed", [1.0, 0.0], ["1", "0"])],
        str, kind="columns",
    )  # fmt: skip
    heights = [float(h) for h in re.findall(r'<rect class="column s\d"[^>]* height="([\d.]+)"', chart)]
    assert len(heights) == 3  # a zero layer draws nothing
    assert heights[0] + heights[1] == pytest.approx(4 * heights[2])
    assert svg.nice_ticks(7) == [0, 2, 4, 6, 8] and svg.nice_ticks(0.37) == [0, 0.1, 0.2, 0.3, 0.4]


def test_flatten_orders_parents_first_with_depths_even_when_deep():
    deep = {"span_id": "0", "children": []}
    node = deep
    for i in range(1, 5000):  # deeper than the recursion limit
        child = {"span_id": str(i), "children": []}
        node["children"].append(child)
        node = child
    rows = flatten([deep, {"span_id": "x", "children": [{"span_id": "y", "children": []}]}])
    assert [r["span_id"] for r in rows[-2:]] == ["x", "y"]
    assert rows[4999]["depth"] == 4999 and rows[4999]["leaf"] and not rows[0]["leaf"]
    assert (rows[-2]["depth"], rows[-1]["depth"]) == (0, 1)
