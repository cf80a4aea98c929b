"""``otelspend demo``: send realistic GenAI traffic to a running receiver through the OTel SDK."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from otelspend.settings import Settings, load_settings, split_address

DEFAULT_RUNS = 1000
DEFAULT_DAYS = 7.0
DEFAULT_WAIT_SECONDS = 30.0


def register(sub: Any) -> None:
    """Add ``demo`` to the command line."""
    parser = sub.add_parser(
        "demo",
        help="send realistic GenAI traces (several workflows, agents, tools, providers, tenants) to a receiver",
        description="Drives the OpenTelemetry SDK to export realistic traffic to an OTLP receiver: otelspend "
        "itself (default: the local receiver from the settings) or a Collector in front of it.",
    )
    parser.add_argument("--config", help="YAML settings file (also OTELSPEND_CONFIG); gives the default endpoints")
    parser.add_argument("--endpoint", help="OTLP endpoint, host:port (default: the receiver address in the settings)")
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc", help="OTLP transport (default grpc)")
    parser.add_argument(
        "--runs", type=_positive_int, default=DEFAULT_RUNS, help=f"traces to send (default {DEFAULT_RUNS})"
    )
    parser.add_argument(
        "--days",
        type=_positive_float,
        default=DEFAULT_DAYS,
        help=f"spread start times over the past D days (default {DEFAULT_DAYS:g})",
    )
    parser.add_argument("--seed", type=int, help="fix the traffic shape (trace ids stay random, so reruns add data)")
    parser.add_argument(
        "--api",
        nargs="?",
        const="",
        metavar="URL",
        help="post a third of the outcomes later through the REST API (default URL: the API address in the settings)",
    )
    parser.add_argument("--api-token", default="", help="bearer token for --api (default: the first api.tokens entry)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="KEY=VALUE", help="extra OTLP header (repeatable)"
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=10.0, help="seconds the exporter keeps retrying a batch (default 10)"
    )
    parser.add_argument(
        "--wait",
        type=_non_negative_float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="wait up to SECONDS until the REST API counts the runs sent (they are stored once they settle); "
        f"0 returns at once (default {DEFAULT_WAIT_SECONDS:g})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``demo``: send the planned runs through the SDK, post the outcomes kept off the spans, print
    the summary and wait (bounded) until the API counts the runs; 1 when spans or outcomes were
    not acknowledged, 2 without the SDK.
    """
    from otelspend.demo import plan_runs
    from otelspend.demo_sender import outcome_route, post_outcomes, run_window, runs_in_api, send, summarize

    settings = load_settings(config_file=args.config)
    endpoint = args.endpoint or default_endpoint(settings, args.protocol)
    headers = dict(item.split("=", 1) for item in args.header if "=" in item)
    api_url = route = None
    token = args.api_token or (settings.api.tokens[0].get_secret_value() if settings.api.tokens else "")
    if args.api is not None:
        api_url = args.api or f"http://{_dialable(settings.api.address)}"
        route = outcome_route(api_url, token)
        if route is None:
            print(f"otelspend demo: {api_url} publishes no outcome route; outcomes travel on the spans instead")

    started = time.monotonic()
    plans = plan_runs(args.runs, args.days, seed=args.seed, api_outcome_share=1 / 3 if route else 0.0)
    summary = summarize(plans)
    # Where to ask whether the runs are queryable: the API named by --api, else the one in
    # the settings when the receiver is the settings' one too (a --endpoint may be a Collector).
    query_url = api_url or (None if args.endpoint else f"http://{_dialable(settings.api.address)}")
    window = run_window(plans)
    before: int | str = "no API to ask: give --api URL to wait until the runs are queryable"
    if args.wait > 0 and query_url:
        try:
            before = runs_in_api(query_url, window, token)
        except (OSError, ValueError) as exc:
            before = str(exc)  # reported after the send: the demo itself does not need the API
    try:
        result = send(plans, endpoint, args.protocol, headers=headers, timeout_seconds=args.timeout)
    except RuntimeError as exc:
        print(f"otelspend demo: {exc}", file=sys.stderr)
        return 2
    posted = failed_posts = 0
    if route and api_url:
        posted, failed_posts = post_outcomes(plans, api_url, route, token)
    elapsed = time.monotonic() - started

    print(
        f"sent {summary.runs} runs ({result.exported_spans} of {summary.spans} spans acknowledged) from "
        f"{summary.services} services to {args.protocol}://{endpoint} in {elapsed:.1f}s, spread over {args.days:g} days"
    )
    print(
        f"  {summary.calls} model calls ({summary.failed_calls} failed and retried, {summary.resends} SDK resends, "
        f"{summary.unpriced_calls} on a self-hosted model that stays unpriced), {summary.tool_calls} tool calls, "
        f"{summary.failed_runs} failed runs, {summary.outcomes} outcomes"
        + (f" ({posted} posted via {api_url}, {failed_posts} failed)" if route else "")
    )
    if result.failed_spans:
        print(
            f"otelspend demo: {result.failed_spans} spans in {result.failed_batches} batches were not acknowledged "
            f"by {endpoint}; is the receiver running?",
            file=sys.stderr,
        )
        return 1
    if args.wait > 0:
        _report_queryable(query_url or "", window, token, len(plans), before, args.wait)
    return 1 if failed_posts else 0


def _report_queryable(url: str, window: tuple[int, int], token: str, runs: int, before: int | str, wait: float) -> None:
    """Wait (bounded) until the API counts the runs sent, and say how long it took."""
    if isinstance(before, str):
        where = f" {url}" if url else ""
        print(f"  could not ask{where} whether the runs are queryable ({before}); runs are stored a few seconds "
              "after their last span (runs.settle_seconds)")  # fmt: skip
        return
    from otelspend.demo_sender import wait_until_queryable

    try:
        found = wait_until_queryable(url, window, expected=runs, before=before, token=token, timeout_seconds=wait)
    except (OSError, ValueError) as exc:
        print(f"  could not ask {url} whether the runs are queryable: {exc}")
        return
    if found.complete:
        print(f"  all {runs} runs queryable at {url} after {found.seconds:.1f}s")
    else:
        print(
            f"  {found.found} of {runs} runs queryable at {url} after {found.seconds:.0f}s; the rest are stored once "
            "they settle (runs.settle_seconds; runs without a root span wait runs.root_wait_seconds)"
        )


def default_endpoint(settings: Settings, protocol: str) -> str:
    """The local receiver from the settings, made dialable (0.0.0.0 -> 127.0.0.1)."""
    address = settings.otlp.grpc_address if protocol == "grpc" else settings.otlp.http_address
    return _dialable(address)


def _dialable(address: str) -> str:
    host, port = split_address(address)
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a positive integer")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("expected a number of seconds, 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a positive number")
    return value
