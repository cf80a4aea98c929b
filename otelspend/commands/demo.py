"""``otelspend demo``: send realistic GenAI traffic to a running receiver through the OTel SDK."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from otelspend.settings import Settings, load_settings, split_address

DEFAULT_RUNS = 1000
DEFAULT_DAYS = 7.0


def register(sub: Any) -> None:
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from otelspend.demo import plan_runs
    from otelspend.demo_sender import outcome_route, post_outcomes, send, summarize

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
    return 1 if failed_posts else 0


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


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a positive number")
    return value
