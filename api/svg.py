"""Charts as server-rendered inline SVG: time series (lines or stacked columns), top-N bars,
and the span bars of a run's waterfall.

No JavaScript and nothing to vendor: a chart is a string of SVG built here and placed in
the page. Hovering a time bucket, a column or a bar shows its ``<title>`` (the browser's
native tooltip). Every text is escaped; numbers are formatted by the caller (``display``)
and only positioned here. Colours are CSS classes (``s0`` .. ``s7``) so the stylesheet
owns the palette (and its dark variant). Each chart is ``role="img"`` labelled by its own
``<title>`` and ``<desc>``; ids derive from ``chart_id``, which must be unique in a page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

PALETTE_SIZE = 8
CHAR_PX = 6.6
"""Approximate width of one 12 px system-font character, for legend and label layout."""


@dataclass(frozen=True)
class Series:
    """One line (or one layer of stacked columns): a value per bucket, None where it has none."""

    name: str
    values: Sequence[float | None]
    texts: Sequence[str]
    """Display text of each value, for tooltips."""


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart."""

    label: str
    value: float
    text: str
    """Display text of the value, drawn right of the bar."""
    href: str | None = None
    note: str = ""
    """Extra tooltip line (e.g. "3 unpriced calls")."""


def _f(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def nice_step(maximum: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` grid lines up to ``maximum``."""
    if maximum <= 0 or not math.isfinite(maximum):
        return 1.0
    raw = maximum / ticks
    power: float = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def nice_ticks(maximum: float, ticks: int = 4) -> list[float]:
    """``0, step, 2 step, ...`` up to the first tick at or above ``maximum``."""
    step = nice_step(maximum, ticks)
    top = max(1, math.ceil(maximum / step - 1e-9)) if maximum > 0 else ticks
    return [round(i * step, 12) for i in range(top + 1)]


@dataclass(frozen=True)
class Chart:
    """What names a chart: ``chart_id`` (unique in its page; the SVG's ids derive from it) and
    the accessible title and description it is labelled by."""

    chart_id: str
    title: str
    description: str


def _open(chart: Chart, width: float, height: float, css: str) -> list[str]:
    cid = escape(chart.chart_id)
    return [
        f'<svg class="chart {css}" id="{cid}" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" role="img" aria-labelledby="{cid}-t {cid}-d">',
        f'<title id="{cid}-t">{escape(chart.title)}</title><desc id="{cid}-d">{escape(chart.description)}</desc>',
    ]


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = []
    for index, s in enumerate(series):
        parts.append(
            f'<rect class="swatch s{index % PALETTE_SIZE}" x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" rx="2"/>'
            f'<text class="legend" x="{_f(x + 14)}" y="{_f(y)}">{escape(s.name)}</text>'
        )
        x += 14 + len(s.name) * CHAR_PX + 18
    return parts


@dataclass(frozen=True)
class _Frame:
    """Where a time chart's plot sits in its SVG and how values map to it."""

    width: float
    height: float
    left: float
    right: float
    top: float
    plot_h: float
    band: float
    """Width of one bucket."""
    y_max: float

    def x_at(self, i: int) -> float:
        """Centre of bucket ``i``."""
        return self.left + (i + 0.5) * self.band

    def y_at(self, value: float) -> float:
        return self.top + self.plot_h - value / self.y_max * self.plot_h


def time_chart(
    chart: Chart,
    labels: Sequence[str],
    axis_labels: Sequence[str],
    series: Sequence[Series],
    y_format: Callable[[float], str],
    *,
    kind: Literal["line", "columns"] = "line",
    width: float = 620,
    height: float = 220,
) -> Markup:
    """A time series: one point (or stacked column) per bucket.

    ``labels`` are the buckets' tooltip names, ``axis_labels`` their axis names (empty:
    unlabelled; labels that would overlap are skipped). Columns stack the series bottom-up. Each bucket has
    a hover band whose ``<title>`` lists every series' value at that time.
    """
    n = len(labels)
    if n == 0 or not series or all(v is None for s in series for v in s.values):
        return Markup('<p class="empty">No data in this period.</p>')
    for s in series:
        if len(s.values) != n or len(s.texts) != n:
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {n} buckets")
    legend = len(series) > 1
    if kind == "columns":
        maximum = max(sum(s.values[i] or 0 for s in series) for i in range(n))
    else:
        maximum = max((v for s in series for v in s.values if v is not None), default=0.0)
    ticks = nice_ticks(maximum)
    left, right, top, bottom = 64.0, 12.0, 30.0 if legend else 12.0, 26.0
    frame = _Frame(width, height, left, right, top, height - top - bottom, (width - left - right) / n, ticks[-1] or 1.0)
    parts = _open(chart, width, height, f"time {kind}")
    if legend:
        parts += _legend(series, left, 14)
    parts += _y_axis(frame, ticks, y_format)
    parts += _x_axis(frame, axis_labels, n)
    parts += _columns(frame, labels, series) if kind == "columns" else _lines(frame, series, dots=n <= 62)
    # Hover bands last, so they are on top and carry every series' value for the bucket.
    for i in range(n):
        lines = [labels[i], *(f"{s.name}: {s.texts[i]}" for s in series)]
        parts.append(
            f'<rect class="hover" x="{_f(left + i * frame.band)}" y="{_f(top)}" width="{_f(frame.band)}" '
            f'height="{_f(frame.plot_h)}"><title>{escape(chr(10).join(lines))}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _y_axis(frame: _Frame, ticks: Sequence[float], y_format: Callable[[float], str]) -> list[str]:
    """A grid line and a label per tick."""
    parts = []
    for tick in ticks:
        y = frame.y_at(tick)
        parts.append(
            f'<line class="grid" x1="{_f(frame.left)}" x2="{_f(frame.width - frame.right)}" y1="{_f(y)}" y2="{_f(y)}"/>'
        )
        parts.append(f'<text class="axis y" x="{_f(frame.left - 6)}" y="{_f(y + 4)}">{escape(y_format(tick))}</text>')
    return parts


def _x_axis(frame: _Frame, axis_labels: Sequence[str], buckets: int) -> list[str]:
    """Label the buckets the caller marks (non-empty axis label), skipping any that would overlap."""
    parts = []
    last_end = -math.inf
    for i in range(buckets):
        text = axis_labels[i]
        half = len(text) * CHAR_PX / 2
        x = frame.x_at(i)
        if not text or x - half < last_end + 8 or x + half > frame.width:
            continue
        parts.append(f'<text class="axis x" x="{_f(x)}" y="{_f(frame.height - 8)}">{escape(text)}</text>')
        last_end = x + half
    return parts


def _columns(frame: _Frame, labels: Sequence[str], series: Sequence[Series]) -> list[str]:
    """Stacked columns, series bottom-up; a zero or empty layer draws nothing."""
    parts = []
    band = frame.band
    gap = min(2.0, band * 0.15)
    for i, label in enumerate(labels):
        base = 0.0
        for index, s in enumerate(series):
            value = s.values[i] or 0.0
            if value <= 0:
                continue
            y0, y1 = frame.y_at(base), frame.y_at(base + value)
            parts.append(
                f'<rect class="column s{index % PALETTE_SIZE}" x="{_f(frame.left + i * band + gap / 2)}" '
                f'y="{_f(y1)}" width="{_f(max(band - gap, 0.5))}" height="{_f(max(y0 - y1, 0.5))}">'
                f"<title>{escape(label)}\n{escape(s.name)}: {escape(s.texts[i])}</title></rect>"
            )
            base += value
    return parts


def _lines(frame: _Frame, series: Sequence[Series], *, dots: bool) -> list[str]:
    """A line per series, broken where it has no value; a single series gets a filled area.
    Dots mark the points (always on a lone point; on every point when ``dots``)."""
    parts = []
    for index, s in enumerate(series):
        css = f"s{index % PALETTE_SIZE}"
        for segment in _segments(s.values):
            points = " ".join(f"{_f(frame.x_at(i))},{_f(frame.y_at(v))}" for i, v in segment)
            if len(series) == 1 and len(segment) > 1:
                first, last = frame.x_at(segment[0][0]), frame.x_at(segment[-1][0])
                floor = _f(frame.y_at(0))
                parts.append(f'<polygon class="area {css}" points="{_f(first)},{floor} {points} {_f(last)},{floor}"/>')
            parts.append(f'<polyline class="line {css}" points="{points}"/>')
            if dots or len(segment) == 1:
                parts.extend(
                    f'<circle class="dot {css}" cx="{_f(frame.x_at(i))}" cy="{_f(frame.y_at(v))}" r="2.5"/>'
                    for i, v in segment
                )
    return parts


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive non-None values (a None breaks the line)."""
    segments: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append((i, value))
    return [s for s in segments if s]


def bar_chart(
    chart: Chart,
    bars: Sequence[Bar],
    *,
    width: float = 400,
    label_width: float = 140,
    value_width: float = 72,
) -> Markup:
    """Horizontal bars, largest first as given; bar lengths proportional to ``value``."""
    if not bars:
        return Markup('<p class="empty">No data in this period.</p>')
    row, top = 24.0, 4.0
    height = top + row * len(bars) + 4
    area = width - label_width - value_width - 8
    maximum = max((b.value for b in bars), default=0.0) or 1.0
    max_chars = int((label_width - 8) / CHAR_PX)
    parts = _open(chart, width, height, "bars")
    for index, bar in enumerate(bars):
        y = top + index * row
        length = max(bar.value, 0.0) / maximum * area
        visible = max(length, 1.0) if bar.value > 0 else 0.0  # a tiny value still shows
        label = bar.label if len(bar.label) <= max_chars else bar.label[: max_chars - 1] + "…"
        tip = f"{bar.label}: {bar.text}" + (f"\n{bar.note}" if bar.note else "")
        item = (
            f'<g class="bar"><title>{escape(tip)}</title>'
            f'<text class="label" x="{_f(label_width - 8)}" y="{_f(y + 16)}">{escape(label)}</text>'
            f'<rect class="track" x="{_f(label_width)}" y="{_f(y + 4)}" width="{_f(area)}" height="16" rx="2"/>'
            f'<rect class="fill s0" x="{_f(label_width)}" y="{_f(y + 4)}" width="{_f(visible)}" height="16" rx="2"/>'
            f'<text class="value" x="{_f(label_width + area + 6)}" y="{_f(y + 16)}">{escape(bar.text)}</text></g>'
        )
        if bar.href:
            item = f'<a href="{escape(bar.href)}">{item}</a>'
        parts.append(item)
    parts.append("</svg>")
    return Markup("".join(parts))


def span_bar(start: float, length: float, css: str = "") -> Markup:
    """A run waterfall cell: a bar from ``start`` to ``start + length`` (fractions of the run, 0..1)."""
    start = min(max(start, 0.0), 1.0)
    length = min(max(length, 0.0), 1.0 - start)
    return Markup(
        '<svg class="waterfall" viewBox="0 0 1000 12" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect class="{escape(css)}" x="{_f(start * 1000)}" y="2" width="{_f(max(length * 1000, 2.0))}" height="8"/>'
        "</svg>"
    )
