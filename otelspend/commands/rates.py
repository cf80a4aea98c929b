"""``otelspend rates``: show the price in force for a model, validate a rate card.

    otelspend rates show gpt-4o-2024-08-06 --provider openai --at 2025-03-01
    otelspend rates check rates.yaml

``show`` exits 0 when the model is priced and 1 when it is not (the reason is printed);
``check`` exits 0 for a valid card and 1 for an invalid one (the error names file, entry
and field).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

from genai_prices.data_units import unit_data

from otelspend.commands import settings_from_args
from otelspend.enrich.compiled import COMPONENTS, USAGE_KEYS, CompiledPrice
from otelspend.enrich.pricing import PriceBook, Quote, Unpriced, at_ns
from otelspend.enrich.ratecard import CardEntry, RateCardError, card_warnings, load_rate_card

RATES_FLAGS: dict[str, tuple[str, ...]] = {"rate_card": ("rate_card",)}


def register(sub: Any) -> None:
    """Add ``rates show`` and ``rates check`` to the command line."""
    parser = sub.add_parser("rates", help="show the price in force for a model; validate a rate card")
    actions = parser.add_subparsers(dest="rates_command", required=True)

    show = actions.add_parser("show", help="the rate-card entry, source and prices that price MODEL")
    show.add_argument("model", help="model name as spans report it (request or response model)")
    show.add_argument("--provider", default="", help="provider as spans report it (openai, aws.bedrock, ...)")
    show.add_argument("--at", type=parse_when, help="price in force at this time (date or RFC 3339, UTC); default now")
    show.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request context selecting price variants and tiers (processing=batch, service_tier=flex)",
    )
    show.add_argument("--rate-card", help="YAML rate card (OTELSPEND_RATE_CARD); default genai-prices only")
    show.add_argument("--config", help="YAML settings file (also OTELSPEND_CONFIG); its rate_card is used")
    show.set_defaults(func=run_show)

    check = actions.add_parser("check", help="validate a YAML rate card")
    check.add_argument("file", help="rate card to validate")
    check.set_defaults(func=run_check)


def parse_when(text: str) -> int:
    """``2025-03-01`` (UTC midnight) or RFC 3339 (naive = UTC) -> ns since the epoch."""
    try:
        if len(text) == 10:
            return at_ns(dt.date.fromisoformat(text))
        return at_ns(dt.datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date (2025-03-01) or RFC 3339 time") from None


def rfc3339(ns: int) -> str:
    """ns since the epoch -> ``2025-03-01T00:00:00Z``."""
    seconds, rest = divmod(ns, 10**9)
    text = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return (f"{text}.{rest:09d}".rstrip("0") if rest else text) + "Z"


# -- show ---------------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    """``rates show``: print the entry, source and prices that price the model (0), or why none does (1)."""
    settings = settings_from_args(args, RATES_FLAGS)
    try:
        book = PriceBook.from_file(settings.rate_card)
    except RateCardError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 2
    context: list[tuple[str, str]] = []
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"otelspend: --context {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        context.append((key, value))
    when = args.at if args.at is not None else time.time_ns() // 10**9 * 10**9
    try:
        quote = book.quote(args.provider, args.model, "", when, tuple(sorted(context)))
    except Unpriced as exc:
        print(f"{args.model}: unpriced ({exc.reason}): {exc}")
        return 1
    print("\n".join(describe_quote(book, quote, args.provider, when)))
    return 0


def describe_quote(book: PriceBook, quote: Quote, provider: str, when_ns: int) -> list[str]:
    """Human-readable lines: what matched, where the price comes from, the prices."""
    compiled = quote.compiled
    lines = [
        f"model           {quote.model}",
        f"provider        {provider or '(any)'}",
        f"at              {rfc3339(when_ns)}",
        f"source          {compiled.source}",
        f"entry           {compiled.entry}",
        f"effective from  {compiled.effective_from or '(always)'}",
    ]
    entry = _card_entry(book, compiled)
    if entry is not None:
        e = entry.entry
        lines.append(f"matches         provider {e.provider!r}, model {e.model!r}")
        if e.effective_to is not None:
            lines.append(f"effective to    {e.effective_to.isoformat()} (exclusive)")
        if e.discount_pct:
            lines.append(f"discount        {e.discount_pct}%")
        if e.tier is not None:
            factors = ", ".join(f"{k}: x{v}" for k, v in e.tier.multipliers.items())
            lines.append(f"tier            by {e.tier.attribute} ({factors})")
    if quote.note:
        lines.append(f"note            {quote.note}")
    if compiled.multiplier != 1:
        lines.append(f"multiplier      x{_decimal(compiled.multiplier)} (discount and tier, on every component)")
    lines.append("prices (USD; *_mtok per million tokens, *_kcount per thousand, *_hours per hour)")
    rates = sorted(compiled.rates_usd_per_mtok.items(), key=lambda item: _PRICE_ORDER.get(item[0], len(_PRICE_ORDER)))
    width = max((len(key) for key, _ in rates), default=0)
    for key, value in rates:
        note = "" if key in _CHARGED else "  (usage spans do not report: not charged)"
        lines.append(f"  {key.ljust(width)}  {value}{note}")
    components = sorted({COMPONENTS[unit.component] for unit in compiled.units})
    if compiled.gpu_second_femto is not None:
        components.append("compute")
        lines.append(f"  GPUs per call when the span does not say: {compiled.default_gpus:g}")
    lines.append(f"components      {', '.join(components) or '(none)'}")
    return lines


_PRICE_ORDER = {spec["price_key"]: index for index, spec in enumerate(unit_data.values())}
_CHARGED = frozenset(
    {spec["price_key"] for key, spec in unit_data.items() if key in USAGE_KEYS or key == "requests"} | {"gpu_second"}
)


def _card_entry(book: PriceBook, compiled: CompiledPrice) -> CardEntry | None:
    if book.card is None or not compiled.source.startswith("user:"):
        return None
    return next((e for e in book.card.entries if e.entry.id == compiled.entry), None)


def _decimal(value: Any) -> str:
    from decimal import Decimal

    return str(Decimal(value.numerator) / Decimal(value.denominator))


# -- check --------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """``rates check``: validate a rate card and list its entries (0), or print the error (1)."""
    try:
        card = load_rate_card(args.file)
    except RateCardError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    print(f"rate card {args.file}: valid, {len(card.entries)} entr{'y' if len(card.entries) == 1 else 'ies'}")
    print(f"source recorded on priced spans: {card.source}")
    for card_entry in card.entries:
        print(f"  {_entry_line(card_entry)}")
    for warning in card_warnings(card):
        print(f"warning: {warning}")
    return 0


def _entry_line(card_entry: CardEntry) -> str:
    """One entry for ``rates check``: what it matches, when, and what it prices."""
    e = card_entry.entry
    window = ""
    if e.effective_from is not None or e.effective_to is not None:
        window = f" [{e.effective_from or '...'}, {e.effective_to or '...'})"
    if e.model is None:  # a charge: spans other than model calls, matched on attributes
        prices = [
            f"{value} USD {unit}"
            for value, unit in (
                (e.request_fee, "per call"),
                (e.per_1k_calls, "per 1,000 calls"),
                (e.gpu_second, "per GPU-second"),
                (e.cpu_second, "per CPU-second"),
            )
            if value is not None
        ]
        return f"{e.id}: {e.cost_kind} charge, match {e.match}{window}: {', '.join(prices)}"
    if e.gpu_second is not None:
        kind = f"GPU-seconds at {e.gpu_second} USD"
    elif e.prices is not None:
        kind = "token prices"
    else:
        kind = "adjusts genai-prices"
    restricted = f", match {e.match}" if e.match else ""
    return f"{e.id}: provider {e.provider!r} model {e.model!r}{restricted}{window}: {kind}"
