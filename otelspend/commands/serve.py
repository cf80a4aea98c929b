"""``otelspend serve``: receivers, pipeline, API and dashboard in one process."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from otelspend.commands import STORE_FLAGS, add_config_flags, settings_from_args, setup_logging

log = logging.getLogger("otelspend")

SERVE_FLAGS: dict[str, tuple[str, ...]] = {
    **STORE_FLAGS,
    "otlp_grpc_address": ("otlp", "grpc_address"),
    "otlp_http_address": ("otlp", "http_address"),
    "api_address": ("api", "address"),
    "sql_address": ("sql", "address"),
    "rate_card": ("rate_card",),
    "ownership": ("ownership",),
    "api_tokens": ("api", "tokens"),
    "log_level": ("log_level",),
}


def register(sub: Any) -> None:
    """Add ``serve`` to the command line."""
    parser = sub.add_parser("serve", help="run the OTLP receivers, pipeline, API and dashboard")
    add_config_flags(parser)
    parser.add_argument("--otlp-grpc-address", help="default 127.0.0.1:4317 (OTELSPEND_OTLP_GRPC_ADDRESS)")
    parser.add_argument("--otlp-http-address", help="default 127.0.0.1:4318 (OTELSPEND_OTLP_HTTP_ADDRESS)")
    parser.add_argument("--api-address", help="default 127.0.0.1:8000 (OTELSPEND_API_ADDRESS)")
    parser.add_argument("--sql-address", help="default 127.0.0.1:8123, empty = off (OTELSPEND_SQL_ADDRESS)")
    parser.add_argument("--rate-card", help="YAML rate card (OTELSPEND_RATE_CARD)")
    parser.add_argument("--ownership", help="YAML ownership rules (OTELSPEND_OWNERSHIP)")
    parser.add_argument("--api-tokens", help="comma-separated API bearer tokens (OTELSPEND_API_TOKENS)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM / SIGINT (exit 0); a start-up that cannot go on exits 2, one line."""
    from otelspend.app import OtelSpend, StartupError

    settings = settings_from_args(args, SERVE_FLAGS)
    setup_logging(settings.log_level, settings)
    app = OtelSpend(settings)
    try:
        addresses = app.start(wait_for_store=settings.clickhouse.startup_wait_seconds)
    except StartupError:
        app.stop()
        raise  # the CLI prints the message alone and exits 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        app.stop()
        return 1

    def stop(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        app.stop()

    def reload(_signum: int, _frame: Any) -> None:
        app.request_reload()
        controls = app.controls()
        if controls is not None:
            controls.policy_file.request()
            controls.budget_file.request()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    # Announce readiness only once the handlers are in place: a supervisor that sends
    # SIGHUP as soon as it reads this line must not hit the default action (terminate).
    print(addresses.line(), flush=True)
    app.wait()
    app.stop()
    if app.fatal is not None:  # the store came up later, with a permanent problem (logged)
        return 2
    return 0
